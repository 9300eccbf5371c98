"""What streamers and strategy processes share on NATS: the names (stream, subjects, KV buckets) of a
namespace, connecting with one clear error, and the wire form of an event with its `Nats-Msg-Id`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import socket
import os
from typing import Any
from urllib.parse import urlsplit

import attrs
from loguru import logger

from framework.account import BalanceUpdate, PositionUpdate
from framework.errors import ConfigError, FrameworkError
from framework.events import ConnectionKey, OrderUpdate, Trade
from framework.spool import decode, encode

DEFAULT_NATS = "nats://127.0.0.1:4222"
DEFAULT_NAMESPACE = "tradesync"
CONNECT_SECONDS = 5.0
LEASE_SECONDS = 3.0  # an owner that stops renewing loses its key after this long
DUPLICATE_WINDOW = 120.0  # seconds the server drops a repeated Nats-Msg-Id (a failover's replay)
_KIND_OF = {Trade: "trade", OrderUpdate: "order", BalanceUpdate: "balance", PositionUpdate: "position"}
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ACCOUNT = re.compile(r"^[A-Za-z0-9_-]+$")


class NatsUnavailable(FrameworkError):
    """NATS could not be reached (or has no JetStream): the message says where and what to do."""


@attrs.frozen
class Namespace:
    """Every NATS name of one deployment: `tradesync` by default; tests use a unique one each."""

    name: str = DEFAULT_NAMESPACE

    def __attrs_post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(f"NATS namespace {self.name!r}: use 1-64 letters, digits, '_' or '-'")

    @property
    def stream(self) -> str:
        return f"{self.name.upper().replace('-', '_')}_EVENTS"

    @property
    def interest_bucket(self) -> str:
        return f"{self.name}_interest"

    @property
    def owners_bucket(self) -> str:
        return f"{self.name}_owners"

    @property
    def cursor_bucket(self) -> str:
        return f"{self.name}_published"

    @property
    def config_bucket(self) -> str:
        return f"{self.name}_config"

    def subject(self, key: ConnectionKey, channel: str) -> str:
        return f"{self.name}.{token(key)}.{channel}"

    def key_subjects(self, key: ConnectionKey) -> str:
        return f"{self.name}.{token(key)}.>"

    @property
    def all_subjects(self) -> str:
        return f"{self.name}.>"


def token(key: ConnectionKey) -> str:
    """A key as one NATS subject token and KV key: `binance_spot`, `bybit_future=sub1` for an account."""
    if key.account == "default":
        return f"{key.exchange}_{key.market.value}"
    if not _ACCOUNT.match(key.account):
        raise ConfigError(f"account {key.account!r} of {key}: on NATS use letters, digits, '_' or '-' only")
    return f"{key.exchange}_{key.market.value}={key.account}"


def key_of(text: str) -> ConnectionKey:
    return ConnectionKey.parse(text.replace("=", "@", 1))


def check_name(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(f"{what} {name!r}: use 1-64 letters, digits, '_' or '-'")
    return name


def default_process_name(stem: str) -> str:
    """A name stable across restarts on one host: the durable consumers resume under it."""
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:32]
    return check_name(f"{re.sub(r'[^A-Za-z0-9_-]', '-', stem)[:28]}-{host}", "process name")


async def connect(url: str, name: str, **options: Any) -> Any:
    """A NATS client that reconnects by itself once connected; unreachable now: NatsUnavailable, one line."""
    from nats.aio.client import Client  # imported by the processes that use NATS only

    if not url.startswith(("nats://", "tls://", "ws://", "wss://")):
        raise ConfigError(f"--nats {url!r}: give a NATS URL such as {DEFAULT_NATS}")
    await _reachable(url)
    client = Client()
    try:  # reconnecting for good once connected; the first connect is given a few seconds
        await asyncio.wait_for(client.connect(servers=[url], name=name, connect_timeout=2, allow_reconnect=True,
                                              max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                                              error_cb=_quiet, **options), CONNECT_SECONDS)
    except Exception as exc:  # noqa: BLE001 - nats raises several kinds; all mean "not reachable"
        with contextlib.suppress(Exception):
            await client.close()
        if isinstance(exc, TimeoutError):
            exc = TimeoutError(f"no answer within {CONNECT_SECONDS:g} s")
        raise NatsUnavailable(f"NATS at {url} is unreachable ({type(exc).__name__}: {exc}); start it with "
                              "JetStream (nats-server -js) or give --nats the right URL") from None
    try:
        await client.jetstream().account_info()
    except Exception as exc:  # noqa: BLE001
        await client.close()
        raise NatsUnavailable(f"NATS at {url} has no JetStream ({type(exc).__name__}: {exc}); start the server "
                              "with -js") from None
    return client


async def _reachable(url: str) -> None:
    """A refused or unresolvable address: said at once (the client would retry it for its whole timeout)."""
    parts = urlsplit(url)
    if parts.scheme != "nats" or not parts.hostname:
        return
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port or 4222), 2.0)
        writer.close()
    except (OSError, TimeoutError) as exc:
        reason = exc.strerror or type(exc).__name__ if isinstance(exc, OSError) else "no answer within 2 s"
        raise NatsUnavailable(f"NATS at {url} is unreachable ({reason}); start it with JetStream (nats-server -js) "
                              "or give --nats the right URL") from None


async def _quiet(exc: Exception) -> None:
    logger.bind(error=f"{type(exc).__name__}: {exc}"[:200]).debug("nats client error")


async def ensure_stream(js: Any, ns: Namespace, *, max_age: float = 7 * 24 * 3600.0) -> None:
    """The namespace's event stream (created once; kept: strategy processes resume from it)."""
    from nats.js.api import StreamConfig
    from nats.js.errors import NotFoundError

    try:
        await js.stream_info(ns.stream)
        return
    except NotFoundError:
        pass
    config = StreamConfig(name=ns.stream, subjects=[ns.all_subjects], duplicate_window=DUPLICATE_WINDOW,
                          max_age=max_age)
    try:
        await js.add_stream(config)
    except Exception:  # noqa: BLE001 - another process created it meanwhile
        await js.stream_info(ns.stream)


