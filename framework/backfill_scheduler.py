"""When to backfill a key over REST, and its coverage marks: driven by the stream's gap notices.

Per symbol, the store keeps a mark "every fill up to T is stored". It moves only when a backfill over
[mark - overlap, now] finished and everything it fetched is stored, or while one unbroken live session
that began covered goes on (fills up to now are received and stored). Each (re)connect backfills from the
mark, so a gap is fetched whatever was stored after it, and a kill mid-catch-up leaves the mark where it
was. Fill times never move it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol

import attrs
from loguru import logger
from tenacity import AsyncRetrying

from framework.errors import AuthError
from framework.events import ConnectionKey, now_ms
from framework.retry import BACKFILL
from framework.sink import EventSink, GapNotice, Notice
from framework.store import TradeStore
from framework.sync_log import TradeSyncLogger

if TYPE_CHECKING:
    from framework.backfill import Backfiller
    from framework.venue import AccountRules


class Durability(Protocol):
    """What the scheduler needs of the store writer: whether the store is open, and when all is stored."""

    store_ready: asyncio.Event

    async def wait_stored(self, timeout: float | None = None) -> None: ...


class BackfillScheduler:
    """Backfills one key from its coverage marks on every LIVE notice (and when symbols join), one run at a
    time, requests merged; advances the marks while a covered session stays live; a final mark at close."""

    def __init__(
        self,
        key: ConnectionKey,
        backfiller: Backfiller,
        *,
        sink: EventSink,
        store: TradeStore,
        durability: Durability,
        sync_log: TradeSyncLogger,
        symbols: Callable[[], Awaitable[list[str]]],
        recent_client_ids: Callable[[list[str]], dict[str, str]] = lambda _ids: {},
        retry_policy: AsyncRetrying | None = None,
    ) -> None:
        self.key = key
        self.backfiller = backfiller
        self.sink = sink
        self.store = store
        self.durability = durability
        self.sync_log = sync_log
        self._symbols = symbols
        self._recent_client_ids = recent_client_ids
        self.retry_policy = retry_policy or BACKFILL
        self.backfills = 0
        self.error: str | None = None
        self.coverage_every = 2.0  # seconds between coverage marks while a covered session is live
        self._session = 0  # the latest live session's number
        self._live = False
        self._task: asyncio.Task | None = None
        self._keeper: asyncio.Task | None = None
        self._pending = False  # a backfill is asked for and not yet run
        self._gap: int | None = None  # the earliest gap start it must cover (None: from the marks)
        self._covered_session: int | None = None  # the live session whose start-up backfill finished
        self._covered_names: list[str] = []
        self._log = logger.bind(key=str(key))
        backfiller.known_client_ids = self._known_client_ids
        # The venue's account rules: on every LIVE notice the account is read over REST (the stream's deltas
        # after it); None: the venue's account state is not read.
        self.account_rules: AccountRules | None = None
        self.backfill_enabled = True  # False: no backfill, no coverage marks (the connector said backfill=False)
        self.snapshots = 0
        self.snapshot_error: str | None = None
        self._snapshot: asyncio.Task | None = None
        self._snapshot_again = False
        self.refresh_every = 1.0  # seconds between REST reads asked for by partial stream states
        self._refresh_due = False
        self._refresh: asyncio.TimerHandle | None = None
        self._last_snapshot = 0.0
        self._closed = False

    # notices -------------------------------------------------------------------------------------------
    def notice(self, notice: GapNotice) -> None:
        if notice.kind is Notice.LIVE:
            self._session, self._live = notice.session, True
            if self.backfill_enabled:
                self._request(notice.gap_since)
            if self.account_rules is not None:
                self._snapshot_account()
        elif notice.kind is Notice.DROPPED:
            if notice.session == self._session:
                self._live = False
        elif notice.kind is Notice.SYMBOLS and self.backfill_enabled:
            self._request(None)  # the symbols already covered are cheap

    def start(self) -> None:
        if self._keeper is None and self.backfill_enabled:
            self._keeper = asyncio.create_task(self._coverage_keeper(), name=f"coverage-{self.key}")

    async def close(self) -> None:
        """A clean stop: what arrived until now is stored, so the marks can say so; then end the tasks."""
        self._closed = True
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None
        if self._covered_session is not None and self._live:
            try:
                await self._advance_to_now(self._covered_session, 5.0)
            except Exception as exc:  # noqa: BLE001 - the next start backfills from the older mark
                self._log.bind(error=repr(exc)).warning("coverage mark not advanced at close")
        self._live = False
        for task in (self._task, self._keeper, self._snapshot):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._task = self._keeper = self._snapshot = None
        await self.backfiller.close()

    # account snapshots -------------------------------------------------------------------------------------
    def refresh_account(self) -> None:
        """A stream state lacked figures only REST has: read the account again soon (bursts make one read, at
        most one a `refresh_every` seconds)."""
        if self.account_rules is None or self._refresh_due or self._closed:
            return
        self._refresh_due = True
        delay = max(0.2, self.refresh_every - (asyncio.get_running_loop().time() - self._last_snapshot))

        def due() -> None:
            self._refresh_due = False
            self._refresh = None
            self._snapshot_account()

        self._refresh = asyncio.get_running_loop().call_later(delay, due)

    def _snapshot_account(self) -> None:
        """Read the account over REST now (once more after the one running, if one is)."""
        if self._closed:
            return  # closing: its ccxt client is closed, a read now would open another that nobody closes
        if self._snapshot is not None and not self._snapshot.done():
            self._snapshot_again = True
            return
        self._snapshot = asyncio.create_task(self._snapshot_loop(), name=f"account-snapshot-{self.key}")

    async def _snapshot_loop(self) -> None:
        while True:
            self._snapshot_again = False
            try:
                async for attempt in self.retry_policy.copy():
                    with attempt:
                        events = await self.backfiller.account_snapshot(self.account_rules, await self._symbols())
                events += await self._closed_since(events)
                self._last_snapshot = asyncio.get_running_loop().time()
                self.sink.publish(events)
                self.snapshots += 1
                self.snapshot_error = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reported; the stream's own account frames go on
                self.snapshot_error = f"account snapshot failed: {type(exc).__name__}: {exc}"
                self._log.bind(error=repr(exc)).error("account snapshot failed")
                self.sync_log.error("account snapshot failed", key=str(self.key), error=repr(exc))
            if not self._snapshot_again:
                return

    async def _closed_since(self, snapshot: list) -> list:
        """What the store holds that the snapshot does not list: venues leave flat positions and (Bybit) empty
        balances out, so a position held open is flat now and a balance held non-zero is zero now."""
        listed = {e.state_key for e in snapshot}
        stamp = max((e.timestamp for e in snapshot), default=now_ms())
        try:
            held_balances = await self.store.fetch_balances(self.key)
            held_positions = (await self.store.fetch_positions(self.key)
                              if self.key.market in self.account_rules.positions else [])
        except Exception as exc:  # noqa: BLE001 - the store is down: the snapshot alone goes on
            self._log.bind(error=repr(exc)).debug("stored account not read for the snapshot")
            return []
        now = now_ms()
        emptied = [attrs.evolve(b, free=0, locked=0, total=0, delta=None, reason=None, timestamp=stamp, source="rest",
                                raw=None, received_at=now)
                   for b in held_balances if b.total and b.state_key not in listed]
        closed = [attrs.evolve(p, direction="flat", size=0, contracts=0, entry_price=None, mark_price=None,
                               unrealized_pnl=None, liquidation_price=None, timestamp=stamp, source="rest", raw=None,
                               received_at=now)
                  for p in held_positions if p.size and p.state_key not in listed]
        return emptied + closed

    # backfill runs -----------------------------------------------------------------------------------------
    def _request(self, gap_since: int | None) -> None:
        """Backfill from the coverage marks (the earliest gap start too, if one is older)."""
        self._merge(gap_since)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name=f"backfill-{self.key}")

    def _merge(self, gap_since: int | None) -> None:
        """Requests not yet served merge into one that covers them all: the earliest gap start."""
        gaps = [g for g in (gap_since, self._gap) if g is not None]
        self._gap = min(gaps) if gaps else None
        self._pending = True

    async def _loop(self) -> None:
        while self._pending:
            gap_since, self._gap, self._pending = self._gap, None, False
            try:
                async for attempt in self.retry_policy.copy():
                    with attempt:
                        if self._pending:  # asked again meanwhile: one run covers both
                            gap_since = min((g for g in (gap_since, self._gap) if g is not None), default=None)
                            self._gap, self._pending = None, False
                        await self._run(gap_since)
                self.backfills += 1
                self.error = None
            except AuthError as exc:  # refused keys: retrying will not help; the stream reports it too
                self._failed(exc)
                return

    def _failed(self, exc: BaseException) -> None:
        self.error = f"backfill failed: {type(exc).__name__}: {exc}"
        self._log.bind(error=repr(exc)).error("backfill failed")
        self.sync_log.error("backfill failed", key=str(self.key), error=repr(exc))

    async def _run(self, gap_since: int | None) -> None:
        try:
            await self._backfill(gap_since)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(exc)
            raise

    async def _backfill(self, gap_since: int | None) -> None:
        await self.durability.store_ready.wait()  # the marks are in the store: a backfill waits for it
        session = self._session
        started = now_ms()
        marks = await self.store.get_coverage(self.key)
        if self.backfiller.rules.needs_symbol:
            names = sorted(set(await self._symbols()) | {s for s in marks if s != "*"})
            source = "the strategies' symbols and those stored"
        else:
            names = ["*"]
            source = "the venue (every symbol in one history)"
        self.sync_log.event("backfill symbols", key=str(self.key), symbols=",".join(names) or None, source=source)
        for name in names:
            symbol = None if name == "*" else name
            mark = marks.get(name)
            since = started - self.backfiller.lookback_ms if mark is None else mark - self.backfiller.overlap_ms
            if gap_since is not None:
                since = min(since, gap_since - self.backfiller.overlap_ms)
            self.sync_log.log_trade_fetch_start(self.key.exchange, symbol or "*", "rest", since=since)
            fetched = 0
            async for page in self.backfiller.pages(symbol, since):
                fetched += len(page)
                self.sink.publish(page)
                if self.sink.congested:
                    await self.sink.room()
            await self.durability.wait_stored()  # all of it is stored
            await self.store.advance_coverage(self.key, {name: started})
            self.sync_log.event("backfill fetched", key=str(self.key), symbol=name, fetched=fetched,
                                since=since, covered_to=started)
        if session == self._session and self._live:
            self._covered_session, self._covered_names = session, names

    # coverage marks ------------------------------------------------------------------------------------------
    async def _coverage_keeper(self) -> None:
        """While a covered session stays live, move the marks to now once what arrived is stored."""
        while True:
            await asyncio.sleep(self.coverage_every)
            session = self._session
            if self._covered_session != session or not self._live:
                continue
            try:
                await self._advance_to_now(session, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                self._log.bind(error=repr(exc)).warning("coverage mark not advanced")

    async def _advance_to_now(self, session: int, timeout: float | None) -> None:
        until = now_ms()
        await self.durability.wait_stored(timeout)
        if self._covered_session == session == self._session and self._live:  # unbroken since `until`
            await self.store.advance_coverage(self.key, {name: until for name in self._covered_names})

    async def _known_client_ids(self, order_ids: list[str]) -> dict[str, str]:
        """Client order ids of orders seen on the stream or stored: owners for REST fills that lack one."""
        found = self._recent_client_ids(order_ids)
        rest = [oid for oid in order_ids if oid not in found]
        if rest:
            found.update(await self.store.client_order_ids(self.key, rest))
        return found

    def status(self) -> dict[str, Any]:
        status = {"backfills": self.backfills, "backfill_error": self.error}
        if self.account_rules is not None:
            status.update(account_snapshots=self.snapshots, account_snapshot_error=self.snapshot_error)
        return status
