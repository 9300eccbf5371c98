"""The event bus: validate → dedup → fan-out by channel and lane, to the store writer, strategies and components.

Fills go to the store writer (TradeSync) first and reach every consumer once stored, with their seq: delivery
follows durability. Order updates (and later balances, positions) are stored and fanned out at once. Each
registered component has its own bounded lanes, task, worker thread, circuit breaker and counters.
"""

from __future__ import annotations

import asyncio
import inspect
import queue
import threading
import time
from collections import deque
from typing import Any, Callable, Hashable, Iterable, Sequence

import attrs
from loguru import logger

from framework.errors import ConfigError, LifecycleError, StoreError
from framework.events import ConnectionKey, Event, OrderUpdate, Trade, now_ms, with_delivery
from framework.pipeline.breaker import BreakerState, CircuitBreaker
from framework.pipeline.channels import LANE_OF, Channel, Lane, channel_named
from framework.pipeline.config import BALANCED, PipelineConfig
from framework.pipeline.monitor import Monitor
from framework.pipeline.queues import LaneQueues
from framework.pipeline.routing import Router
from framework.sink import GapNotice
from framework.spool import decode, encode
from framework.store import OrderCursor, TradeStore, order_states_page
from framework.sync_log import TradeSyncLogger
from framework.trade_sync import TradeSync
from framework.validate import FUTURE_TOLERANCE_MS, as_raw, problem

CATCH_UP_PAGE = 500
WORKER_BATCH = 64  # events handed to a component's worker thread at once (plain-function handlers)
YIELD_EVERY = 64  # coroutine-handler events in a row before a component task lets the loop run others
REPLAY_POLL = 2.0  # seconds between looks for dead letters an operator asked to replay


def channel_of(event: Any) -> Channel:
    if isinstance(event, Trade):
        return Channel.TRADE
    if isinstance(event, OrderUpdate):
        return Channel.ORDER_UPDATE
    channel = getattr(event, "channel", None)
    if channel is None:
        raise TypeError(f"{type(event).__name__} names no channel")
    return Channel(channel)


def _entity(channel: Channel, event: Any) -> Hashable:
    """What a state update is about: the order, or (key, symbol)."""
    if channel is Channel.ORDER_UPDATE:
        return (event.exchange, event.market, event.account, event.symbol, event.order_id)
    return (getattr(event, "key", None), getattr(event, "symbol", None))


class KeySink:
    """The narrow interface one connection gets (framework.sink.EventSink)."""

    __slots__ = ("key", "_pipeline", "on_notice")

    def __init__(self, pipeline: Pipeline, key: ConnectionKey) -> None:
        self.key = key
        self._pipeline = pipeline
        self.on_notice: Callable[[GapNotice], None] | None = None

    def publish(self, events: Sequence[Event]) -> tuple[int, int]:
        return self._pipeline.publish(self.key, events)

    def dead_letter(self, raw: Any, error: str) -> None:
        self._pipeline.dead_letter(self.key, raw, error)

    def status(self, status: str, **fields: Any) -> None:
        self._pipeline.connection_status(self.key, status, **fields)

    def notice(self, notice: GapNotice) -> None:
        if self.on_notice is not None:
            self.on_notice(notice)

    @property
    def congested(self) -> bool:
        return self._pipeline.trade_sync.congested

    async def room(self) -> None:
        await self._pipeline.trade_sync.wait_for_room()

    def open_positions(self) -> tuple:
        return self._pipeline.open_positions(self.key)


class _Worker:
    """A daemon thread that runs a component's plain-function handlers, in order, a batch at a time."""

    def __init__(self, name: str) -> None:
        self.call_started: float | None = None  # monotonic time the running call began
        self.index = 0  # which call of the batch runs (or ran last)
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=f"component-{name}", daemon=True)
        self._thread.start()

    def run(self, calls: list[tuple[Callable, Any]]) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.put((loop, future, calls))
        return future

    def close(self) -> None:
        self._jobs.put(None)

    def _loop(self) -> None:
        clock = time.monotonic
        while (job := self._jobs.get()) is not None:
            loop, future, calls = job
            errors: list[BaseException | None] = []
            for index, (fn, data) in enumerate(calls):
                self.index = index
                self.call_started = clock()
                try:
                    fn(data)
                    errors.append(None)
                except Exception as exc:  # noqa: BLE001 - handed to the component's task
                    errors.append(exc)
            self.call_started = None
            try:
                loop.call_soon_threadsafe(_settle, future, errors)
            except RuntimeError:  # the loop is closed
                return


def _settle(future: asyncio.Future, result: Any) -> None:
    if not future.done():
        future.set_result(result)


