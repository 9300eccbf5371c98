"""The trade sync log: one loguru file per process start under `<log_dir>/trade_sync/`, secrets scrubbed."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from loguru import logger

_PROCESS_STARTED = time.strftime("%Y%m%d_%H%M%S")
_sinks: dict[Path, list[int]] = {}  # path -> [loguru sink id, users]
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
    return _scrub(line).replace("{", "{{").replace("}", "}}") + "\n"


class TradeSyncLogger:
    """Writes what was fetched, stored, skipped as duplicate, and what happened to connections."""

    def __init__(self, log_dir: str | Path = "logs") -> None:
        self.path = Path(log_dir).resolve() / "trade_sync" / f"trade_sync_{_PROCESS_STARTED}.log"
        self._log = logger.bind(trade_sync_path=str(self.path))
        self._open = False

    def open(self) -> None:
        if self._open:
            return
        with _sinks_lock:
            entry = _sinks.get(self.path)
            if entry is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                path_text = str(self.path)
                sink_id = logger.add(
                    self.path,
                    format=_format,
                    level="DEBUG",
                    filter=lambda r, p=path_text: r["extra"].get("trade_sync_path") == p,
                    encoding="utf-8",
                    enqueue=False,
                    catch=True,
                )
                _sinks[self.path] = [sink_id, 1]
            else:
                entry[1] += 1
        self._open = True
        self.event("trade sync log opened", pid=os.getpid())

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
                    logger.remove(entry[0])
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
        self._log.bind(strategy=strategy_id, status=status, **fields).info("strategy event")

    def dead_letter(self, key: str, error: str, **fields: Any) -> None:
        self._log.bind(key=key, error=error, **fields).warning("dead letter")

    def error(self, what: str, **fields: Any) -> None:
        self._log.bind(**fields).error(what)

    def event(self, what: str, **fields: Any) -> None:
        self._log.bind(**fields).info(what)

