"""A connection's life as the pool sees it: status, counters, and frames turned into events."""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable

import aiohttp
import attrs
from loguru import logger
from tenacity import AsyncRetrying
from websockets.asyncio.client import connect as ws_connect

from exchanges.spec import Endpoints, ExchangeSpec, MessageKind
from framework.errors import AuthError, ConfigError, ConnectionLost, FrameworkError, NormalizeError, SubscriptionError
from framework.events import ConnectionKey, Event, Market, OrderUpdate, now_ms
from framework.retry import RECONNECT
from framework.sync_log import mask, redact
from framework.validate import FUTURE_TOLERANCE_MS, RowsRejected, as_raw, problem

if TYPE_CHECKING:
    from exchanges.connector import Credentials
    from framework.backfill import Backfiller
    from framework.pool import ConnectionPool


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
            message = json.loads(frame, parse_float=Decimal)
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
    they read goes through `on_frame()`, every ready event through `emit()`.
    """

    def __init__(
        self,
        key: ConnectionKey,
        pool: ConnectionPool,
        normalize: Callable[[Any, Market], list[Event]],
    ) -> None:
        self.key = key
        self.pool = pool
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

    def symbols_changed(self) -> None:
        """A strategy with symbols of its own joined this connection (a backfilling one fetches them)."""

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
        self.pool.sync_log.connection(str(self.key), status.value, **fields)

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
        self.pool.dead_letter(self.key, _storable(raw), error)

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
                self.pool.dead_letter(self.key, row_frame, reason)
            events = exc.events
        except NormalizeError as exc:
            self.malformed += 1
            self._log.bind(error=str(exc)[:300]).warning("malformed frame kept as dead letter")
            self.pool.dead_letter(self.key, raw, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - whatever the cause, a frame is kept and the stream goes on
            error = f"normalize failed: {type(exc).__name__}: {exc}"
            self.malformed += 1
            self._log.bind(error=error[:300]).error("normalize failed: frame kept as dead letter")
            self.pool.dead_letter(self.key, raw, error)
            return
        if events:
            self.emit(self._for_account(events))

    def _for_account(self, events: list[Event]) -> Iterable[Event]:
        if self.key.account == "default":
            return events
        return [attrs.evolve(e, account=self.key.account) for e in events]

    def emit(self, events: Iterable[Event]) -> None:
        """Ready events (stream, REST backfill, mock) to the pool; one whose values are not sane is a dead letter."""
        now = now_ms()
        tolerance = getattr(self.pool, "future_tolerance_ms", FUTURE_TOLERANCE_MS)
        sane, insane = [], {}  # id(raw) -> (raw, reasons): the events of one row (order + fill) make one letter
        for event in events:
            reason = problem(event, now, tolerance)
            if reason is None:
                sane.append(event)
                continue
            raw = as_raw(event)
            reasons = insane.setdefault(id(raw), (raw, []))[1]
            if reason not in reasons:
                reasons.append(reason)
        for raw, reasons in insane.values():
            self.malformed += 1
            self._log.bind(error="; ".join(reasons)).warning("event with insane values kept as dead letter")
            self.pool.dead_letter(self.key, raw, "; ".join(reasons))
        if sane:
            self.events += self.pool.dispatch(self.key, sane)

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


class _SessionEnded(Exception):
    """A live session dropped: start a fresh retry cycle (the backoff starts again from its first step)."""


class PrivateConnection(BaseConnection):
    """One venue socket's life: prepare (listenKey), connect, log in, subscribe, keep alive, read,
    reconnect with the injected policy. A refused login (AuthError) or bad config is never retried.
    """

    def __init__(
        self,
        key: ConnectionKey,
        pool: ConnectionPool,
        spec: ExchangeSpec,
        credentials: Credentials,
        endpoints: Endpoints | None = None,
        *,
        retry_policy: AsyncRetrying | None = None,
        first_connect_timeout: float = 30.0,
        backfiller: Backfiller | None = None,
        stall_limit: float = 300.0,
    ) -> None:
        super().__init__(key, pool, spec.normalize)
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
        self.backfiller = backfiller
        self.backfills = 0
        self.stall_limit = stall_limit  # seconds without data while orders are open: the stream is suspect
        self.open_orders: set[tuple[str, str]] = set()
        self.last_data: int | None = None
        self._backfill_task: asyncio.Task | None = None
        self._backfill_pending = False  # a backfill is asked for and not yet run
        self._backfill_gap: int | None = None  # the earliest gap start it must cover (None: from the marks)
        self.coverage_every = 2.0  # seconds between coverage marks while a covered session is live
        self._covered_session: int | None = None  # the live session whose start-up backfill finished
        self._covered_names: list[str] = []
        self._client_ids: OrderedDict[str, str] = OrderedDict()  # order id -> client order id, recent
        if backfiller is not None:
            backfiller.known_client_ids = self._known_client_ids

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
        if self._covered_session is not None and self.live:
            try:  # a clean stop: what arrived until now is stored, so the marks can say so
                await self._advance_coverage_to_now(self._covered_session, 5.0)
            except Exception as exc:  # noqa: BLE001 - the next start backfills from the older mark
                self._log.bind(error=repr(exc)).warning("coverage mark not advanced at close")
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await asyncio.wait_for(task, 10)
            except (asyncio.CancelledError, TimeoutError):
                if asyncio.current_task().cancelling():
                    raise
        backfill, self._backfill_task = self._backfill_task, None
        if backfill is not None and not backfill.done():
            backfill.cancel()
            await asyncio.gather(backfill, return_exceptions=True)
        if self.backfiller is not None:
            await self.backfiller.close()
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
            ) as ws:
                self._ws = ws
                for message in self.spec.handshake(self.credentials, self.key.market, now_ms(), listen_key):
                    await ws.send(message if isinstance(message, str) else json.dumps(message))
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._stall_watch(), name=f"stall-watch-{self.key}")
                    if self.backfiller is not None:
                        tasks.create_task(self._coverage_keeper(), name=f"coverage-{self.key}")
                    if not ping_frames:
                        tasks.create_task(self._pinger(ws), name=f"ping-{self.key}")
                    if listen_key and self.stream.listen_key_interval:
                        tasks.create_task(self._listen_key_keeper(listen_key), name=f"listenkey-{self.key}")
                    # With WebSocket ping frames the library detects a dead peer (no pong in time);
                    # with application pings, a reply must arrive within the venue's silence limit.
                    await self._read(ws, None if ping_frames else self.stream.silence_limit)
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

    async def _read(self, ws: Any, silence_limit: float | None) -> None:
        acks, expected = 0, self.stream.acks_expected(self.key.market)
        if expected == 0:
            self._went_live()
        while True:
            try:
                if silence_limit is None:  # the library's ping frames watch the peer: no timer per frame
                    frame = await ws.recv()
                else:
                    async with asyncio.timeout(silence_limit):
                        frame = await ws.recv()
            except TimeoutError:
                raise ConnectionLost(
                    self.key.exchange, f"no message for {silence_limit:.0f} s: treating the stream as lost"
                ) from None
            received = now_ms()
            kind = self.on_message(frame, self.stream, received)  # a bad frame is a dead letter (None), never a drop
            if kind is MessageKind.EVENT:
                if self.pool.trade_sync.pending > self.pool.trade_sync.high_water:
                    await self.pool.trade_sync.wait_for_room()
            elif kind is MessageKind.ACK:
                self.last_message = received
                acks += 1
                if acks == expected:
                    self._went_live()
            elif kind is MessageKind.LISTEN_KEY_EXPIRED:
                raise ConnectionLost(self.key.exchange, "listenKey expired: reconnecting with a new one")
            else:
                self.last_message = received

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
            if event.client_order_id and event.order_id not in self._client_ids:
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
            self.pool.sync_log.connection(str(self.key), "listen_key_kept", listen_key=mask(listen_key))

    def _went_live(self) -> None:
        self.live_sessions += 1
        gap_since = self._dropped_at
        self._dropped_at = None
        self.error = None
        self._live.set()
        if self.live_sessions > 1:
            self.reconnects += 1
            self._set_status(ConnectionStatus.CONNECTED, reconnects=self.reconnects)
            self.pool.on_reconnected(self.key, gap_since)
        elif not self._starting:  # start() reports the first one itself
            self._set_status(ConnectionStatus.CONNECTED)
        self._request_backfill(gap_since)

    # backfill and coverage -----------------------------------------------------------------------------
    # Per symbol, the store keeps a mark "every fill up to T is stored". It moves only when a backfill
    # over [mark - overlap, now] finished and everything it fetched is stored, or while one unbroken
    # live session that began covered goes on (fills up to now are received and stored). Each
    # (re)connect backfills from the mark, so a gap is fetched whatever was stored after it, and a
    # kill mid-catch-up leaves the mark where it was. Fill times never move it.
    def symbols_changed(self) -> None:
        """A strategy joined with symbols of its own: backfill them (the ones already covered are cheap)."""
        self._request_backfill(None)

    def _request_backfill(self, gap_since: int | None) -> None:
        """Backfill from the coverage marks (the earliest gap start too, if one is older)."""
        if self.backfiller is None:
            return
        self._merge_backfill_request(gap_since)
        if self._backfill_task is None or self._backfill_task.done():
            self._backfill_task = asyncio.create_task(self._backfill_loop(), name=f"backfill-{self.key}")

    def _merge_backfill_request(self, gap_since: int | None) -> None:
        """Requests not yet served merge into one that covers them all: the earliest gap start."""
        gaps = [g for g in (gap_since, self._backfill_gap) if g is not None]
        self._backfill_gap = min(gaps) if gaps else None
        self._backfill_pending = True

    async def _backfill_loop(self) -> None:
        while self._backfill_pending:
            gap_since, self._backfill_gap, self._backfill_pending = self._backfill_gap, None, False
            try:
                await self._backfill(gap_since)
                self.backfills += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed backfill is reported and tried again
                self.error = f"backfill failed: {type(exc).__name__}: {exc}"
                self._log.bind(error=repr(exc)).error("backfill failed")
                self.pool.sync_log.error("backfill failed", key=str(self.key), error=repr(exc))
                if isinstance(exc, AuthError):
                    return
                self._merge_backfill_request(gap_since)
                await asyncio.sleep(1.0)

    async def _backfill(self, gap_since: int | None) -> None:
        store, trade_sync = self.pool.store, self.pool.trade_sync
        await trade_sync.store_ready.wait()  # the marks are in the store: a backfill waits for it
        session = self.live_sessions
        started = now_ms()
        marks = await store.get_coverage(self.key)
        if self.backfiller.rules.needs_symbol:
            names = sorted(set(await self.pool.backfill_symbols(self.key)) | {s for s in marks if s != "*"})
            source = "the strategies' symbols and those stored"
        else:
            names = ["*"]
            source = "the venue (every symbol in one history)"
        self.pool.sync_log.event("backfill symbols", key=str(self.key), symbols=",".join(names) or None,
                                 source=source)
        for name in names:
            symbol = None if name == "*" else name
            mark = marks.get(name)
            since = started - self.backfiller.lookback_ms if mark is None else mark - self.backfiller.overlap_ms
            if gap_since is not None:
                since = min(since, gap_since - self.backfiller.overlap_ms)
            self.pool.sync_log.log_trade_fetch_start(self.key.exchange, symbol or "*", "rest", since=since)
            fetched = 0
            async for page in self.backfiller.pages(symbol, since):
                fetched += len(page)
                self.emit(page)
                if trade_sync.pending > trade_sync.high_water:
                    await trade_sync.wait_for_room()
            await trade_sync.progress.wait_until(trade_sync.progress.submitted, None)  # all of it is stored
            await store.advance_coverage(self.key, {name: started})
            self.pool.sync_log.event("backfill fetched", key=str(self.key), symbol=name, fetched=fetched,
                                     since=since, covered_to=started)
        if session == self.live_sessions and self.live:
            self._covered_session, self._covered_names = session, names

    async def _coverage_keeper(self) -> None:
        """While a covered session stays live, move the marks to now once what arrived is stored."""
        while True:
            await asyncio.sleep(self.coverage_every)
            session = self.live_sessions
            if self._covered_session != session or not self.live:
                continue
            try:
                await self._advance_coverage_to_now(session, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                self._log.bind(error=repr(exc)).warning("coverage mark not advanced")

    async def _advance_coverage_to_now(self, session: int, timeout: float | None) -> None:
        trade_sync = self.pool.trade_sync
        until = now_ms()
        await trade_sync.progress.wait_until(trade_sync.progress.submitted, timeout)
        if self._covered_session == session == self.live_sessions and self.live:  # unbroken since `until`
            await self.pool.store.advance_coverage(self.key, {name: until for name in self._covered_names})

    async def _known_client_ids(self, order_ids: list[str]) -> dict[str, str]:
        """Client order ids of orders seen on the stream or stored: owners for REST fills that lack one."""
        found = {oid: self._client_ids[oid] for oid in order_ids if oid in self._client_ids}
        rest = [oid for oid in order_ids if oid not in found]
        if rest:
            found.update(await self.pool.store.client_order_ids(self.key, rest))
        return found

    def _on_drop(self, exc: BaseException) -> None:
        self.error = redact(f"{type(exc).__name__}: {exc}")
        if self._dropped_at is None:
            self._dropped_at = now_ms()
        if self.status is not ConnectionStatus.RECONNECTING:
            self._set_status(ConnectionStatus.RECONNECTING, error=self.error)

    def status_dict(self) -> dict[str, Any]:
        info = super().status_dict()
        info["url"] = self.stream.ws_url(self.key.market, self.endpoints, "<listenKey>")
        info["backfills"] = self.backfills
        info["open_orders"] = len(self.open_orders)
        return info


def _lost(exchange: str, exc: BaseException) -> BaseException:
    """Keep our own errors; wrap socket trouble as ConnectionLost (retried)."""
    if isinstance(exc, (ConnectionLost, SubscriptionError, ConfigError)):
        return exc
    return ConnectionLost(exchange, f"{type(exc).__name__}: {exc}")