class Component:
    """A registered consumer: its lanes, task, worker, breaker and counters."""

    def __init__(self, pipeline: Pipeline, name: str, target: Any, channels: frozenset[Channel]) -> None:
        config = pipeline.config
        self.pipeline = pipeline
        self.name = name
        self.target = target
        self.channels = channels
        self.breaker = CircuitBreaker(name, config.breaker, config.alerts.max_error_rate_percent)
        self.stats = pipeline.monitor.consumer(name, "component", self._depth, self.breaker)
        self.queues = LaneQueues(config.queue.max_size, config.queue.priority_multiplier,
                                 [self.stats.lanes[lane] for lane in Lane])
        self.timeout = config.queue.timeout_seconds
        self.track_latency = config.performance.enable_latency_tracking
        self.handlers = {channel: _handler(target, channel, name) for channel in channels}
        self.last_seq: int | None = pipeline.stored_seq  # fills after this one are its own
        self._states_cursor: OrderCursor | None = None  # order states being read back from the store
        self.missed = 0  # events skipped while its breaker was open
        self.replays: set[int] = set()  # seqs of dead letters handed back: at or before last_seq on purpose
        self.busy_since: float | None = None  # monotonic time the running coroutine handler began
        self._worker: _Worker | None = None
        self._timed_out = False
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task | None = None
        self._log = logger.bind(consumer=name)

    def _depth(self) -> dict[Lane, int]:
        return self.queues.depth()

    # What it counts is the monitor's (since the monitor's last restart):
    @property
    def timeouts(self) -> int:
        return self.stats.timeouts

    @property
    def errors(self) -> int:
        """Handler calls that raised or timed out."""
        return sum(lane.errors for lane in self.stats.lanes.values()) + self.stats.timeouts

    @property
    def dead_letters(self) -> int:
        return self.stats.dead_letters

    # the bus's side ------------------------------------------------------------------------------------
    def put(self, channel: Channel, event: Any, entity: Hashable = None) -> None:
        self.queues.put(LANE_OF[channel], channel, event, time.perf_counter_ns(), entity)
        self._idle.clear()
        self._wakeup.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"component-{self.name}")

    async def stop(self, timeout: float) -> None:
        task, self._task = self._task, None
        if task is not None:
            try:
                async with asyncio.timeout(timeout):
                    await self.drained(task)
            except TimeoutError:
                self._log.bind(pending=len(self.queues)).warning("component stopped before its queue was empty")
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    async def drained(self, task: asyncio.Task | None = None) -> None:
        task = task or self._task
        while not self._idle.is_set() and task is not None and not task.done():
            await self._idle.wait()

    def hung_for(self, now: float) -> float:
        """Seconds the running handler call has been running (0 when none runs)."""
        started = self.busy_since
        if started is None and self._worker is not None:
            started = self._worker.call_started
        return now - started if started is not None else 0.0

    def interrupt(self) -> None:
        """The running call passed `timeout_seconds`: count it failed and go on without it."""
        if self._task is not None and not self._task.done() and not self._timed_out:
            self._timed_out = True
            self._task.cancel()

    # the component's task ---------------------------------------------------------------------------------
    async def _run(self) -> None:
        pending: list[tuple[Lane, tuple]] = []  # taken but not handled (after a timeout cut a batch)
        streak = 0
        while True:
            batch: list[tuple[Lane, tuple]] = []
            try:
                if not pending:
                    item = self.queues.take()
                    if item is None:
                        if self.queues.lagging:
                            await self._catch_up()
                            continue
                        if self.queues.states_behind is not None or self._states_cursor is not None:
                            await self._read_back_states()
                            continue
                        self._idle.set()
                        self._wakeup.clear()
                        await self._wakeup.wait()
                        continue
                    pending.append(item)
                lane, (channel, event, enqueued) = pending[0]
                fn, is_coroutine = self.handlers[channel]
                if is_coroutine:
                    pending.pop(0)
                    await self._handle_one(lane, channel, event, enqueued, fn)
                    streak += 1
                    if streak >= YIELD_EVERY:  # a handler that never suspends must not hold the loop: the
                        streak = 0  # store writer and the sockets run between its events
                        await asyncio.sleep(0)
                    continue
                # One at a time unless the breaker is closed: a half-open trial's result decides the next event.
                closed = self.breaker.state is BreakerState.CLOSED
                run, limit = 1, (len(pending) if closed else 1)
                while run < limit and not self.handlers[pending[run][1][0]][1]:
                    run += 1  # the plain-function ones at the head of what is pending
                batch, pending = pending[:run], pending[run:]
                while not pending and len(batch) < WORKER_BATCH and closed:
                    item = self.queues.take()
                    if item is None:
                        break
                    if self.handlers[item[1][0]][1]:  # a coroutine handler: it runs after this batch
                        pending.append(item)
                        break
                    batch.append(item)
                await self._handle_batch(batch)
                batch = []
            except asyncio.CancelledError:
                if not self._timed_out:
                    raise
                asyncio.current_task().uncancel()
                self._timed_out = False
                pending = self._after_timeout(batch) + pending

    def _allowed(self, lane: Lane, channel: Channel, event: Any) -> bool:
        if self.replays and channel is Channel.TRADE and event.seq in self.replays:
            self.replays.discard(event.seq)  # a dead letter handed back: due again whatever its seq
        elif channel is Channel.TRADE and self.last_seq is not None and event.seq is not None \
                and event.seq <= self.last_seq:
            return False  # read already by a catch-up from the store
        if self.breaker.allow():
            return True
        self.missed += 1
        if lane is Lane.CRITICAL:
            self._dead_letter(channel, event, "circuit breaker open")
        else:
            self.stats.lanes[lane].dropped += 1
        return False

    async def _handle_one(self, lane: Lane, channel: Channel, event: Any, enqueued: int, fn: Callable) -> None:
        if not self._allowed(lane, channel, event):
            return
        self.busy_since = time.monotonic()
        try:
            await fn(event)
        except asyncio.CancelledError:
            if self._timed_out:
                self._failed(lane, channel, event, TimeoutError(f"handler ran past {self.timeout} s"))
            raise
        except Exception as exc:  # noqa: BLE001 - a failing component is isolated, never the bus
            self._failed(lane, channel, event, exc)
        else:
            self._succeeded(lane, channel, event, enqueued)
        finally:
            self.busy_since = None

    async def _handle_batch(self, batch: list[tuple[Lane, tuple]]) -> None:
        runnable = [(lane, item) for lane, item in batch if self._allowed(lane, item[0], item[1])]
        if not runnable:
            return
        if self._worker is None:
            self._worker = _Worker(self.name)
        self._running = runnable
        errors = await self._worker.run([(self.handlers[item[0]][0], item[1]) for _, item in runnable])
        self._running = []
        for (lane, (channel, event, enqueued)), error in zip(runnable, errors):
            if error is None:
                self._succeeded(lane, channel, event, enqueued)
            else:
                self._failed(lane, channel, event, error)

    def _after_timeout(self, batch: list[tuple[Lane, tuple]]) -> list[tuple[Lane, tuple]]:
        """A plain-function call hung: that event failed; the ones before it ran, the ones after it go again
        on a fresh worker thread (the hung one is left to finish on its own)."""
        running = getattr(self, "_running", [])
        self._running = []
        if not running or self._worker is None:
            return []
        index = self._worker.index
        self._worker = None  # abandoned: a daemon thread stuck in user code
        for lane, (channel, event, enqueued) in running[:index]:
            self._succeeded(lane, channel, event, enqueued)
        lane, (channel, event, _) = running[index]
        self._failed(lane, channel, event, TimeoutError(f"handler ran past {self.timeout} s"))
        return running[index + 1:]

    def _succeeded(self, lane: Lane, channel: Channel, event: Any, enqueued: int) -> None:
        self.breaker.record_success()
        counters = self.stats.lanes[lane]
        # Every CRITICAL event's latency is recorded; one in four of the others (the histogram stays true to
        # their distribution at a quarter of the cost, on the path a book flood takes).
        if self.track_latency and (lane is Lane.CRITICAL or not counters.handled & 3):
            counters.record(time.perf_counter_ns() - enqueued)
        else:
            counters.handled += 1
        if channel is Channel.TRADE and event.seq is not None:
            self.last_seq = event.seq if self.last_seq is None else max(self.last_seq, event.seq)

    def _failed(self, lane: Lane, channel: Channel, event: Any, exc: BaseException) -> None:
        self.breaker.record_failure()
        counters = self.stats.lanes[lane]
        counters.handled += 1
        if isinstance(exc, TimeoutError):
            self.stats.timeouts += 1
        else:
            counters.errors += 1
        self._log.bind(channel=channel.value, error=repr(exc)[:300]).warning("component handler failed")
        if channel is Channel.TRADE and event.seq is not None:
            self.last_seq = event.seq if self.last_seq is None else max(self.last_seq, event.seq)
        if lane is Lane.CRITICAL:
            self._dead_letter(channel, event, f"handler failed: {type(exc).__name__}: {exc}")

    def _dead_letter(self, channel: Channel, event: Any, error: str) -> None:
        self.stats.dead_letters += 1
        kind = "trade" if channel is Channel.TRADE else "order"
        self.pipeline.dead_letter(event.key, encode(kind, event), error, consumer=self.name)

    async def _catch_up(self) -> None:
        """CRITICAL fills that did not fit: read them from the store after the last one handled, in order."""
        self.queues.lagging = False
        pipeline = self.pipeline
        try:
            if self.last_seq is None:
                self.last_seq = await pipeline.store.max_seq()
                return
            fn, is_coroutine = self.handlers[Channel.TRADE]
            while True:
                rows = await pipeline.store.trades_after(pipeline.known_keys(), self.last_seq, CATCH_UP_PAGE)
                now = time.perf_counter_ns()
                items = [(Lane.CRITICAL, (Channel.TRADE, with_delivery(trade, seq=seq, owner_unknown=trade.client_order_id
                                                                      is None), now)) for seq, trade in rows]
                if is_coroutine:  # the same paths as queued events: its own task, or its own worker thread
                    for lane, (channel, trade, enqueued) in items:
                        await self._handle_one(lane, channel, trade, enqueued, fn)
                else:
                    for start in range(0, len(items), WORKER_BATCH):
                        await self._handle_batch(items[start:start + WORKER_BATCH])
                if rows:
                    self.last_seq = max(self.last_seq, rows[-1][0])
                if len(rows) < CATCH_UP_PAGE:
                    return
        except asyncio.CancelledError:
            self.queues.lagging = True  # cut short (a handler timed out, or a stop): the rest is read again
            raise
        except StoreError as exc:
            self.queues.lagging = True
            self._log.bind(error=str(exc)).warning("component catch-up from the store failed; retrying")
            await asyncio.sleep(1.0)

    async def _read_back_states(self) -> None:
        """Order states that did not fit: the latest stored state of every order updated since the earliest one
        not kept, a page at a time, once what was received so far is written (the store is then not older than
        what was missed)."""
        queues, pipeline = self.queues, self.pipeline
        cursor, behind = self._states_cursor, queues.states_behind
        if behind is not None and (cursor is None or behind < cursor.since_ms):
            cursor = OrderCursor(since_ms=behind)
        self._states_cursor, queues.states_behind = None, None
        try:
            await pipeline.trade_sync.wait_stored()
            states, self._states_cursor = await order_states_page(pipeline.store, pipeline.known_keys(), cursor,
                                                                  queues.max_size)
        except StoreError as exc:
            self._states_cursor = cursor
            self._log.bind(error=str(exc)).warning("order states not read back from the store yet; retrying")
            await asyncio.sleep(1.0)
            return
        now = time.perf_counter_ns()
        for state in states:
            queues.critical.append((Channel.ORDER_UPDATE, state, now))

    def status(self) -> dict[str, Any]:
        return {
            "channels": sorted(c.value for c in self.channels),
            "queued": {lane.name.lower(): n for lane, n in self.queues.depth().items()},
            "breaker": self.breaker.state.value,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "missed": self.missed,
            "dead_letters": self.dead_letters,
            "last_seq": self.last_seq,
        }


