"""One socket's life: status, counters, frames turned into events, published through a narrow sink.

A connection knows its venue's stream rules and its `EventSink`; never the pool, the store or TradeSync.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from decimal import Decimal
from enum import StrEnum
from typing import Any, Callable, Collection, Iterable

import aiohttp
import attrs
import msgspec
from loguru import logger
from tenacity import AsyncRetrying
from websockets.asyncio.client import connect as ws_connect

from framework.venue import Credentials, Endpoints, ExchangeSpec, MessageKind
from framework.errors import AuthError, ConfigError, ConnectionLost, FrameworkError, NormalizeError, SubscriptionError
from framework.events import ConnectionKey, Event, Market, OrderUpdate, now_ms
from framework.retry import RECONNECT
from framework.sink import EventSink, GapNotice, Notice
from framework.sync_log import mask, redact
from framework.validate import RowsRejected

# One decoder for every frame: numbers with a fraction or exponent keep their text as Decimal (exact).
_DECODE = msgspec.json.Decoder(float_hook=Decimal).decode


class ConnectionStatus(StrEnum):
    CREATED = "created"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"
    FAILED = "failed"


def decode_frame(frame: Any, plain_text: Collection[str] | None = None, binary: bool = True) -> Any:
    """A text frame as JSON with exact decimals (numbers keep their text); bytes stay bytes.

    With `plain_text` (a stream's frame rules: the texts its venue sends as they are, e.g. "pong"), anything
    else must be a JSON object, and bytes must be allowed by `binary`: a frame that is not raises
    NormalizeError saying why (truncated or junk text, nesting too deep to read, a list or a number, bytes
    on a JSON stream). Without `plain_text` (servers and tests reading a peer), text that is not JSON stays
    text. A frame already decoded (a test's dict) is checked the same way.
    """
    if isinstance(frame, (bytes, bytearray, memoryview)):
        if binary:
            return bytes(frame)
        raise NormalizeError(f"a binary frame ({len(frame)} bytes) on a JSON stream")
    if isinstance(frame, str):
        if plain_text is not None and frame in plain_text:
            return frame
        try:
            try:
                message = _DECODE(frame)
            except (msgspec.DecodeError, UnicodeEncodeError):  # the standard library's reading is the rule
                message = json.loads(frame, parse_float=Decimal)  # (lone surrogates, NaN); and its error texts
        except (ValueError, RecursionError) as exc:
            if plain_text is None:
                return frame  # a peer's plain text ("ping")
            if isinstance(exc, RecursionError):
                raise NormalizeError(f"JSON nested too deeply to read ({len(frame)} characters)") from None
            raise NormalizeError(f"not JSON: {exc}") from None
    else:
        message = frame
    if plain_text is not None and type(message) is not dict:
        raise NormalizeError(f"a JSON {_json_kind(message)} where a JSON object was expected")
    return message


def _storable(raw: Any) -> Any:
    """A dead frame as a database keeps it: text with a NUL or a lone surrogate (no text column takes them,
    and no JSON holds them raw) is kept as its UTF-8 bytes, which the store writes as base64."""
    if isinstance(raw, str) and "\x00" in raw:
        return raw.encode("utf-8", "surrogatepass")
    if isinstance(raw, str):
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError:
            return raw.encode("utf-8", "surrogatepass")
    return raw


def _json_kind(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (int, Decimal, float)):
        return "number"
    return type(value).__name__


class BaseConnection:
    """What every connection shares: status for `get_connection_status()`, and the frame → event path.

    Subclasses open (or simulate) the socket in `_open()` and close it in `_close()`; every frame
    they read goes through `on_frame()`, every ready event through `emit()` to the sink.
    """

    def __init__(
        self,
        key: ConnectionKey,
        sink: EventSink,
        normalize: Callable[[Any, Market], list[Event]],
    ) -> None:
        self.key = key
        self.sink = sink
        self._normalize = normalize
        self._log = logger.bind(key=str(key))
        self.status = ConnectionStatus.CREATED
        self.error: str | None = None
        self.opened_at: int | None = None
        self.last_message: int | None = None
        self.messages = 0
        self.events = 0
        self.malformed = 0
        self.reconnects = 0
        self.trading: Any = None  # a shared WebSocket trading channel (framework.orders.channel.SharedSocket)

    async def start(self) -> None:
        if self.status in (ConnectionStatus.CONNECTING, ConnectionStatus.CONNECTED):
            return
        self._set_status(ConnectionStatus.CONNECTING)
        try:
            await self._open()
        except BaseException as exc:
            self.error = redact(str(exc))  # a socket or REST error text may carry a signed URL or listenKey
            self._set_status(ConnectionStatus.FAILED, error=self.error)
            raise
        self.opened_at = now_ms()
        if self.live:
            self._set_status(ConnectionStatus.CONNECTED)

    @property
    def live(self) -> bool:
        """True while events can flow (logged in and subscribed)."""
        return True

    async def stop(self) -> None:
        if self.status in (ConnectionStatus.CLOSED, ConnectionStatus.CREATED):
            self.status = ConnectionStatus.CLOSED
            return
        try:
            await self._close()
        finally:
            self._set_status(ConnectionStatus.CLOSED)

    async def _open(self) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError

    def _set_status(self, status: ConnectionStatus, **fields: Any) -> None:
        self.status = status
        self.sink.status(status.value, **fields)

    def on_message(self, frame: Any, stream: Any = None, received_at: int | None = None) -> MessageKind | None:
        """One frame as read off the wire: decode it by the stream's frame rules, classify it, normalize an event.

        Returns its kind (None: it could not be decoded or classified). Whatever is wrong with a frame
        (undecodable, a classify or a normalize that fails) it is kept as a dead letter and this never raises;
        only the venue's own refusals do (AuthError, SubscriptionError, RateLimited…: a FrameworkError from classify).
        Without a stream (a mock venue) every frame is an event and must be a JSON object.
        """
        received = received_at or now_ms()
        try:
            plain_text = getattr(stream, "plain_text", frozenset())
            binary = self.key.market in getattr(stream, "binary_markets", frozenset())
            message = decode_frame(frame, plain_text, binary)
            trading = self.trading
            if trading is not None and trading.on_message(message):  # an answer to an order request
                self.messages += 1
                self.last_message = received
                return MessageKind.IGNORE
            kind = MessageKind.EVENT if stream is None else stream.classify(message, self.key.market)
        except NormalizeError as exc:
            self._dead_frame(frame, str(exc), received)
            return None
        except FrameworkError:
            raise
        except Exception as exc:  # noqa: BLE001 - a frame that breaks classify is that frame's fault
            self._dead_frame(frame, f"classify failed: {type(exc).__name__}: {exc}", received)
            return None
        if kind is MessageKind.EVENT:
            self.on_frame(message, received, wire=frame)
        return kind

    def _dead_frame(self, raw: Any, error: str, received: int) -> None:
        self.messages += 1
        self.last_message = received
        self.malformed += 1
        self._log.bind(error=error[:300]).warning("malformed frame kept as dead letter")
        self.sink.dead_letter(_storable(raw), error)

    def on_frame(self, frame: Any, received_at: int | None = None, *, wire: Any = None) -> None:
        """A decoded event frame (JSON or bytes): normalize and emit; what cannot be normalized is a dead letter.

        Any failure of normalize counts (RecursionError, a bug's TypeError), not only NormalizeError: the
        frame is kept with its error and the stream goes on. `wire` is the frame as received, kept instead of
        the decoded one. Rows normalize refused one by one (RowsRejected) are each a dead letter; the others go on.
        """
        self.messages += 1
        self.last_message = received_at or now_ms()
        raw = _storable(frame if wire is None else wire)
        try:
            events = self._normalize(frame, self.key.market)
        except RowsRejected as exc:
            for row_frame, reason in exc.rejected:
                self.malformed += 1
                self._log.bind(error=reason[:300]).warning("row not recorded kept as dead letter")
                self.sink.dead_letter(row_frame, reason)
            events = exc.events
        except NormalizeError as exc:
            self.malformed += 1
            self._log.bind(error=str(exc)[:300]).warning("malformed frame kept as dead letter")
            self.sink.dead_letter(raw, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - whatever the cause, a frame is kept and the stream goes on
            error = f"normalize failed: {type(exc).__name__}: {exc}"
            self.malformed += 1
            self._log.bind(error=error[:300]).error("normalize failed: frame kept as dead letter")
            self.sink.dead_letter(raw, error)
            return
        if events:
            self.emit(self._for_account(events))

    def _for_account(self, events: list[Event]) -> Iterable[Event]:
        if self.key.account == "default":
            return events
        return [attrs.evolve(e, account=self.key.account) for e in events]

    def emit(self, events: Iterable[Event]) -> None:
        """Ready events (stream, mock) to the sink; the pipeline keeps one whose values are not sane as a dead letter."""
        taken, letters = self.sink.publish(events if isinstance(events, list) else list(events))
        self.events += taken
        self.malformed += letters

    def status_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "error": self.error,
            "opened_at": self.opened_at,
            "last_message": self.last_message,
            "messages": self.messages,
            "events": self.events,
            "malformed": self.malformed,
            "reconnects": self.reconnects,
            "live": self.live,
        }


def with_account(spec: ExchangeSpec, open_positions: Callable[[], tuple] = tuple) -> Callable[[Any, Market], list]:
    """The venue's normalize, and for a frame that holds no order or fill, its account normalize (balances,
    positions): one call for the frames of the hot path, two only for the others. A venue whose positions frames
    list every open position gets `held=` the key's open positions (`open_positions()`: the newest states, from
    the stream and the REST snapshots), to report the ones a frame leaves out as flat."""
    normalize, account = spec.normalize, spec.account
    if account is None:
        return normalize
    read_account = account.normalize
    if not account.positions_in_full:
        def both(message: Any, market: Market) -> list:
            return normalize(message, market) or read_account(message, market)

        return both

    def with_held(message: Any, market: Market) -> list:
        return normalize(message, market) or read_account(message, market, held=open_positions())

    return with_held


class MockConnection(BaseConnection):
    """A connection that is 'open' at once and reads only what a test pushes (a MockConnector's)."""

    async def _open(self) -> None:
        return None

    async def _close(self) -> None:
        return None


class _SessionEnded(Exception):
    """A live session dropped: start a fresh retry cycle (the backoff starts again from its first step)."""


class PrivateConnection(BaseConnection):
    """One venue socket's life: prepare (listenKey), connect, log in, subscribe, keep alive, read,
    reconnect with the injected policy. A refused login (AuthError) or bad config is never retried.
    """

    def __init__(
        self,
        key: ConnectionKey,
        sink: EventSink,
        spec: ExchangeSpec,
        credentials: Credentials,
        endpoints: Endpoints | None = None,
        *,
        retry_policy: AsyncRetrying | None = None,
        first_connect_timeout: float = 30.0,
        stall_limit: float = 300.0,
    ) -> None:
        super().__init__(key, sink, with_account(spec, getattr(sink, "open_positions", tuple)))
        if spec.stream is None:
            raise ConfigError(f"{spec.name} has no stream rules in this version")
        self.spec = spec
        self.stream = spec.stream
        self.credentials = credentials
        self.endpoints = endpoints or self.stream.endpoints(key.market)
        self.retry_policy = retry_policy or RECONNECT
        self.first_connect_timeout = first_connect_timeout
        self.live_sessions = 0
        self._live = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: Any = None
        self._dropped_at: int | None = None
        self._starting = False
        self.stall_limit = stall_limit  # seconds without data while orders are open: the stream is suspect
        self.open_orders: set[tuple[str, str]] = set()
        self.last_data: int | None = None
        self._client_ids: OrderedDict[str, str] = OrderedDict()  # order id -> client order id, recent
        self._heard = 0.0  # loop time of the last frame read (the silence watch's clock)

    @property
    def live(self) -> bool:
        return self._live.is_set()

    # lifecycle ---------------------------------------------------------------------------------
    async def _open(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        self._task = asyncio.create_task(self._run(), name=f"connection-{self.key}")
        live = asyncio.ensure_future(self._live.wait())
        self._starting = True
        try:
            done, _ = await asyncio.wait({live, self._task}, timeout=self.first_connect_timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            live.cancel()
            self._starting = False
        if self._task in done:  # the first connection failed for good (AuthError, ConfigError, gave up)
            exc = self._task.exception()
            await self._close()
            raise exc or ConnectionLost(self.key.exchange, "stream ended before it was live")
        if not self._live.is_set():
            self._log.warning("not live yet after the first connect timeout; still trying in the background")

    async def _close(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await asyncio.wait_for(task, 10)
            except (asyncio.CancelledError, TimeoutError):
                if asyncio.current_task().cancelling():
                    raise
        if self._http is not None:
            await self._http.close()
            self._http = None

    # the socket's life -------------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            try:
                async for attempt in self.retry_policy.copy():
                    with attempt:
                        await self._session()
                return
            except _SessionEnded:
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.error = redact(f"{type(exc).__name__}: {exc}")
                self._set_status(ConnectionStatus.FAILED, error=self.error)
                raise

    async def _session(self) -> None:
        was_live = False
        try:
            listen_key = await self.stream.open_listen_key(
                self._http, self.credentials, self.key.market, self.endpoints, now_ms()
            )
            url = self.stream.ws_url(self.key.market, self.endpoints, listen_key)
            ping_frames = self.stream.ping(now_ms(), self.key.market) is None
            headers = getattr(self.stream, "ws_headers", None)
            async with ws_connect(
                url,
                additional_headers=headers(self.key.market) if headers else None,
                ping_interval=self.stream.ping_interval if ping_frames else None,
                # A pong can sit behind data we are slow to read (the store is the bottleneck then):
                # allow the venue's whole silence limit before calling the peer dead.
                ping_timeout=max(self.stream.ping_interval, self.stream.silence_limit) if ping_frames else None,
                max_size=2**24,
                open_timeout=15,
                close_timeout=2,
                # No per-message deflate: a private stream is small, and inflating every frame costs more CPU
                # than the bandwidth it saves (a venue serves uncompressed clients all the same).
                compression=None,
            ) as ws:
                self._ws = ws
                for message in self.spec.handshake(self.credentials, self.key.market, now_ms(), listen_key):
                    await ws.send(message if isinstance(message, str) else json.dumps(message))
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._stall_watch(), name=f"stall-watch-{self.key}")
                    if not ping_frames:
                        tasks.create_task(self._pinger(ws), name=f"ping-{self.key}")
                        tasks.create_task(self._silence_watch(self.stream.silence_limit), name=f"silence-{self.key}")
                    if listen_key and self.stream.listen_key_interval:
                        tasks.create_task(self._listen_key_keeper(listen_key), name=f"listenkey-{self.key}")
                    # With WebSocket ping frames the library detects a dead peer (no pong in time);
                    # with application pings, the silence watch wants a message within the venue's limit.
                    await self._read(ws)
        except* AuthError as group:
            raise group.exceptions[0] from None
        except* Exception as group:
            exc = group.exceptions[0]
            was_live = self._live.is_set()
            self._on_drop(exc)
            if was_live:
                raise _SessionEnded() from exc
            raise _lost(self.key.exchange, exc) from exc
        finally:
            self._ws = None
            self._live.clear()
            if self.trading is not None:
                self.trading.lost("private stream socket closed")

    async def _read(self, ws: Any) -> None:
        acks, expected = 0, self.stream.acks_expected(self.key.market)
        if expected == 0:
            self._went_live()
        sink = self.sink
        clock = asyncio.get_running_loop().time
        while True:
            frame = await ws.recv()
            self._heard = clock()  # no timer per frame: the silence watch reads this
            received = now_ms()
            kind = self.on_message(frame, self.stream, received)  # a bad frame is a dead letter (None), never a drop
            if kind is MessageKind.EVENT:
                if sink.congested:  # the store writer is behind: leave the backlog in the kernel's buffers
                    await sink.room()
            elif kind is MessageKind.ACK:
                self.last_message = received
                acks += 1
                if acks == expected:
                    self._went_live()
            elif kind is MessageKind.LISTEN_KEY_EXPIRED:
                raise ConnectionLost(self.key.exchange, "listenKey expired: reconnecting with a new one")
            else:
                self.last_message = received

    async def _silence_watch(self, limit: float) -> None:
        """With application pings, any message (a pong at least) must come within the venue's silence limit."""
        clock = asyncio.get_running_loop().time
        self._heard = clock()
        while True:
            await asyncio.sleep(min(limit / 4, 5.0))
            silent = clock() - self._heard
            if silent > limit:
                raise ConnectionLost(self.key.exchange, f"no message for {limit:.0f} s: treating the stream as lost")

    async def _stall_watch(self) -> None:
        """Pings may still be answered while no data flows: with orders open, that silence is a lost stream.

        Each session starts knowing no open orders (what happened in a gap comes back as fills, not as
        order states), so one stall leads to one reconnect and backfill, not a loop.
        """
        self.last_data = now_ms()
        self.open_orders.clear()
        while True:
            await asyncio.sleep(min(self.stall_limit / 4, 5.0))
            silent = (now_ms() - (self.last_data or 0)) / 1000
            if self.open_orders and silent > self.stall_limit:
                raise ConnectionLost(
                    self.key.exchange,
                    f"no data for {silent:.0f} s with {len(self.open_orders)} orders open: treating the stream as stalled",
                )

    def emit(self, events: Iterable[Event]) -> None:
        events = list(events)
        self.last_data = now_ms()
        for event in events:
            # account states (BalanceUpdate, PositionUpdate) have no order ids
            if getattr(event, "client_order_id", None) and event.order_id not in self._client_ids:
                self._client_ids[event.order_id] = event.client_order_id
                if len(self._client_ids) > 10_000:
                    self._client_ids.popitem(last=False)
            if isinstance(event, OrderUpdate):
                ref = (event.symbol, event.order_id)
                if event.status.is_terminal:
                    self.open_orders.discard(ref)
                else:
                    self.open_orders.add(ref)
        super().emit(events)

    async def _pinger(self, ws: Any) -> None:
        while True:
            await asyncio.sleep(self.stream.ping_interval)
            message = self.stream.ping(now_ms(), self.key.market)
            await ws.send(message if isinstance(message, str) else json.dumps(message))

    async def _listen_key_keeper(self, listen_key: str) -> None:
        while True:
            await asyncio.sleep(self.stream.listen_key_interval)
            await self.stream.keep_listen_key(
                self._http, self.credentials, self.key.market, self.endpoints, listen_key, now_ms()
            )
            self.sink.status("listen_key_kept", listen_key=mask(listen_key))

    def _went_live(self) -> None:
        self.live_sessions += 1
        gap_since = self._dropped_at
        self._dropped_at = None
        self.error = None
        self._live.set()
        if self.live_sessions > 1:
            self.reconnects += 1
            self._set_status(ConnectionStatus.CONNECTED, reconnects=self.reconnects)
            gap_ms = now_ms() - gap_since if gap_since else None
            self.sink.status("gap", since=gap_since, gap_ms=gap_ms)
        elif not self._starting:  # start() reports the first one itself
            self._set_status(ConnectionStatus.CONNECTED)
        self.sink.notice(GapNotice(kind=Notice.LIVE, session=self.live_sessions, gap_since=gap_since))
        if self.trading is not None:
            self.trading.opened()

    async def send_frame(self, frame: Any) -> None:
        """Send a frame on the live socket (order requests on a shared socket); ConnectionError when there is none."""
        ws = self._ws
        if ws is None or not self._live.is_set():
            raise ConnectionError("private stream socket not live")
        await ws.send(frame if isinstance(frame, (str, bytes)) else json.dumps(frame))

    def recent_client_ids(self, order_ids: Iterable[str]) -> dict[str, str]:
        """Client order ids of orders this stream saw lately (order id -> client order id)."""
        ids = self._client_ids
        return {oid: ids[oid] for oid in order_ids if oid in ids}

    def _on_drop(self, exc: BaseException) -> None:
        self.error = redact(f"{type(exc).__name__}: {exc}")
        if self._dropped_at is None:
            self._dropped_at = now_ms()
            self.sink.notice(GapNotice(kind=Notice.DROPPED, session=self.live_sessions))
        if self.status is not ConnectionStatus.RECONNECTING:
            self._set_status(ConnectionStatus.RECONNECTING, error=self.error)

    def status_dict(self) -> dict[str, Any]:
        info = super().status_dict()
        info["url"] = self.stream.ws_url(self.key.market, self.endpoints, "<listenKey>")
        info["open_orders"] = len(self.open_orders)
        return info


def _lost(exchange: str, exc: BaseException) -> BaseException:
    """Keep our own errors; wrap socket trouble as ConnectionLost (retried)."""
    if isinstance(exc, (ConnectionLost, SubscriptionError, ConfigError)):
        return exc
    return ConnectionLost(exchange, f"{type(exc).__name__}: {exc}")
