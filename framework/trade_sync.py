"""TradeSync: dedup every fill, store it (group commit), log it, and hand what was stored to delivery."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, defaultdict, deque
from pathlib import Path
from typing import Any, Callable

from loguru import logger

from framework.account import BalanceUpdate, PositionUpdate
from framework.events import ConnectionKey, OrderUpdate, Trade, now_ms, with_delivery
from framework.errors import StoreError
from framework.progress import Progress
from framework.retry import STORE_WRITE
from framework.spool import Spool, encode
from framework.store import TradeStore, order_rank, raw_to_text, write_in_steps
from framework.sync_log import TradeSyncLogger

DedupKey = tuple[str, str, str, str, str, str]


class RecentKeys:
    """A bounded memory of dedup keys already seen: the fast first line of dedup (the store is the last).

    Keys are kept as one joined string each (about 120 bytes), oldest forgotten first; venues replay
    recent fills (reconnects, snapshots, backfill overlaps), which is what this window must hold.
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._keys: OrderedDict[str, None] = OrderedDict()

    def add(self, key: DedupKey) -> bool:
        """Remember the key; False if it was already known."""
        text = "\x1f".join(key)
        if text in self._keys:
            return False
        self._keys[text] = None
        if len(self._keys) > self.capacity:
            self._keys.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._keys)


