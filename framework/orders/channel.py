"""A venue's WebSocket trading channel: requests out, answers matched back by request id, every request ending in
an Outcome (answered, rejected, NOT_SENT when it never left, AMBIGUOUS when it left and nothing definite came).

`OwnSocket` opens the venue's trading socket itself (Bybit /v5/trade, Binance USD-M ws-fapi); `SharedSocket` rides
the private stream's socket of the key (Binance spot WS-API, Gate, Hyperliquid): the connection hands it the frames
that are answers and tells it when the socket opens and when it is lost."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import OrderedDict
from typing import Any, Callable

from loguru import logger
from websockets.asyncio.client import connect as ws_connect

from framework.connection import decode_frame
from framework.events import ConnectionKey, now_ms
from framework.orders.model import Outcome, OutcomeKind, ambiguous, not_sent
from framework.sync_log import redact
from framework.venue import Credentials, Endpoints, WsTradingRules

LATE_KEPT = 10_000  # request ids whose late answers are still taken
BUDGET_WAIT_LIMIT = 60.0  # seconds a request may wait for the rate budget before it is called not sent


class TokenBucket:
    """`rate` requests a second, `burst` at once: `take()` says how long to wait for the next one."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._clock = clock
        self._tokens = float(self.burst)
        self._at = clock()

    def take(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def give_back(self) -> None:
        self._tokens += 1


class _Refused(Exception):
    """The venue refused the trading login (or the account has no WebSocket trading)."""


class TradingChannel:
    """Request/answer over one socket. States: down, connecting, ready, refused (login or entitlement refused:
    not retried until asked), failed (gave up reconnecting), stopped."""

    def __init__(self, key: ConnectionKey, rules: WsTradingRules, credentials: Credentials, *,
                 retry_attempts: int = 3) -> None:
        self.key = key
        self.market = key.market
        self.rules = rules
        self.credentials = credentials
        self.retry_attempts = retry_attempts
        self.state = "down"
        self.reason = ""
        self.logins = 0
        self.late_answers = 0
        self.uncorrelated = 0
        self._pending: dict[str, asyncio.Future] = {}
        self._late: OrderedDict[str, Callable[[Outcome], None]] = OrderedDict()
        self._ids = itertools.count(1)
        self._bucket = TokenBucket(rules.rate, rules.burst)
        self._in_flight = asyncio.Semaphore(rules.max_in_flight) if rules.max_in_flight else None
        self._login: tuple[set[str], asyncio.Future] | None = None
        self._ready = asyncio.Event()
        self._log = logger.bind(key=str(key), channel="ws-trading")

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "reason": self.reason, "in_flight": len(self._pending), "logins": self.logins,
                "late_answers": self.late_answers, "uncorrelated_errors": self.uncorrelated}

    async def wait_ready(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # requests ------------------------------------------------------------------------------------------------
    async def request(self, op: str, subject: Any, prepared: Any, timeout: float,
                      on_late: Callable[[Outcome], None] | None = None,
                      on_sent: Callable[[], None] | None = None) -> Outcome:
        """Send one request and wait for its answer: the venue's Outcome, NOT_SENT (it never left: not ready, the
        rate budget would hold it past the timeout, the socket was gone before the write) or AMBIGUOUS (it left:
        no answer in time, the socket lost while waiting, a send that failed half way)."""
        if not (self.ready or (op == "probe" and self.state == "probing")):
            return not_sent(f"websocket trading {self.state}" + (f": {self.reason}" if self.reason else ""))
        wait = self._bucket.take()  # the venue's rate budget: a request waits its turn (REST shares the budget
        if wait > BUDGET_WAIT_LIMIT:  # on most venues, so spilling over to it would only move the refusals there)
            self._bucket.give_back()
            return not_sent(f"websocket rate budget ({self.rules.rate}/s) would hold it {wait:.0f}s")
        if wait:
            await asyncio.sleep(wait)
            if not self.ready:
                return not_sent(f"websocket trading {self.state}")
        if self._in_flight is not None:
            await self._in_flight.acquire()
        req_id = self.rules.request_id(next(self._ids))
        try:
            try:
                frame = self.rules.encode(op, subject, self.credentials, self.market, req_id, now_ms(), prepared)
            except (ValueError, TypeError) as exc:  # not writable on this socket (REST may take it): nothing sent
                return not_sent(f"not possible over the WebSocket: {exc}")
            future = asyncio.get_running_loop().create_future()
            self._pending[req_id] = future
            if on_late is not None:
                self._late[req_id] = on_late
                while len(self._late) > LATE_KEPT:
                    self._late.popitem(last=False)
            if on_sent is not None:
                on_sent()  # latency counts from here: not the wait for the budget or a slot
            try:
                await self._send(frame)
            except _NotSent as exc:
                self._pending.pop(req_id, None)
                return not_sent(str(exc))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - bytes may have left: the venue may have it
                self._pending.pop(req_id, None)
                return ambiguous(f"send failed: {type(exc).__name__}: {redact(str(exc))[:200]}")
            try:
                return await asyncio.wait_for(asyncio.shield(future), timeout)
            except TimeoutError:
                return ambiguous(f"no answer in {timeout:g}s")
            finally:
                self._pending.pop(req_id, None)
        finally:
            if self._in_flight is not None:
                self._in_flight.release()

    async def _send(self, frame: Any) -> None:
        raise NotImplementedError

    # what the socket reads -----------------------------------------------------------------------------------
    def on_message(self, message: Any) -> bool:
        """A decoded frame: True when it was a trading answer (taken here), False for anything else."""
        login = self._login
        if login is not None:
            answer = self.rules.login_answer(message, self.market)
            if answer is not None:
                if not login[1].done():
                    login[1].set_result(answer)
                return True
        try:
            decoded = self.rules.decode(message, self.market)
        except Exception as exc:  # noqa: BLE001 - a trading frame we cannot read: the stream's reader keeps it
            self._log.bind(error=str(exc)[:200]).warning("trading answer could not be decoded")
            return False
        if decoded is None:
            return False
        req_id, outcome = decoded
        if req_id is None:  # an error naming no request: every request waiting may be the one it is about
            self.uncorrelated += 1
            self._fail_pending(outcome if outcome.kind is OutcomeKind.AMBIGUOUS
                               else ambiguous(f"uncorrelated error: {outcome.message}", outcome.code))
            return True
        req_id = str(req_id)
        future = self._pending.get(req_id)
        if future is not None and not future.done():
            future.set_result(outcome)
            return True
        self.late_answers += 1
        late = self._late.get(req_id)
        if late is not None:
            late(outcome)
        return True

    def _fail_pending(self, outcome: Outcome) -> None:
        for future in list(self._pending.values()):
            if not future.done():
                future.set_result(outcome)

    def lost(self, reason: str) -> None:
        """The socket is gone: requests waiting become ambiguous (they may have reached the venue)."""
        if self.state == "ready":  # the socket's own connection reports a drop as a warning; here it is a state
            self._log.bind(reason=reason[:200]).info("websocket trading socket lost")
        if self.state not in ("refused", "failed", "stopped"):
            self.state = "down"
            self.reason = reason
        self._ready.clear()
        self._fail_pending(ambiguous(f"connection lost while waiting for the answer: {reason}"[:300]))
        login = self._login
        if login is not None and not login[1].done():
            login[1].set_exception(ConnectionError(reason))

    async def _log_in(self) -> None:
        """Send the login frames and wait for the answer; then probe the entitlement (opt-in venues)."""
        frames = self.rules.login(self.credentials, self.market, now_ms(), self.rules.request_id(next(self._ids)))
        if frames:
            future = asyncio.get_running_loop().create_future()
            self._login = (set(), future)
            try:
                for frame in frames:
                    await self._send(frame)
                answer = await asyncio.wait_for(future, 10.0)
            finally:
                self._login = None
            if answer.kind is OutcomeKind.REJECTED:
                raise _Refused(f"login refused: {answer.message or answer.code}")
        self.logins += 1
        if "probe" in self.rules.ops:  # granted per account: ask whether this one may trade here
            self.state = "probing"
            for _ in range(3):
                outcome = await self.request("probe", None, None, 10.0)
                if outcome.kind is OutcomeKind.REJECTED:
                    raise _Refused(f"not entitled: {outcome.message or outcome.code}")
                if outcome.kind is OutcomeKind.ACCEPTED:
                    break
                await asyncio.sleep(0.5)
            else:
                raise ConnectionError(f"entitlement probe unanswered: {outcome.message}")
        self.state, self.reason = "ready", ""
        self._ready.set()
        self._log.info("websocket trading ready")

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError


class _NotSent(Exception):
    pass


class OwnSocket(TradingChannel):
    """The venue's own trading socket, opened and kept here (reconnects with backoff; after `retry_attempts`
    failed connects in a row it stays `failed` until `restart()`)."""

    def __init__(self, key: ConnectionKey, rules: WsTradingRules, credentials: Credentials, endpoints: Endpoints,
                 **kwargs: Any) -> None:
        super().__init__(key, rules, credentials, **kwargs)
        self.url = rules.url(key.market, endpoints)
        self._ws: Any = None
        self._task: asyncio.Task | None = None
        self.connects = 0

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self.state, self.reason = "connecting", ""
            self._task = asyncio.create_task(self._run(), name=f"ws-trading-{self.key}")

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.lost("stopped")
        self.state = "stopped"

    async def _send(self, frame: Any) -> None:
        ws = self._ws
        if ws is None:
            raise _NotSent("websocket trading socket not open")
        await ws.send(frame if isinstance(frame, (str, bytes)) else json.dumps(frame))

    async def _run(self) -> None:
        failures = 0
        while True:
            self.state = "connecting"
            try:
                async with ws_connect(self.url, open_timeout=10, close_timeout=2, max_size=2**22,
                                      compression=None, ping_interval=20, ping_timeout=20) as ws:
                    self._ws = ws
                    reader = asyncio.create_task(self._read(ws), name=f"ws-trading-read-{self.key}")
                    pinger = (asyncio.create_task(self._ping(ws), name=f"ws-trading-ping-{self.key}")
                              if self.rules.ping else None)
                    try:
                        await self._log_in()
                        failures = 0
                        self.connects += 1
                        await reader
                    finally:
                        for task in (reader, pinger):
                            if task is not None:
                                task.cancel()
                        await asyncio.gather(reader, *(t for t in [pinger] if t), return_exceptions=True)
            except asyncio.CancelledError:
                self._ws = None
                raise
            except _Refused as exc:
                self._ws = None
                self.lost(str(exc))
                self.state, self.reason = "refused", str(exc)
                self._log.bind(reason=str(exc)).error("websocket trading refused: orders go over REST")
                return
            except Exception as exc:  # noqa: BLE001 - any socket failure: reconnect (bounded)
                self._ws = None
                failures += 1
                self.lost(redact(f"{type(exc).__name__}: {exc}")[:200])
                if failures > self.retry_attempts:
                    self.state = "failed"
                    self._log.bind(reason=self.reason).error("websocket trading gave up reconnecting: orders go "
                                                             "over REST until retry_websocket_initialization()")
                    return
                await asyncio.sleep(min(10.0, 0.2 * 2 ** failures) * (0.5 + random.random()))
                continue
            self._ws = None
            self.lost("socket closed")
            await asyncio.sleep(0.2 * (0.5 + random.random()))

    async def _read(self, ws: Any) -> None:
        async for frame in ws:
            try:
                message = decode_frame(frame, frozenset({"pong"}))
            except Exception:  # noqa: BLE001 - an unreadable frame on the trading socket: counted, skipped
                self.uncorrelated += 1
                continue
            self.on_message(message)

    async def _ping(self, ws: Any) -> None:
        while True:
            await asyncio.sleep(self.rules.ping_interval)
            await ws.send(json.dumps(self.rules.ping(now_ms())))


class SharedSocket(TradingChannel):
    """Requests on the key's private stream socket (the connection calls `on_message` first with each frame,
    `opened()` when it is live, `lost()` when it drops)."""

    def __init__(self, key: ConnectionKey, rules: WsTradingRules, credentials: Credentials, connection: Any,
                 **kwargs: Any) -> None:
        super().__init__(key, rules, credentials, **kwargs)
        self.connection = connection
        self._task: asyncio.Task | None = None
        self._failures = 0  # logins in a row that did not finish

    async def start(self) -> None:
        self.connection.trading = self
        if self.connection.live:
            self.opened()
        else:
            self.state = "connecting"

    async def restart(self) -> None:
        self.state, self.reason = "down", ""
        await self.start()

    async def stop(self) -> None:
        if getattr(self.connection, "trading", None) is self:
            self.connection.trading = None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.lost("stopped")
        self.state = "stopped"

    def opened(self) -> None:
        if self.state in ("refused", "stopped"):
            return
        self.state = "connecting"
        self._task = asyncio.create_task(self._open(), name=f"ws-trading-login-{self.key}")

    async def _open(self) -> None:
        try:
            await self._log_in()
        except _Refused as exc:
            self.lost(str(exc))
            self.state, self.reason = "refused", str(exc)
            self._log.bind(reason=str(exc)).error("websocket trading refused: orders go over REST")
        except (ConnectionError, TimeoutError, _NotSent) as exc:
            self.lost(f"login did not finish: {type(exc).__name__}: {exc}")
            self._failures += 1
            if self._failures <= self.retry_attempts and self.connection.live:  # the socket is fine: log in again
                await asyncio.sleep(min(10.0, 0.2 * 2 ** self._failures) * (0.5 + random.random()))
                if self.connection.live and self.state == "down":
                    self.opened()
            elif self._failures > self.retry_attempts:
                self.state = "failed"
            return
        self._failures = 0

    async def _send(self, frame: Any) -> None:
        try:
            await self.connection.send_frame(frame)
        except ConnectionError as exc:
            raise _NotSent(str(exc)) from None
