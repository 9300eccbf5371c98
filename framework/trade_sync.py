"""TradeSync: dedup every fill, store it (group commit), log it; keep order states and dead letters."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, defaultdict, deque
from pathlib import Path
from typing import Any

from loguru import logger

from framework.events import ConnectionKey, OrderUpdate, Trade, now_ms
from framework.errors import StoreError
from framework.progress import Progress
from framework.spool import Spool, encode
from framework.store import TradeStore, order_rank, raw_to_text
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
    whatever arrives while one batch commits goes into the next one (group commit). A failed
    write is retried with backoff and never dropped.
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
        self.dead_letters = 0
        self.write_errors = 0
        self.peak_pending = 0  # the longest the in-memory queue has been
        self.high_water = high_water  # sockets wait for the writer past this many queued events
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

    async def start(self) -> None:
        """Write back what an earlier run left in the spool (if the store takes it now), then run."""
        if self._task is not None:
            return
        if self.spool is not None:
            self._spool_foreign = self.spool.count()
        if self.spool is not None and self.spool.exists():
            replayed = 0
            try:
                while self.spool.exists():
                    batch = self.spool.read(self.max_batch)
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
            self._spool_queue()  # nothing is lost: the next start writes it
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
        since = now_ms() - self.prime_window_ms
        for dedup_key in await self.store.recent_trade_keys(key, since, self.recent.capacity // 4):
            self.recent.add(tuple(dedup_key))

    def accept(self, trade: Trade) -> bool:
        """Queue a fill for storage; True if it is new (deliver it), False if it is a duplicate."""
        is_new = self.recent.add(trade.dedup_key)
        if is_new:
            if trade.fee_cost is None:  # a later copy may bring the fee (Binance TRADE_LITE, then the order event)
                self._fee_missing[trade.dedup_key] = None
                if len(self._fee_missing) > 10_000:
                    self._fee_missing.popitem(last=False)
            self._submit("trade", trade)
        elif trade.fee_cost is not None and self._fee_missing.pop(trade.dedup_key, False) is None:
            self._submit("fee", trade)
        else:
            self._submit("duplicate", trade)
        return is_new

    def record_order(self, update: OrderUpdate) -> None:
        self._submit("order", update)

    def record_dead_letter(self, key: str, raw: Any, error: str) -> None:
        self._submit("dead", (key, raw, error, now_ms()))

    def _submit(self, kind: str, item: Any) -> None:
        self._queue.append((kind, item))
        self.progress.submit()
        self._wakeup.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

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
        to the spool file (memory stays bounded); the spool is written back first when it returns."""
        delay = 0.05
        while True:
            if self.spool is not None and self.spool.exists():
                if self._queue:
                    self._spool_queue()  # what arrived since stays behind what is on disk
                batch = self.spool.read(self.max_batch)
                try:
                    await self._write_safely(batch)
                except StoreError as exc:
                    delay = await self._store_down(exc, len(batch), delay)
                    continue
                self.spool.advance()
                self._spool_written(len(batch))
                self.store_failing = False
                delay = 0.05
                continue
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            self.peak_pending = max(self.peak_pending, len(self._queue))
            count = min(len(self._queue), self.max_batch)
            batch = [self._queue[i] for i in range(count)]
            try:
                await self._write_safely(batch)
            except StoreError as exc:
                if self.spool is not None:
                    self._spool_queue()
                delay = await self._store_down(exc, count, delay)
                continue
            delay = 0.05
            self.store_failing = False
            for _ in range(count):
                self._queue.popleft()
            self.progress.done(count)
            self._room.set()

    async def _store_down(self, exc: StoreError, count: int, delay: float) -> float:
        self.write_errors += 1
        self.store_failing = True
        logger.bind(error=str(exc), batch=count).error("trade store write failed, retrying")
        self.sync_log.error("store write failed", error=str(exc), batch=count, retry_in=f"{delay:.2f}s",
                            spooled=self.spooled or None)
        await asyncio.sleep(delay)
        return min(delay * 2, 5.0)

    def _spool_queue(self) -> None:
        """Move everything queued in memory to the end of the spool file (durably), in order."""
        items = list(self._queue)
        self.spool.append(items)
        self._queue.clear()
        self._spooled_here += len(items)
        self._room.set()

    def _spool_written(self, count: int) -> None:
        foreign = min(count, self._spool_foreign)  # replayed from an earlier process: not ours to count
        self._spool_foreign -= foreign
        self._spooled_here -= count - foreign
        self.progress.done(count - foreign)

    async def _write_safely(self, batch: list[tuple[str, Any]]) -> None:
        """Write a batch; if the store refuses its data (not its connection), find the refused items
        one by one and keep each as a dead letter with its error, so the rest is stored."""
        try:
            await self._write(batch)
        except StoreError as exc:
            if exc.transient:
                raise
            for kind, item in batch:
                try:
                    await self._write([(kind, item)])
                except StoreError as one:
                    if one.transient:
                        raise
                    key = str(item.key) if kind != "dead" else item[0]
                    await self._write([("dead", (key, encode(kind, item), f"store refused: {one}", now_ms()))])

    async def _write(self, batch: list[tuple[str, Any]]) -> None:
        trades: list[Trade] = []
        in_batch: set[DedupKey] = set()
        duplicates: list[Trade] = []
        latest_orders: dict[tuple, OrderUpdate] = {}
        dead: list[tuple] = []
        fee_copies: list[Trade] = []  # a later copy of a fill may carry the fee the first one lacked
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
            else:
                dead.append(item)

        inserted = await self.store.insert_trades(trades) if trades else []
        if fee_copies:
            await self.store.complete_fees(fee_copies)
        if latest_orders:
            await self.store.upsert_orders(list(latest_orders.values()))
        for row in dead:
            await self.store.add_dead_letter(*row)

        # Counting and logging only after every write of the batch succeeded.
        groups: dict[tuple, list] = defaultdict(lambda: [0, 0, []])
        for trade, new in zip(trades, inserted):
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
        for key, raw, error, _ in dead:
            self.dead_letters += 1
            self.sync_log.dead_letter(key, error, raw=(raw_to_text(raw) or "")[:500])

    def stats(self) -> dict[str, int]:
        return {
            "stored": self.stored,
            "duplicates": self.duplicates,
            "orders": self.orders_stored,
            "dead_letters": self.dead_letters,
            "pending": self.pending,
            "write_errors": self.write_errors,
            "peak_pending": self.peak_pending,
            "spooled": self.spooled,
        }