class TradeSync:
    """Decides new vs duplicate for every fill and writes batches to the store in arrival order.

    `accept()` is synchronous and never blocks the socket; a writer task drains the queue, so
    whatever arrives while one batch commits goes into the next one (group commit). A write the
    store cannot take for now goes to the spool and is retried; a row it refuses becomes a dead
    letter; nothing stops the writer. Fills reach `on_stored` only once committed (with their seq),
    completed late fields reach `on_amended`: delivery follows durability.
    """

    def __init__(
        self,
        store: TradeStore,
        sync_log: TradeSyncLogger,
        *,
        max_batch: int = 5000,
        recent_capacity: int = 200_000,
        prime_window_ms: int = 7 * 24 * 3600 * 1000,
        spool_path: str | Path | None = None,
        high_water: int = 20_000,
        write_policy: Any = None,
    ) -> None:
        self.store = store
        self.sync_log = sync_log
        self.max_batch = max_batch
        self.prime_window_ms = prime_window_ms
        self.recent = RecentKeys(recent_capacity)
        self.progress = Progress()
        self.stored = 0
        self.duplicates = 0
        self.orders_stored = 0
        self.account_stored = 0  # balance and position states written
        self.dead_letters = 0
        self.write_errors = 0
        self.peak_pending = 0  # the longest the in-memory queue has been
        self.high_water = high_water  # sockets wait for the writer past this many queued events
        self.write_policy = write_policy or STORE_WRITE  # how the writer waits out an unreachable store
        self._room = asyncio.Event()
        self._queue: deque[tuple[str, Any]] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._primed: set[ConnectionKey] = set()
        self._fee_missing: OrderedDict[DedupKey, None] = OrderedDict()  # new fills that came without a fee
        self.spool = Spool(Path(spool_path)) if spool_path else None
        self._spooled_here = 0
        self.store_failing = False
        self._spool_foreign = 0  # items an earlier run left in the spool (counted at start())
        self.unexpected_errors = 0
        self.store_ready = asyncio.Event()  # set while the store is open; until then everything is spooled
        self.store_ready.set()
        self.on_stored: Callable[[list[Trade]], None] = _ignore  # fills just committed, each with its seq
        self.on_amended: Callable[[list[Trade]], None] = _ignore  # stored fills whose late fields were completed
        self.on_resync: Callable[[], None] = _ignore  # committed fills may not have been handed on: re-read the store
        self.on_spooled: Callable[[list[Trade]], None] = _ignore  # new fills durable in the spool, not yet stored

    async def start(self) -> None:
        """Write back what an earlier run left in the spool (if the store takes it now), then run."""
        if self._task is not None:
            return
        if self.spool is not None:
            self._spool_foreign = self.spool.count()
        if self.spool is not None and self.spool.exists() and self.store_ready.is_set():
            replayed = 0
            try:
                while self.spool.exists():
                    batch = self._mark_foreign(self.spool.read(self.max_batch))
                    await self._write_safely(batch)
                    self.spool.advance()
                    self._spool_written(len(batch))
                    replayed += len(batch)
            except StoreError as exc:  # still down: the writer keeps trying
                self.sync_log.error("spool replay interrupted", error=str(exc), replayed=replayed)
            else:
                self.sync_log.event("spool replayed", events=replayed)
        self._task = asyncio.create_task(self._writer(), name="trade-sync-writer")

    async def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued (up to `timeout`), then end the writer."""
        if self._task is None:
            return
        if not self.store_failing:  # an unreachable store will not take it: straight to the spool
            try:
                await self.progress.wait_until(self.progress.submitted, timeout)
            except TimeoutError:
                pass
        task, self._task = self._task, None
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():
                raise
        unwritten = len(self._queue) + self._spooled_here
        if unwritten and self.spool is not None:
            await self._spool_queue()  # nothing is lost: the next start writes it
            self.sync_log.error("store unreachable at shutdown: events kept in the spool",
                                spool=str(self.spool.path), events=unwritten)
        elif unwritten:
            logger.bind(pending=unwritten).error("trade sync stopped with unwritten events")
            self.sync_log.error("trade sync stopped with unwritten events", pending=unwritten)

    async def prime(self, key: ConnectionKey) -> None:
        """Load the recent fills of a key from the store, so replays after a restart count as duplicates."""
        if key in self._primed:
            return
        self._primed.add(key)
        if not self.store_ready.is_set():
            self._primed.discard(key)  # the store is the final word meanwhile; prime when it is back
            return
        since = now_ms() - self.prime_window_ms
        try:
            for dedup_key in await self.store.recent_trade_keys(key, since, self.recent.capacity // 4):
                self.recent.add(tuple(dedup_key))
            for dedup_key in await self.store.fee_missing_keys(key, since, 10_000):
                self._fee_missing[tuple(dedup_key)] = None
        except StoreError as exc:
            self._primed.discard(key)
            logger.bind(key=str(key), error=str(exc)).warning("dedup memory not primed: the store decides alone")

    def accept(self, trade: Trade) -> bool:
        """Queue a fill for storage; True if it is new (deliver it), False if it is a duplicate."""
        is_new = self.recent.add(trade.dedup_key)
        if is_new:
            if trade.fee_cost is None:  # a later copy may bring the fee (Binance TRADE_LITE, then the order event)
                self._fee_missing[trade.dedup_key] = None
                if len(self._fee_missing) > 10_000:
                    self._fee_missing.popitem(last=False)
            self._submit("trade", trade)
        elif trade.fee_cost is not None and trade.dedup_key in self._fee_missing:
            self._submit("fee", trade)  # removed from _fee_missing once the store has it
        else:
            self._submit("duplicate", trade)
        return is_new

    def record_order(self, update: OrderUpdate) -> None:
        self._submit("order", update)

    def record_account(self, event: BalanceUpdate | PositionUpdate) -> None:
        """A balance or position state: stored (latest state and history) with the next batch."""
        self._submit(event.channel, event)

    def record_dead_letter(self, key: str, raw: Any, error: str, consumer: str | None = None) -> None:
        """Keep what could not be read or stored (or, with `consumer`, an event that consumer missed)."""
        if consumer is None:
            self._submit("dead", (key, raw, error, now_ms()))
        else:
            self._submit("dead", (key, raw, error, now_ms(), consumer))

    def _submit(self, kind: str, item: Any) -> None:
        self._queue.append((kind, item))
        self.progress.submit()
        self._wakeup.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def congested(self) -> bool:
        """Past the high-water mark: socket readers should wait for room."""
        return len(self._queue) > self.high_water

    async def wait_stored(self, timeout: float | None = None) -> None:
        """Wait until everything submitted so far is written (stored, refused as a dead letter, or spooled)."""
        await self.progress.wait_until(self.progress.submitted, timeout)

    @property
    def spooled(self) -> int:
        """Items waiting in the spool file for the store."""
        return self._spool_foreign + self._spooled_here

    async def wait_for_room(self) -> None:
        """Called by socket readers: past the high-water mark, wait until the writer is halfway down.

        The store is the bottleneck then; waiting leaves the backlog in the kernel's socket buffers
        instead of this process's memory (a venue that gives up on us is reconnected and backfilled).
        """
        while len(self._queue) > self.high_water // 2:
            self._room.clear()
            await self._room.wait()

    async def _writer(self) -> None:
        """Write batches in arrival order. While the store is unreachable everything goes, in order,
        to the spool file (memory stays bounded) and the write is retried by the writer's policy; the
        spool is written back first when it returns. Nothing ends this loop but cancellation: an error no
        step foresaw is logged and the loop goes on."""
        while True:
            try:
                async for attempt in self.write_policy.copy():
                    with attempt:
                        await self._step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. the spool's disk: log, wait, try again
                self.unexpected_errors += 1
                logger.bind(error=repr(exc)).opt(exception=exc).error("trade sync writer step failed; retrying")
                self.sync_log.error("trade sync writer step failed", error=repr(exc))
                await asyncio.sleep(1.0)

    async def _step(self) -> None:
        """One unit of work: wait, or write one batch (from the spool first). A transient StoreError comes out
        (after what was queued moved to the spool) for the write policy to retry."""
        if not self.store_ready.is_set():
            if self._queue and self.spool is not None:
                await self._spool_queue()
            self._wakeup.clear()
            waiters = {asyncio.ensure_future(self.store_ready.wait()), asyncio.ensure_future(self._wakeup.wait())}
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
            return
        if self.spool is not None and self.spool.exists():
            if self._queue:
                await self._spool_queue()  # what arrived since stays behind what is on disk
            batch = self._mark_foreign(self.spool.read(self.max_batch))
            try:
                await self._write_safely(batch)
            except StoreError as exc:
                self._store_down(exc, len(batch))
                raise
            self.spool.advance()
            self._spool_written(len(batch))
            self.store_failing = False
            return
        if not self._queue:
            self._wakeup.clear()
            await self._wakeup.wait()
            return
        self.peak_pending = max(self.peak_pending, len(self._queue))
        count = min(len(self._queue), self.max_batch)
        batch = [self._queue[i] for i in range(count)]
        try:
            await self._write_safely(batch)
        except StoreError as exc:
            if self.spool is not None:
                await self._spool_queue()
            self._store_down(exc, count)
            raise
        self.store_failing = False
        for _ in range(count):
            self._queue.popleft()
        self.progress.done(count)
        self._room.set()

    def _store_down(self, exc: StoreError, count: int) -> None:
        self.write_errors += 1
        self.store_failing = True
        logger.bind(error=str(exc), batch=count).error("trade store write failed, retrying")
        self.sync_log.error("store write failed", error=str(exc), batch=count, spooled=self.spooled or None)

    async def _spool_queue(self) -> None:
        """Move everything queued in memory to the end of the spool file (durably, fsync on a worker thread,
        so the event loop goes on meanwhile), in order."""
        items = list(self._queue)
        self._queue.clear()
        write = asyncio.ensure_future(asyncio.to_thread(self.spool.append, items))
        try:
            await asyncio.shield(write)
        except asyncio.CancelledError:
            (outcome,) = await asyncio.gather(write, return_exceptions=True)  # the thread finishes it either way
            if isinstance(outcome, BaseException):
                self._queue.extendleft(reversed(items))
            else:
                self._spooled(items)
            raise
        except BaseException:
            self._queue.extendleft(reversed(items))  # not on disk: keep them in order for the next try
            raise
        self._spooled(items)

    def _spooled(self, items: list[tuple[str, Any]]) -> None:
        self._spooled_here += len(items)
        self._room.set()
        fresh = [item for kind, item in items if kind == "trade" and item.key in self._primed]
        if fresh:
            self.on_spooled(fresh)

    def _mark_foreign(self, batch: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        """Fills an earlier process spooled may have reached its strategies (it hands spooled fills on):
        they are delivered again marked redelivered."""
        foreign = min(len(batch), self._spool_foreign)
        return [(kind, with_delivery(item, redelivered=True)) if i < foreign and kind == "trade" else (kind, item)
                for i, (kind, item) in enumerate(batch)]

    def _spool_written(self, count: int) -> None:
        foreign = min(count, self._spool_foreign)  # replayed from an earlier process: not ours to count
        self._spool_foreign -= foreign
        self._spooled_here -= count - foreign
        self.progress.done(count - foreign)

    async def _write_safely(self, batch: list[tuple[str, Any]]) -> None:
        """Write a batch. Only a transient StoreError (the store is unreachable) comes out of here:
        when the store refuses an item, or anything unexpected happens (logged at ERROR), the batch is
        halved until the items at fault are found; each becomes a dead letter, the rest is stored."""
        try:
            await self._write(batch)
            return
        except StoreError as exc:
            if exc.transient:
                if not self.store_failing:
                    self.on_resync()  # part of the batch may be committed and not handed on
                raise
            error = f"store refused: {exc}"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug or a value nobody foresaw must not stop storage
            self.unexpected_errors += 1
            logger.bind(error=repr(exc), batch=len(batch)).opt(exception=exc).error(
                "unexpected error writing a batch: finding the items at fault")
            self.sync_log.error("unexpected store error", error=repr(exc), batch=len(batch))
            self.on_resync()
            error = f"unexpected error while storing: {exc!r}"
        if len(batch) > 1:
            middle = len(batch) // 2
            await self._write_safely(batch[:middle])
            await self._write_safely(batch[middle:])
        else:
            await self._refuse(batch[0], error)

    async def _refuse(self, item: tuple[str, Any], error: str) -> None:
        """Keep one item the store would not take as a dead letter (its encoded form and the error)."""
        kind, body = item
        if kind == "dead":
            key, raw, _, received, *consumer = body
            text = raw_to_text(raw)
            row = (key, text[:100_000] if text else text, error[:2000], received if _sane_ms(received) else now_ms(),
                   *consumer)
        else:
            row = (str(body.key), encode(kind, body), error[:2000], now_ms())
        try:
            await self._write([("dead", row)])
        except StoreError as exc:
            if exc.transient:
                raise
            self._lost(row, exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            self._lost(row, exc)

    def _lost(self, row: tuple, exc: BaseException) -> None:
        """Even its dead letter was refused: all that is left is the log."""
        logger.bind(key=row[0], error=repr(exc), item=str(row[1])[:2000]).error("item refused even as a dead letter")
        self.sync_log.error("item refused even as a dead letter", key=row[0], error=repr(exc),
                            item=str(row[1])[:2000])

    async def _write(self, batch: list[tuple[str, Any]]) -> None:
        trades: list[Trade] = []
        in_batch: set[DedupKey] = set()
        duplicates: list[Trade] = []
        latest_orders: dict[tuple, OrderUpdate] = {}
        dead: list[tuple] = []
        fee_copies: list[Trade] = []  # a later copy of a fill may carry the fee the first one lacked
        balances: list[BalanceUpdate] = []
        positions: list[PositionUpdate] = []
        for kind, item in batch:
            if kind == "trade":
                if item.dedup_key in in_batch:
                    duplicates.append(item)
                else:
                    in_batch.add(item.dedup_key)
                    trades.append(item)
            elif kind == "duplicate":
                duplicates.append(item)
            elif kind == "fee":
                duplicates.append(item)
                fee_copies.append(item)
            elif kind == "order":
                okey = (item.exchange, item.market, item.account, item.symbol, item.order_id)
                held = latest_orders.get(okey)
                if held is None or order_rank(item) > order_rank(held):
                    latest_orders[okey] = item
            elif kind == "balance":
                balances.append(item)
            elif kind == "position":
                positions.append(item)
            else:
                dead.append(item)

        # One transaction (one WAL flush) for the whole batch; a store without write_batch goes step by step.
        write = getattr(self.store, "write_batch", None)
        args: tuple = (trades, fee_copies, list(latest_orders.values()), dead)
        if balances or positions:  # account states ride the same transaction (stores from before them: no such args)
            args += (balances, positions)
        inserted, completed_keys = await (write(*args) if write is not None else write_in_steps(self.store, *args))
        self.account_stored += len(balances) + len(positions)
        # Delivery follows durability: handed on only now that all of it is committed.
        stored = [_committed(t, seq) for t, seq in zip(trades, inserted) if seq]
        if stored:
            self.on_stored(stored)
        if fee_copies:
            completed = set(map(tuple, completed_keys))
            amended = [t for t in fee_copies if t.dedup_key in completed]
            for trade in amended:
                self._fee_missing.pop(trade.dedup_key, None)
            if amended:
                self.on_amended(amended)

        # Counting and logging only after every write of the batch succeeded.
        groups: dict[tuple, list] = defaultdict(lambda: [0, 0, []])
        for trade, new in zip(trades, inserted):
            new = new is not None
            group = groups[(trade.exchange, trade.market.value, trade.account, trade.symbol, trade.source.value)]
            if new:
                group[0] += 1
            else:
                group[1] += 1
                group[2].append(trade.trade_id)
        for trade in duplicates:
            group = groups[(trade.exchange, trade.market.value, trade.account, trade.symbol, trade.source.value)]
            group[1] += 1
            group[2].append(trade.trade_id)
        for (exchange, market, account, symbol, source), (new, dup, dup_ids) in groups.items():
            self.stored += new
            self.duplicates += dup
            self.sync_log.log_trade_storage(
                exchange,
                symbol,
                new,
                dup,
                source,
                market=market,
                account=None if account == "default" else account,
                duplicate_ids=",".join(dup_ids[:20]) + ("…" if len(dup_ids) > 20 else "") if dup_ids else None,
            )
        self.orders_stored += len(latest_orders)
        for key, raw, error, *_ in dead:
            self.dead_letters += 1
            self.sync_log.dead_letter(key, error, raw=(raw_to_text(raw) or "")[:500])

    def stats(self) -> dict[str, int]:
        return {
            "stored": self.stored,
            "duplicates": self.duplicates,
            "orders": self.orders_stored,
            "account_states": self.account_stored,
            "dead_letters": self.dead_letters,
            "pending": self.pending,
            "write_errors": self.write_errors,
            "peak_pending": self.peak_pending,
            "spooled": self.spooled,
            "unexpected_errors": self.unexpected_errors,
        }


def _committed(trade: Trade, seq: int) -> Trade:
    """The fill just committed, with its delivery facts. Set in place, not copied: the writer holds the only
    reference (the queue's), and `seq` / `owner_unknown` are delivery facts outside the fill's equality."""
    object.__setattr__(trade, "seq", seq)
    object.__setattr__(trade, "owner_unknown", trade.client_order_id is None)
    return trade


def _ignore(*_: Any) -> None:
    return None


def _sane_ms(value: Any) -> bool:
    return isinstance(value, int) and 0 <= value < 2**62