def _handler(target: Any, channel: Channel, name: str) -> tuple[Callable, bool]:
    """`on_<channel>_update(data)`, else `process_websocket_data(channel, data)`, else the target itself
    called as `(channel, data)`; with whether it is a coroutine function."""
    fn = getattr(target, f"on_{channel.value}_update", None)
    if fn is not None:
        return fn, inspect.iscoroutinefunction(fn)
    generic = getattr(target, "process_websocket_data", None)
    if generic is None and callable(target) and not isinstance(target, type):
        generic = target
    if generic is None:
        raise ConfigError(
            f"component {name!r} cannot take {channel.value!r}: give it on_{channel.value}_update(data) or "
            "process_websocket_data(channel, data)")
    if inspect.iscoroutinefunction(generic):
        async def call(data: Any) -> Any:
            return await generic(channel.value, data)

        return call, True
    return (lambda data: generic(channel.value, data)), False


class Pipeline:
    """One per pool. Producers publish; the store writer, strategies and registered components consume."""

    def __init__(
        self,
        trade_sync: TradeSync,
        store: TradeStore,
        sync_log: TradeSyncLogger,
        config: PipelineConfig | None = None,
        *,
        future_tolerance_ms: int = FUTURE_TOLERANCE_MS,
    ) -> None:
        self.config = config or BALANCED
        self.trade_sync = trade_sync
        self.store = store
        self.sync_log = sync_log
        self.future_tolerance_ms = future_tolerance_ms
        self.router = Router()
        self.monitor = Monitor(self.config)
        self.stored_seq: int | None = None  # the newest seq stored (or in the store when it opened)
        self.invalid = 0
        self.repeats = 0  # exact repeats dropped by the dedup window (non-fill channels)
        self.alerts: list[Any] = []
        self._components: dict[str, Component] = {}
        self._by_channel: dict[Channel, tuple[Component, ...]] = {}
        self._dedup = self.config.queue.enable_deduplication
        self._dedup_window = self.config.queue.dedup_window_seconds
        self._recent: dict[int, tuple[Hashable, float]] = {}  # hash of a marker -> (marker, when last seen)
        self._expiry: deque[tuple[float, int]] = deque()  # (when, hash) in time order
        self._keys: set[ConnectionKey] = set()
        self._updates: dict[Any, list[Event]] = {}  # order updates for strategies, not handed over yet
        # Market data for strategies: (channel, key, symbol, timeframe) -> the strategies watching it.
        self._market: dict[tuple, tuple[Any, ...]] = {}
        self._balances: dict[tuple, Any] = {}  # the latest balance state per asset (to complete partial ones)
        self._positions: dict[ConnectionKey, dict[tuple, Any]] = {}  # key -> its open positions, newest states
        self.account_refresh: dict[ConnectionKey, Callable[[], None]] = {}  # key -> ask for a REST balance read
        # key -> its order gateway (framework.orders): sees every fill and order state of the key as it arrives
        self.order_taps: dict[ConnectionKey, Any] = {}
        self._flush_due = False
        self._tasks: set[asyncio.Task] = set()
        self._running = False
        trade_sync.on_stored = self._stored
        trade_sync.on_amended = self._amended
        trade_sync.on_resync = self._resync
        trade_sync.on_spooled = self._spooled  # durable on disk: strategies need not wait
        self._writer_stats = self.monitor.consumer("store", "store", self._writer_depth)

    # lifecycle --------------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._running:
            return
        self._running = True
        if self.config.monitor:
            self._spawn(self.monitor.run(self._alert, self._metrics), "pipeline-monitor")
        self._spawn(self._watchdog(), "pipeline-watchdog")
        self._spawn(self._replay_poller(), "pipeline-replays")
        for component in self._components.values():
            component.start()

    async def stop(self, timeout: float = 10.0) -> None:
        self._running = False
        for component in list(self._components.values()):
            await component.stop(timeout)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # producers ----------------------------------------------------------------------------------------
    def sink(self, key: ConnectionKey) -> KeySink:
        self._keys.add(key)
        return KeySink(self, key)

    def known_keys(self) -> list[ConnectionKey]:
        return sorted(self._keys, key=str)

    def publish(self, key: ConnectionKey, events: Iterable[Event]) -> tuple[int, int]:
        """Private events of one key: validated (insane ones become dead letters), fills to the store writer
        (dedup; stored ones fan out from `_stored`), order updates stored and fanned out now. Never blocks.
        Returns (events taken, dead letters written)."""
        now = now_ms()
        tolerance = self.future_tolerance_ms
        accept, record_order = self.trade_sync.accept, self.trade_sync.record_order
        taken, insane = 0, None
        orders = 0
        tap = self.order_taps.get(key)
        updates = self._updates  # per strategy, in order: handed over once this turn of the loop is done
        for event in events:
            reason = problem(event, now, tolerance)
            if reason is not None:
                if insane is None:
                    insane = {}
                raw = as_raw(event)
                reasons = insane.setdefault(id(raw), (raw, []))[1]  # one letter per row (order + its fill)
                if reason not in reasons:
                    reasons.append(reason)
                continue
            taken += 1
            if isinstance(event, Trade):
                accept(event)
                if tap is not None and event.client_order_id:
                    tap.on_trade(event)
                continue
            channel = channel_of(event)
            if self._dedup and self._repeated(channel, _state_of(event)):
                continue
            if channel is Channel.BALANCE or channel is Channel.POSITION:
                self._account(key, channel, event, updates)
                continue
            orders += 1
            record_order(event)
            if tap is not None:
                tap.on_order_update(event)
            for subscription in self.router.route(event):
                batch = updates.get(subscription.consumer)
                if batch is None:
                    updates[subscription.consumer] = [event]
                else:
                    batch.append(event)
            for component in self._by_channel.get(channel, ()):
                component.put(channel, event, _entity(channel, event))
        if updates and not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._hand_due)
        published = self.monitor.published
        published[Channel.TRADE] += taken - orders
        if orders:
            published[Channel.ORDER_UPDATE] += orders
        letters = 0
        if insane:
            for raw, reasons in insane.values():
                letters += 1
                self.invalid += 1
                self.monitor.invalid += 1
                error = "; ".join(reasons)
                logger.bind(key=str(key), error=error).warning("event with insane values kept as dead letter")
                self.dead_letter(key, raw, error)
        return taken, letters

    def _account(self, key: ConnectionKey, channel: Channel, event: Any, updates: dict) -> None:
        """A balance or position state: stored with the next batch, and handed (with this turn's order updates)
        to every strategy on the key (positions: those whose symbols take it) and the components on its channel.

        A balance the venue sent only part of (Binance USD-M and Gate futures push the wallet, not what is free)
        keeps the figures it lacks from the last state, and asks the key for a REST read of its balances, which
        brings the rest within a second."""
        if channel is Channel.BALANCE and not event.is_delta:
            held = self._balances.get(event.state_key)
            if None in (event.free, event.locked, event.total):
                if held is not None:
                    event = attrs.evolve(event, free=_first(event.free, held.free),
                                         locked=_first(event.locked, held.locked),
                                         total=_first(event.total, held.total))
                refresh = self.account_refresh.get(key)
                if refresh is not None:
                    refresh()
            if held is None or event.timestamp >= held.timestamp:
                self._balances[event.state_key] = event
        elif channel is Channel.POSITION:
            positions = self._positions.setdefault(key, {})
            held = positions.get(event.state_key)
            if held is None or event.timestamp >= held.timestamp:
                if event.size:
                    positions[event.state_key] = event
                else:
                    positions.pop(event.state_key, None)
        self.trade_sync.record_account(event)
        self.monitor.published[channel] += 1
        for subscription in self.router.subscribers.get(key, {}).values():
            if subscription.consumer is None:
                continue
            if channel is Channel.POSITION and not subscription.wants_symbol(event):
                continue
            batch = updates.get(subscription.consumer)
            if batch is None:
                updates[subscription.consumer] = [event]
            else:
                batch.append(event)
        for component in self._by_channel.get(channel, ()):
            component.put(channel, event, getattr(event, "state_key", None))
        if updates and not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._hand_due)

    def open_positions(self, key: ConnectionKey) -> tuple:
        """A key's positions held open now: what a venue whose frames list every open position is compared with."""
        return tuple(self._positions.get(key, {}).values())

    def hand_pending(self) -> None:
        """Hand over now what waits for the end of this turn of the loop (a flush wants everything delivered)."""
        self._hand_updates()

    def _hand_due(self) -> None:
        self._flush_due = False
        self._hand_updates()

    def _hand_updates(self) -> None:
        """The order updates published during one turn of the loop, to each strategy in one hand-over (with many
        strategies on a key, what is per strategy is paid once per turn, not once per frame)."""
        if not self._updates:
            return  # handed over already (a fill's delivery goes after the updates before it)
        updates, self._updates = self._updates, {}
        for consumer, batch in updates.items():
            consumer.deliver_updates(batch)

    def publish_data(self, channel: Channel | str, data: Any, *, key: ConnectionKey | None = None,
                     symbol: str | None = None) -> bool:
        """Anything but private events (market data, connection states, alerts, metrics) to the components
        on its channel; False if it was an exact repeat inside the dedup window."""
        channel = channel if isinstance(channel, Channel) else channel_named(channel)
        if self._dedup and channel is not Channel.ALERT and self._repeated(channel, (key, symbol, _fingerprint(data))):
            return False
        self.monitor.published[channel] += 1
        components = self._by_channel.get(channel)
        if components:
            entity = (key, symbol)
            for component in components:
                component.put(channel, data, entity)
        return True

    def publish_execution(self, key: ConnectionKey, execution: Any) -> None:
        """An order entry execution (framework.orders): to the components on the execution channel (the placing
        strategy has it already)."""
        self.monitor.published[Channel.EXECUTION] += 1
        for component in self._by_channel.get(Channel.EXECUTION, ()):
            component.put(Channel.EXECUTION, execution, ("execution", id(execution)))  # each one kept, none merged

    def watch_market(self, consumer: Any, channel: Channel, key: ConnectionKey, symbol: str,
                     timeframe: str | None = None) -> None:
        """Hand `consumer.deliver_market(channel, value, stream)` the values of one public stream."""
        stream = (channel, key, symbol, timeframe)
        watchers = self._market.get(stream, ())
        if consumer not in watchers:
            self._market[stream] = (*watchers, consumer)

    def unwatch_market(self, strategy_id: str) -> None:
        for stream, watchers in list(self._market.items()):
            left = tuple(w for w in watchers if w.strategy_id != strategy_id)
            if left:
                self._market[stream] = left
            else:
                del self._market[stream]

    def publish_market(self, kind: str, value: Any, key: ConnectionKey, symbol: str,
                       timeframe: str | None = None) -> None:
        """One market data value (framework.marketdata.values) to the strategies watching its stream and to
        the components on its channel. Not deduplicated: ccxt.pro hands each update over once."""
        channel = Channel(kind)
        self.monitor.published[channel] += 1
        stream = (channel, key, symbol, timeframe)
        for consumer in self._market.get(stream, ()):
            consumer.deliver_market(channel, value, stream)
        components = self._by_channel.get(channel)
        if components:
            entity = (key, symbol) if timeframe is None else (key, symbol, timeframe)
            for component in components:
                component.put(channel, value, entity)

    def _repeated(self, channel: Channel, fingerprint: Any) -> bool:
        """True for an exact repeat inside the dedup window (what cannot be hashed is never a repeat)."""
        marker = (channel, fingerprint)
        try:
            digest = hash(marker)  # hashed once: the window is keyed by it, the marker compared on a hit
        except TypeError:
            return False
        clock = time.monotonic()
        recent = self._recent
        seen = recent.get(digest)
        if seen is not None and clock - seen[1] <= self._dedup_window and seen[0] == marker:
            self.repeats += 1
            self.monitor.duplicates += 1
            return True
        recent[digest] = (marker, clock)
        expiry = self._expiry
        expiry.append((clock, digest))
        horizon = clock - self._dedup_window
        while expiry and (expiry[0][0] < horizon or len(expiry) > 100_000):
            stamp, old = expiry.popleft()
            entry = recent.get(old)
            if entry is not None and entry[1] == stamp:  # not seen again since
                del recent[old]
        return False

    def dead_letter(self, key: ConnectionKey | str, raw: Any, error: str, consumer: str | None = None) -> None:
        self.trade_sync.record_dead_letter(str(key), raw, error, consumer=consumer)

    def connection_status(self, key: ConnectionKey, status: str, **fields: Any) -> None:
        self.sync_log.connection(str(key), status, **fields)
        self.publish_data(Channel.CONNECTION, {"key": str(key), "status": status, **fields}, key=key)

    # what the store writer hands on ---------------------------------------------------------------------------
    def _stored(self, trades: list[Trade]) -> None:
        if self._updates:  # order updates published before these fills were committed go first
            self._hand_updates()
        # Runs of consecutive fills that go to the same strategies are handed over as one list per strategy,
        # in seq order (one call per strategy per run, not per fill).
        route = self.router.route
        mine: dict[Any, list[Trade]] = {}
        run: list[Trade] = []
        run_route: list | None = None
        for trade in trades:
            subscriptions = route(trade)
            if subscriptions is not run_route:
                if run and run_route:
                    _hand(mine, run_route, run)
                run, run_route = [], subscriptions
            run.append(trade)
        if run and run_route:
            _hand(mine, run_route, run)
        for consumer, batch in mine.items():
            consumer.deliver_stored(batch)
        self.stored_seq = trades[-1].seq if trades else self.stored_seq
        components = self._by_channel.get(Channel.TRADE)
        if components:
            for component in components:
                for trade in trades:
                    component.put(Channel.TRADE, trade)
        self._writer_stats.lanes[Lane.CRITICAL].handled += len(trades)

    def _spooled(self, trades: list[Trade]) -> None:
        if self._updates:
            self._hand_updates()
        route = self.router.route
        for trade in trades:
            trade = with_delivery(trade, owner_unknown=trade.client_order_id is None)
            for subscription in route(trade):
                subscription.consumer.deliver(trade)

    def _amended(self, trades: list[Trade]) -> None:
        if self._updates:
            self._hand_updates()
        for trade in trades:
            for subscription in self.router.route(trade):
                subscription.consumer.amended(trade)

    def _resync(self) -> None:
        """Fills may be committed without having been handed on: every consumer reads on from the store."""
        for subscriptions in self.router.subscribers.values():
            for subscription in subscriptions.values():
                if subscription.consumer is not None:
                    subscription.consumer.request_catch_up()
        for component in self._components.values():
            if Channel.TRADE in component.channels:
                component.queues.lagging = True
                component._wakeup.set()

    def _writer_depth(self) -> dict[Lane, int]:
        return {Lane.CRITICAL: self.trade_sync.pending}

    # components ----------------------------------------------------------------------------------------------
    def register_component(self, name: str, component: Any, channels: Iterable[str | Channel]) -> Component:
        """Hand the events of these channels to `component`: `on_<channel>_update(data)` when it has one, else
        `process_websocket_data(channel, data)`; coroutine functions and plain functions both work (plain ones
        run on the component's own thread). Fills come once stored, with their seq."""
        if not name or not isinstance(name, str):
            raise ConfigError("a component needs a non-empty name")
        if name in self._components or name == "store":
            raise ConfigError(f"a component named {name!r} is already registered: names must be unique")
        chosen = frozenset(channel if isinstance(channel, Channel) else channel_named(channel) for channel in channels)
        if not chosen:
            raise ConfigError(f"component {name!r} subscribes to no channel: give channels=[...]")
        registered = Component(self, name, component, chosen)
        self._components[name] = registered
        self._index()
        if self._running:
            registered.start()
            self._spawn(self._replay_requested([name]), f"replay-{name}")
        return registered

    async def unregister_component(self, name: str, timeout: float = 5.0) -> None:
        component = self._components.pop(name, None)
        if component is None:
            return
        self._index()
        self.monitor.remove_consumer(name)
        await component.stop(timeout)

    def _index(self) -> None:
        by_channel: dict[Channel, list[Component]] = {}
        for component in self._components.values():
            for channel in component.channels:
                by_channel.setdefault(channel, []).append(component)
        self._by_channel = {channel: tuple(found) for channel, found in by_channel.items()}

    def component(self, name: str) -> Component:
        try:
            return self._components[name]
        except KeyError:
            raise LifecycleError(f"no component named {name!r} is registered") from None

    async def drained(self) -> None:
        self._hand_updates()
        for component in list(self._components.values()):
            await component.drained()

    async def replay_dead_letters(self, name: str, *, requested_only: bool = False) -> int:
        """Hand a component the CRITICAL events it missed (its dead letters), oldest first, and mark them
        replayed. Returns how many."""
        component = self.component(name)
        if requested_only:
            letters = await self.store.requested_letters([name], 10_000)
        else:
            letters = await self.store.fetch_dead_letters(pending_only=True, consumer=name)
        replayed = 0
        for letter in letters:
            try:
                kind, event = decode(letter["raw"])
            except Exception as exc:  # noqa: BLE001 - a letter that cannot be read stays for a person
                await self.store.mark_dead_letter(letter["id"], now_ms(), f"unreadable: {exc!r}"[:300])
                continue
            channel = Channel.TRADE if kind == "trade" else Channel.ORDER_UPDATE
            if channel is Channel.TRADE and component.last_seq is not None and event.seq is not None:
                event = with_delivery(event, redelivered=True)
            if channel is Channel.TRADE and event.seq is not None:
                component.replays.add(event.seq)
            component.queues.critical.append((channel, event, time.perf_counter_ns()))
            component._idle.clear()
            component._wakeup.set()
            await self.store.mark_dead_letter(letter["id"], now_ms(), f"replayed to {name}")
            replayed += 1
        if replayed:
            self.sync_log.event("dead letters replayed", consumer=name, count=replayed)
        return replayed

    async def _replay_requested(self, names: list[str]) -> None:
        for name in names:
            if name in self._components:
                try:
                    await self.replay_dead_letters(name, requested_only=True)
                except StoreError as exc:
                    logger.bind(consumer=name, error=str(exc)).debug("requested replays not read")

    async def _replay_poller(self) -> None:
        while True:
            await asyncio.sleep(REPLAY_POLL)
            if self._components and self.trade_sync.store_ready.is_set():
                await self._replay_requested(list(self._components))

    async def _watchdog(self) -> None:
        """A handler call past `timeout_seconds` counts as failed; its component goes on without it."""
        limit = self.config.queue.timeout_seconds
        while True:
            await asyncio.sleep(min(0.1, limit / 4))
            now = time.monotonic()
            for component in list(self._components.values()):
                if component.hung_for(now) > limit:
                    component.interrupt()

    def _alert(self, alert: Any) -> None:
        self.alerts.append(alert)
        del self.alerts[:-100]
        self.sync_log.alert(alert)
        self.publish_data(Channel.ALERT, alert)

    def _metrics(self, report: dict[str, Any]) -> None:
        """The monitor's periodic report, as a `metrics` event for the components that asked for it."""
        self.publish_data(Channel.METRICS, report)

    def status(self) -> dict[str, Any]:
        return {
            "components": {name: c.status() for name, c in self._components.items()},
            "invalid": self.invalid,
            "repeats_dropped": self.repeats,
            "alerts": [_alert_dict(a) for a in self.monitor.active_alerts.values()],
            "healthy": self.monitor.is_healthy(),
        }


def _hand(mine: dict[Any, list[Trade]], subscriptions: list, run: list[Trade]) -> None:
    for subscription in subscriptions:
        batch = mine.get(subscription.consumer)
        if batch is None:
            mine[subscription.consumer] = run if len(subscriptions) == 1 else list(run)
        else:
            batch.extend(run)


def _alert_dict(alert: Any) -> dict[str, Any]:
    return {"name": alert.name, "scope": alert.scope, "severity": alert.severity, "value": alert.value,
            "threshold": alert.threshold, "message": alert.message, "since_ms": alert.at_ms}


def _first(value: Any, default: Any) -> Any:
    return default if value is None else value


def _state_of(event: Any) -> Any:
    """What makes an order update (or a later state event) an exact repeat: cheaper to hash than every field."""
    if isinstance(event, OrderUpdate):
        return (event.exchange, event.market, event.account, event.order_id, event.status, event.filled,
                event.amount, event.price, event.timestamp)
    return event


def _fingerprint(data: Any) -> Any:
    if isinstance(data, dict):
        try:
            return tuple(sorted(data.items()))
        except TypeError:
            return None
    return data