async def bucket(js: Any, name: str, ttl: float | None) -> Any:
    """A KV bucket, created if missing (`ttl`: entries not rewritten within it vanish)."""
    from nats.js.api import KeyValueConfig
    from nats.js.errors import BucketNotFoundError

    try:
        return await js.key_value(name)
    except BucketNotFoundError:
        pass
    try:
        return await js.create_key_value(KeyValueConfig(bucket=name, history=1, ttl=ttl))
    except Exception:  # noqa: BLE001 - created by another process meanwhile
        return await js.key_value(name)


async def remove_namespace(js: Any, ns: Namespace) -> None:
    """Delete a namespace's stream and KV buckets (what tests and benchmarks made on a shared NATS)."""
    from nats.js.errors import NotFoundError

    for stream in (ns.stream, *(f"KV_{name}" for name in (ns.interest_bucket, ns.owners_bucket, ns.cursor_bucket,
                                                         ns.config_bucket))):
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(stream)


# the wire ----------------------------------------------------------------------------------------------------
def payload(event: Any) -> bytes:
    """An event as the spool writes it (decimals and enums as text, the raw frame as audit text)."""
    return encode(_KIND_OF[type(event)], event).encode()


def event_of(data: bytes) -> Any:
    """The event a payload carries, without this process's delivery facts (its own store numbers it)."""
    _, event = decode(data.decode())
    if isinstance(event, Trade) and (event.seq is not None or event.redelivered or event.owner_unknown):
        event = attrs.evolve(event, seq=None, redelivered=False, owner_unknown=False)
    return event


def msg_id(event: Any) -> str | None:
    """The `Nats-Msg-Id` of an event: a fill's dedup key, an order state's (id, status, filled, time); a
    balance or position has none (a state: sending it again is harmless, and a newcomer may need it)."""
    if isinstance(event, Trade):
        parts: tuple = ("t", *event.dedup_key)
    elif isinstance(event, OrderUpdate):
        parts = ("o", str(event.key), event.symbol, event.order_id, event.status.value, str(event.filled),
                 event.timestamp)
    else:
        return None
    return hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()


def identity() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}
