"""The trade sync log: one loguru file per process start under `<log_dir>/trade_sync/`, secrets scrubbed."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from loguru._logger import Core, Logger

# The trade sync log's own loguru logger (built as loguru builds its global one): the file is written whatever the
# application's logging (the framework's records are off until it enables them), and its lines never reach the
# application's sinks (a library prints nothing to stderr of its own accord).
_files = Logger(core=Core(), exception=None, depth=0, record=False, lazy=False, colors=False, raw=False,
                capture=True, patchers=[], extra={})
_PROCESS_STARTED = time.strftime("%Y%m%d_%H%M%S")
_sinks: dict[Path, list[int]] = {}  # path -> [loguru sink id, users]
_claimed: dict[Path, Path] = {}  # log directory -> this process's file in it (created exclusively)
_sinks_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Never let this value reach a log file: it is replaced by its masked form wherever it appears."""
    if value and len(value) >= 4:
        _secrets.add(value)


def mask(value: str | None) -> str:
    """All but the last 4 characters hidden."""
    if not value:
        return ""
    return "*" * max(len(value) - 4, 4) + value[-4:] if len(value) > 4 else "****"


def _scrub(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, mask(secret))
    return text


# What a signed request or a listenKey leaves in an error text (ccxt puts the whole signed URL in its
# messages; aiohttp the URL; venues echo parameters and headers): the name stays, the value goes.
_SIGNATURES = r"signature|sign|x-bapi-sign|access-sign|x-mbx-signature"  # values dropped whole
_KEYS = (r"listenkey|listen_key|apikey|api_key|api-key|x-mbx-apikey|x-mexc-apikey|x-bapi-api-key|access-key"
         r"|access-passphrase|passphrase|secret|access_token|token")  # values masked but for the last 4
_QUERY = re.compile(rf"(?i)(?<![\w-])((?:{_SIGNATURES}|{_KEYS})=)([^&\s'\"<>,;)}}\]]+)")
_QUOTED = re.compile(  # "name": "value" / 'name': 'value' (JSON bodies, dict and header reprs), also KEY / SIGN
    rf"(?i)([\"'](?:{_SIGNATURES}|{_KEYS}|key)[\"']\s*:\s*[\"'])([^\"']+)")
_HEADER = re.compile(rf"(?im)^(\s*(?:{_SIGNATURES}|{_KEYS}|key)\s*:\s*)(\S+)")  # Name: value lines
_USERINFO = re.compile(r"(\w+://[^:/@\s]+:)([^@\s/]+)(@)")  # scheme://user:password@host
_WS_PATH_KEY = re.compile(r"(/ws/|/stream/|[?&]streams=)([A-Za-z0-9_-]{20,})")  # Binance-style listenKey paths


def _hide(name: str, value: str) -> str:
    bare = name.strip("\"' :=").lower()
    if re.fullmatch(_SIGNATURES, bare):
        return "<redacted>"
    return mask(value)


def redact(text: str) -> str:
    """`text` without secrets: signatures, listenKeys, API keys and passphrases in URLs' query strings,
    JSON / dict / header echoes and listenKey URL paths are masked, and every registered secret too.

    For every error text a REST or WebSocket failure becomes (ccxt's messages carry the signed URL).
    """
    if not text:
        return text
    text = _QUERY.sub(lambda m: m.group(1) + _hide(m.group(1), m.group(2)), text)
    text = _QUOTED.sub(lambda m: m.group(1) + _hide(m.group(1), m.group(2)), text)
    text = _HEADER.sub(lambda m: m.group(1) + _hide(m.group(1), m.group(2)), text)
    text = _WS_PATH_KEY.sub(lambda m: m.group(1) + mask(m.group(2)), text)
    text = _USERINFO.sub(lambda m: m.group(1) + "****" + m.group(3), text)
    return _scrub(text)


def redact_exception(exc: BaseException) -> BaseException:
    """Rewrite `exc` (and the exceptions it was raised from) in place so that `str()` and tracebacks hold
    no secret; returns `exc`. For library exceptions whose text carries a signed URL (ccxt, aiohttp)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        try:
            current.args = tuple(redact(a) if isinstance(a, str) else a for a in current.args)
            info = getattr(current, "request_info", None)  # aiohttp: the URL is printed from request_info
            if info is not None and hasattr(info, "_replace"):
                current.request_info = info._replace(url=_url(info.url), real_url=_url(info.real_url))
        except Exception:  # noqa: BLE001 - an exception that refuses new args keeps them; callers redact str()
            pass
        current = current.__cause__ or current.__context__
    return exc


def _url(url: Any) -> Any:
    try:
        return type(url)(redact(str(url)))
    except Exception:  # noqa: BLE001 - not a URL type we can rebuild: keep it
        return url


def _render_value(value: Any) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n\t'):
        return json.dumps(text)
    return text


def render_fields(fields: dict[str, Any]) -> str:
    return " ".join(f"{k}={_render_value(v)}" for k, v in fields.items() if v is not None)


def _format(record: dict) -> str:
    extra = record["extra"]
    fields = render_fields({k: v for k, v in extra.items() if k != "trade_sync_path"})
    line = f"{record['time']:YYYY-MM-DD HH:mm:ss.SSS} | {record['level'].name:<7} | {record['message']}"
    if fields:
        line += " | " + fields
    # loguru reads the returned text as a format: braces doubled, and "<" escaped so a frame's "<html>" is no tag
    return redact(line).replace("{", "{{").replace("}", "}}").replace("<", "\\<") + "\n"


def _claim(directory: Path) -> Path:
    """Create this process's log file exclusively: two processes started in the same second get two files."""
    directory.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        path = directory / f"trade_sync_{_PROCESS_STARTED}{'' if n == 1 else f'_{n}'}.log"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no free trade sync log name under {directory}: remove old logs")


class TradeSyncLogger:
    """Writes what was fetched, stored, skipped as duplicate, and what happened to connections."""

    def __init__(self, log_dir: str | Path = "logs") -> None:
        self._dir = Path(log_dir).resolve() / "trade_sync"
        self._log = _files.bind(trade_sync_path=None)  # bound to the file at open(): nothing is written before
        self._open = False

    @property
    def path(self) -> Path:
        """This process's file: `trade_sync_YYYYMMDD_HHMMSS.log`, or `…_2.log`, `…_3.log` when another
        process started in the same second took the name (decided at the first `open()`)."""
        return _claimed.get(self._dir) or self._dir / f"trade_sync_{_PROCESS_STARTED}.log"

    def open(self) -> None:
        if self._open:
            return
        with _sinks_lock:
            if self._dir not in _claimed:
                _claimed[self._dir] = _claim(self._dir)
            self._log = _files.bind(trade_sync_path=str(self.path))
            entry = _sinks.get(self.path)
            if entry is None:
                path_text = str(self.path)
                sink_id = _files.add(
                    self.path,
                    format=_format,
                    level="DEBUG",
                    filter=lambda r, p=path_text: r["extra"].get("trade_sync_path") == p,
                    encoding="utf-8",
                    enqueue=True,  # the file is written on loguru's own thread, never on the event loop
                    catch=True,
                )
                _sinks[self.path] = [sink_id, 1]
            else:
                entry[1] += 1
        self._open = True
        self.event("trade sync log opened", pid=os.getpid())

    def flush(self) -> None:
        """Wait until every line logged so far is in the file (lines are written on a thread of their own)."""
        _files.complete()

    def close(self) -> None:
        if not self._open:
            return
        self.event("trade sync log closed")
        self._open = False
        with _sinks_lock:
            entry = _sinks.get(self.path)
            if entry is not None:
                entry[1] -= 1
                if entry[1] == 0:
                    _files.remove(entry[0])
                    del _sinks[self.path]

    # What the issue names, plus the lifecycle and error events.
    def log_trade_fetch_start(self, exchange: str, symbol: str | None, source: str, **fields: Any) -> None:
        self._log.bind(exchange=exchange, symbol=symbol, source=source, **fields).info("trade fetch start")

    def log_trade_storage(
        self, exchange: str, symbol: str, count: int, duplicates: int, source: str, **fields: Any
    ) -> None:
        self._log.bind(
            exchange=exchange, symbol=symbol, stored=count, duplicates=duplicates, source=source, **fields
        ).info("trade storage")

    def log_order_storage(self, exchange: str, symbol: str, count: int, **fields: Any) -> None:
        self._log.bind(exchange=exchange, symbol=symbol, updates=count, **fields).debug("order storage")

    def connection(self, key: str, status: str, **fields: Any) -> None:
        self._log.bind(key=key, status=status, **fields).info("connection event")

    def strategy(self, strategy_id: str, status: str, **fields: Any) -> None:
        level = "ERROR" if status == "failed" else "INFO"  # a crashed strategy is an error, not news
        self._log.bind(strategy=strategy_id, status=status, **fields).log(level, "strategy event")

    def dead_letter(self, key: str, error: str, **fields: Any) -> None:
        self._log.bind(key=key, error=error, **fields).warning("dead letter")

    def alert(self, alert: Any) -> None:
        """A pipeline alert fired (WARNING, or ERROR when critical) or resolved (WARNING)."""
        level = "ERROR" if alert.state == "firing" and alert.severity == "critical" else "WARNING"
        self._log.bind(name=alert.name, scope=alert.scope, severity=alert.severity, value=alert.value,
                       threshold=alert.threshold, detail=alert.message).log(level, f"alert {alert.state}")

    def error(self, what: str, **fields: Any) -> None:
        self._log.bind(**fields).error(what)

    def event(self, what: str, **fields: Any) -> None:
        self._log.bind(**fields).info(what)

