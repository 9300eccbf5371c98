"""BaseStrategy: the lifecycle state table the framework owns, and the `on_*` hooks users write."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import queue
import threading
from collections import OrderedDict, deque
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from loguru import logger

from framework.errors import ConfigError, LifecycleError, StoreError
from framework.account import AccountEvent, BalanceUpdate, PositionUpdate
from framework.events import ConnectionKey, Event, OrderUpdate, Trade
from framework.marketdata.feed import DEFAULT_DEPTH, Watch
from framework.marketdata.values import Candle, OrderBook, PublicTrade, Ticker
from framework.pipeline.channels import LANE_OF, Channel, Lane
from framework.progress import Progress

if TYPE_CHECKING:
    from framework.pool import ConnectionPool


MAX_PROVISIONAL = 200_000  # fills handed on from the spool awaiting their stored copy
HOOK_BATCH = 256  # events handed to a strategy's worker thread at once (sync hooks)
MARKET_BATCH = 32  # market data values handed to the worker thread at once (fills go between batches)
_TIMEFRAME = re.compile(r"^[1-9][0-9]*[smhdwM]$")
_MARKET_HOOKS = {Channel.TICKER: "on_ticker", Channel.BOOK: "on_order_book", Channel.PUBLIC_TRADE: "on_public_trade",
                 Channel.OHLC: "on_candle"}


class StrategyState(StrEnum):
    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


_TRANSITIONS = {
    StrategyState.CREATED: {StrategyState.STARTING},
    StrategyState.STARTING: {StrategyState.RUNNING, StrategyState.FAILED},
    StrategyState.RUNNING: {StrategyState.STOPPING, StrategyState.FAILED},
    StrategyState.STOPPING: {StrategyState.STOPPED, StrategyState.FAILED},
    StrategyState.STOPPED: {StrategyState.STARTING},
    StrategyState.FAILED: set(),
}


class BaseStrategy:
    """Subclass it and write `on_start`, `on_trade`, `on_order_update`, `on_stop` (sync or async).

    `start()` subscribes the strategy to the shared pool for every connector; `stop()` unsubscribes.
    Events reach the hooks one at a time, in order, from the strategy's own task; sync hooks run on
    the strategy's own worker thread, so a slow or blocking strategy never holds up the socket, the
    store or the other strategies. Fills come once stored; a strategy that falls `max_inbox` events
    behind (or was not running) reads on from the store instead of growing memory. An exception in a
    hook marks this strategy FAILED and releases its subscriptions.
    """

    max_inbox = 10_000  # events held in memory; past this, fills are read back from the store

    # Market data (see README "Market data"): {"binance_spot": ["BTC/USDT"], ...}. What is watched follows the
    # hooks written: on_ticker → tickers, on_order_book → books (`book_depth` levels), on_public_trade →
    # public trades; `candles` ("1m", ["1m", "5m"], {"1m": [symbols]} or {"binance_spot": {"1m": [symbols]}})
    # → on_candle. Books and tickers a slow strategy has not taken yet are replaced by newer ones; public
    # trades and candles wait, up to `max_market_backlog` (the oldest are dropped past it, counted).
    market_data: Mapping[Any, Iterable[str]] | None = None
    candles: Any = None
    book_depth = DEFAULT_DEPTH
    max_market_backlog = 10_000

    def __init__(
        self,
        strategy_id: str,
        exchange_connectors: Sequence[Any] | Mapping[str | ConnectionKey, Any] | None = None,
        symbols: Iterable[str] | None = None,
        *,
        pool: ConnectionPool | None = None,
        client_order_id_prefix: str | None = None,
        market_data: Mapping[Any, Iterable[str]] | None = None,
        candles: Any = None,
        book_depth: int | None = None,
        **config: Any,
    ) -> None:
        if not strategy_id or not isinstance(strategy_id, str):
            raise ConfigError("strategy_id must be a non-empty string")
        self.strategy_id = strategy_id
        self._state = StrategyState.CREATED
        self.exchange_connectors = exchange_connectors or ()
        self.symbols = list(symbols) if symbols else None
        self.config = config
        self.client_order_id_prefix = client_order_id_prefix or strategy_id
        if market_data is not None:
            self.market_data = market_data
        if candles is not None:
            self.candles = candles
        if book_depth is not None:
            self.book_depth = book_depth
        if not isinstance(self.book_depth, int) or self.book_depth < 1:
            raise ConfigError(f"book_depth must be a positive int (levels a side), got {self.book_depth!r}")
        # Market data not handed to the hooks yet: books and tickers the newest per stream, the rest in order.
        self._market_latest: dict[tuple, Any] = {}
        self._market_flow: deque[Any] = deque()
        self.market_received = 0
        self.market_handled = 0
        self.market_coalesced = 0  # books/tickers replaced by a newer one before the hook took them
        self.market_dropped = 0  # public trades/candles dropped past max_market_backlog
        if pool is not None:  # known before any strategy starts: its fills are never routed to another
            pool.declare_strategy(strategy_id, self.client_order_id_prefix)
        self.progress = Progress()
        self.error: BaseException | None = None
        self.last_seq: int | None = None  # the last stored fill processed: the durable delivery position
        self.busy_in: str | None = None  # the hook running right now, if any
        self.stopped_busy_in: str | None = None  # the hook still running when stop() gave up waiting
        self.coalesced_order_updates = 0  # order states replaced by a newer state of the same order while behind
        self.caught_up = 0  # fills read back from the store (start, lag, resync)
        self._pool = pool
        # ("trade" | "order" | "amended", event), or ("trades", [stored fills in seq order]) handed over at once
        self._inbox: deque[tuple[str, Any]] = deque()
        self._queued = 0  # events in the inbox
        # Order states that did not fit the inbox: the newest per order, in order, moved in as it empties.
        self._order_overflow: OrderedDict[tuple, OrderUpdate] = OrderedDict()
        # Past that too (max_inbox orders): the venue time of the earliest state not kept; the latest states
        # since then are read back from the store once the inbox drains.
        self._orders_behind: int | None = None
        self._orders_cursor: Any = None  # a read-back under way (framework.store.OrderCursor)
        self.order_states_read_back = 0
        # Account states: the views are current at once; the hooks get them in order, past max_inbox the newest
        # per asset / position.
        self.balances = AccountView("balance")
        self.positions = AccountView("position")
        self._account_overflow: OrderedDict[tuple, AccountEvent] = OrderedDict()
        self.coalesced_account_updates = 0
        self.stale_account_updates = 0  # states older than the one held: neither the view nor the hook took them
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._lagging = False  # live fills are not queued: the next catch-up reads them from the store
        self._store_trouble = False
        self.redelivery_bound: int | None = None
        # Fills handed on from the spool while the store was down (no seq yet): when their stored
        # copy comes, it only moves the position.
        self._provisional: set[tuple] = set()
        self._provisional_done: set[tuple] = set()  # of those, the ones its hook has seen
        self._task: asyncio.Task | None = None
        self._worker: _HookThread | None = None
        self._log = logger.bind(strategy=strategy_id)

    # hooks users override ----------------------------------------------------------------------
    def on_start(self) -> Any:
        """Called once the strategy is subscribed, before any event."""

    def on_trade(self, trade: Trade) -> Any:
        """Called with every new fill routed to this strategy, in store order, once (a fill that may
        have reached it before a kill comes again with `trade.redelivered` True)."""

    def on_trade_amended(self, trade: Trade) -> Any:
        """Called when a late field (the fee) of a fill already delivered arrived and was stored."""

    def on_order_update(self, update: OrderUpdate) -> Any:
        """Called with every order update routed to this strategy."""

    def on_balance(self, balance: BalanceUpdate) -> Any:
        """An asset's balance changed (free, locked, total; a REST snapshot at every (re)connect). `self.balances`
        already holds it."""

    def on_position(self, position: PositionUpdate) -> Any:
        """A position changed (size in base units, entry, unrealized PnL, leverage, liquidation price…).
        `self.positions` already holds it."""

    def on_execution(self, execution: Any) -> Any:
        """Called with every change of an order this strategy placed (framework.orders.Execution): acked, open,
        fill, amended, and its final state (filled, canceled, rejected, expired) exactly once. `execution.order`
        is the order's state then; `execution.fill` the fill for kind "fill" (the same fill also reaches
        on_trade)."""

    def on_ticker(self, ticker: Ticker) -> Any:
        """Best bid/ask, last price and the venue's 24 h figures (framework.marketdata.values.Ticker)."""

    def on_order_book(self, book: OrderBook) -> Any:
        """The top `book_depth` levels, best first, after ccxt.pro checked its sequence (and checksum)."""

    def on_public_trade(self, trade: PublicTrade) -> Any:
        """A trade on the venue's public tape (anyone's; your own fills come to on_trade)."""

    def on_candle(self, candle: Candle) -> Any:
        """A bar of a timeframe in `candles`: again with each update while it forms, then once `closed`."""

    def on_stop(self) -> Any:
        """Called when the strategy stops, after its last event."""

    # the framework's side ------------------------------------------------------------------------
    @property
    def state(self) -> StrategyState:
        return self._state

    @property
    def exchange_connectors(self) -> tuple[Any, ...]:
        """The connectors `start()` subscribes to, one per connection key."""
        return self._connectors

    @exchange_connectors.setter
    def exchange_connectors(self, connectors: Sequence[Any] | Mapping[str | ConnectionKey, Any]) -> None:
        """A sequence of connectors, or a mapping `{"binance_spot": connector, ...}` (keys as text or
        `ConnectionKey`) whose keys must be the connectors' own. Set before `start()` or after `stop()`."""
        if self._state in (StrategyState.STARTING, StrategyState.RUNNING, StrategyState.STOPPING):
            raise LifecycleError(
                f"strategy {self.strategy_id!r} is {self._state}: stop() it before changing its exchange_connectors")
        self._connectors = _normalize_connectors(connectors)

    @property
    def pool(self) -> ConnectionPool:
        if self._pool is None:
            from framework.pool import get_connection_pool

            self._pool = get_connection_pool()
        return self._pool

    def _transition(self, target: StrategyState) -> None:
        if target not in _TRANSITIONS[self._state]:
            raise LifecycleError(f"strategy {self.strategy_id!r} cannot go from {self._state} to {target}")
        self._state = target

    async def start(self) -> None:
        """Subscribe and run. Idempotent while starting or running; a FAILED strategy cannot restart."""
        if self._state in (StrategyState.STARTING, StrategyState.RUNNING):
            return
        self._transition(StrategyState.STARTING)
        if self._worker is None or not self._worker.is_alive():
            self._worker = _HookThread(self.strategy_id)
        subscribed = False
        try:
            plan = self.market_plan()  # a bad declaration fails before anything is opened
            # The pool rolls back a subscription that fails part-way; on_start failing is ours to undo.
            if self.exchange_connectors or not plan:
                await self.pool.subscribe_strategy(
                    self.strategy_id, self.exchange_connectors, self.symbols, consumer=self
                )
            subscribed = True
            trading = getattr(self.pool, "trading", None)
            if trading is not None:  # order entry: its gateways ready (and an earlier run's unfinished orders)
                await trading.attach(self)
            if plan:
                await self.pool.watch_market(self.strategy_id, self, plan, depth=self.book_depth,
                                             connectors=self.exchange_connectors)
            await self._call(self.on_start)
        except BaseException as exc:
            self.error = exc
            self._state = StrategyState.FAILED
            if subscribed:
                await self.pool.unsubscribe_strategy(self.strategy_id)
            self.pool.sync_log.strategy(self.strategy_id, "failed", error=repr(exc))
            raise
        self._task = asyncio.create_task(self._run(), name=f"strategy-{self.strategy_id}")
        self._transition(StrategyState.RUNNING)
        self.pool.sync_log.strategy(self.strategy_id, "running")

    async def stop(self, timeout: float = 10.0) -> None:
        """Unsubscribe, process what was already received (up to `timeout`), then `on_stop`. Idempotent.

        Fills not processed by then stay in the store and come at the next start. If a hook is still
        running at the timeout, the strategy is left behind (its thread cannot be interrupted) and the
        fill it was working on counts as in flight: it comes again, marked redelivered."""
        if self._state in (StrategyState.STOPPED, StrategyState.STOPPING):
            return
        if self._state is StrategyState.FAILED:
            await self._stop_task()
            return
        self._transition(StrategyState.STOPPING)
        await self.pool.unsubscribe_strategy(self.strategy_id)
        try:
            async with asyncio.timeout(timeout):
                await self.drained()
        except TimeoutError:
            self._log.bind(pending=self._queued, busy_in=self.busy_in).warning(
                "strategy stopped before its inbox was empty: the rest comes at its next start")
        busy = self.stopped_busy_in = self.busy_in  # a sync hook cannot be interrupted: its fill is in flight
        await self._stop_task()
        if self._provisional_done and self.pool.remember_seen(self.strategy_id, self._provisional_done):
            self._provisional_done.clear()  # kept durably: the next start skips their stored copies
        await self.pool.write_position(self, running=busy is not None)
        if self._state is StrategyState.FAILED:
            return
        if busy is not None:
            self._log.bind(hook=busy).error("strategy still busy in a hook at stop: on_stop skipped")
            self.pool.sync_log.strategy(self.strategy_id, "stopped while busy", hook=busy)
        else:
            try:
                await self._call(self.on_stop)
            except Exception as exc:  # noqa: BLE001 - a user hook failing marks the strategy, nothing more
                self._fail(exc, "on_stop")
                return
        self._transition(StrategyState.STOPPED)
        self.pool.sync_log.strategy(self.strategy_id, "stopped")

    async def __aenter__(self) -> BaseStrategy:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # market data -----------------------------------------------------------------------------------
    def market_plan(self) -> dict[ConnectionKey, list[Watch]]:
        """What this strategy watches, per (venue, market): from `market_data`, `candles` and the hooks it wrote."""
        kinds = [kind for kind, hook in (("ticker", "on_ticker"), ("book", "on_order_book"),
                                         ("public_trade", "on_public_trade"))
                 if getattr(type(self), hook) is not getattr(BaseStrategy, hook)]
        symbols = _market_symbols(self.market_data, "market_data")
        candles = _candle_plan(self.candles, symbols)
        if symbols and not kinds and not candles:
            raise ConfigError(
                f"strategy {self.strategy_id!r} declares market_data but writes none of on_ticker, on_order_book, "
                "on_public_trade (nor candles for on_candle): write the hooks it should get")
        plan: dict[ConnectionKey, list[Watch]] = {}
        for key, listed in symbols.items():
            plan.setdefault(key, []).extend(Watch(kind, symbol) for symbol in listed for kind in kinds)
        for key, watches in candles.items():
            plan.setdefault(key, []).extend(watches)
        return {key: watches for key, watches in plan.items() if watches}

    def deliver_market(self, channel: Channel, value: Any, stream: tuple) -> None:
        """A market data value of a stream it watches. Never blocks: a book or ticker replaces the one of its
        stream not handed over yet; trades and candles queue up to max_market_backlog (oldest dropped)."""
        if self._state in (StrategyState.FAILED, StrategyState.STOPPED):
            return
        self.market_received += 1
        if LANE_OF[channel] is Lane.HIGH:
            latest = self._market_latest
            if stream in latest:
                self.market_coalesced += 1
            latest[stream] = value
        else:
            flow = self._market_flow
            if len(flow) >= self.max_market_backlog:
                flow.popleft()
                self.market_dropped += 1
            flow.append(value)
        if self._idle.is_set() or not self._wakeup.is_set():
            self._idle.clear()
            self._wakeup.set()

    async def _handle_market(self) -> bool:
        """Hand the hooks what market data is waiting (books and tickers first), a batch at a time."""
        values: list[Any] = []
        latest, flow = self._market_latest, self._market_flow
        while latest and len(values) < MARKET_BATCH:
            values.append(latest.pop(next(iter(latest))))
        while flow and len(values) < 2 * MARKET_BATCH:
            values.append(flow.popleft())
        calls = [(getattr(self, _MARKET_HOOKS[Channel(value.channel)]), value) for value in values]
        while calls:
            hook, value = calls[0]
            if inspect.iscoroutinefunction(hook):
                calls.pop(0)
                if not await self._handle(hook, value, market=True):
                    return False
                self.market_handled += 1
                continue
            run = 1
            while run < len(calls) and not inspect.iscoroutinefunction(calls[run][0]):
                run += 1
            batch, calls = calls[:run], calls[run:]
            self.busy_in = batch[0][0].__name__
            try:
                done, error, pending = await self._worker.run(_run_hooks, batch)
            finally:
                self.busy_in = None
            self.market_handled += done
            if pending is not None:
                if not await self._handle(lambda _value: pending, batch[done][1], market=True):
                    return False
                self.market_handled += 1
                calls = batch[done + 1:] + calls
            elif error is not None:
                return await self._handle(_raiser(error, batch[done][0]), batch[done][1], market=True)
        return True

    # what the pool calls ---------------------------------------------------------------------------
    def begin_delivery(self, position: int | None, redelivery_bound: int | None) -> None:
        """Deliver from `position` on (None: not known yet); the first thing the task does is catch up."""
        self.last_seq = position
        self.redelivery_bound = redelivery_bound
        self._lagging = True
        self._idle.clear()
        self._wakeup.set()

    def expect_seen(self, keys: list[tuple]) -> None:
        """Fills this strategy saw from the spool in its last run, before their stored copies existed."""
        self._provisional.update(keys)
        self._provisional_done.update(keys)

    def request_catch_up(self) -> None:
        if self._state not in (StrategyState.FAILED, StrategyState.STOPPED):
            self._lagging = True
            self._idle.clear()
            self._wakeup.set()

    def deliver(self, event: Event) -> None:
        """A stored fill or an order update for this strategy. Never blocks: when the inbox is full,
        fills are left in the store (read back later) and order updates keep the newest state per order
        beside it (past max_inbox orders, the store's latest states are read back)."""
        if self._state is StrategyState.FAILED:
            return
        is_trade = isinstance(event, Trade)
        if is_trade and event.seq is None:  # from the spool: durable, not stored yet (no catch-up can read it)
            if len(self._provisional) >= MAX_PROVISIONAL or self._queued >= self.max_inbox:
                return  # it comes once stored
            self._provisional.add(event.dedup_key)
            self._put("trade", event)
            return
        if is_trade and self._lagging:
            return
        if not is_trade and (self._order_overflow or self._orders_behind is not None
                             or self._queued >= self.max_inbox):
            self._order_behind(event)
            return
        if self._queued >= self.max_inbox:
            self._behind()
            return
        self._put("trade" if is_trade else "order", event)

    def _order_behind(self, update: OrderUpdate) -> None:
        """An order state that does not fit the inbox: the newest per order waits beside it (bounded by
        max_inbox orders); past that the store, which keeps every order's latest state, has it."""
        entity = (update.key, update.symbol, update.order_id)
        if self._orders_behind is not None:
            self._orders_behind = min(self._orders_behind, update.timestamp)
        elif self._order_overflow.pop(entity, None) is not None:
            self.coalesced_order_updates += 1  # a newer state of the same order replaces it: nothing is lost
            self._order_overflow[entity] = update
        elif len(self._order_overflow) < self.max_inbox:
            self._order_overflow[entity] = update
        else:
            self._orders_behind = update.timestamp
            self._log.bind(pending=self._queued).warning("strategy far behind: reading order states from the store")
        self._idle.clear()
        self._wakeup.set()

    def deliver_updates(self, updates: list[Any]) -> None:
        """Order updates (and balance / position states) for this strategy, in order, handed over at once (those
        published in one turn of the loop)."""
        if self._state is StrategyState.FAILED:
            return
        if any(u.__class__ is not OrderUpdate for u in updates):
            self.deliver_account([u for u in updates if u.__class__ is not OrderUpdate])
            updates = [u for u in updates if u.__class__ is OrderUpdate]
            if not updates:
                return
        if self._order_overflow or self._orders_behind is not None or self._queued + len(updates) > self.max_inbox:
            for update in updates:  # the inbox is full: the newest state per order waits beside it
                self.deliver(update)
            return
        self._inbox.append(("orders", updates))
        self._queued += len(updates)
        self.progress.submit(len(updates))
        self._idle.clear()
        self._wakeup.set()

    def deliver_execution(self, execution: Any) -> None:
        """An order entry execution of one of this strategy's orders: queued whatever the inbox holds (there is
        one per order state change, bounded by the orders it has in flight; none is ever dropped)."""
        if self._state is not StrategyState.FAILED:
            self._put("execution", execution)

    # order entry (framework.orders) ------------------------------------------------------------------------
    async def _trading(self) -> Any:
        from framework.orders.trading import setup_websocket_trading

        pool = self.pool
        trading = getattr(pool, "trading", None)
        return trading if trading is not None else await setup_websocket_trading(pool)

    async def place_order(self, symbol: str, side: str, amount: Any, price: Any = None, order_type: str = "limit",
                          *, exchange: Any = None, reduce_only: bool = False, take_profit: Any = None,
                          stop_loss: Any = None) -> Any:
        """Place an order (amount in base units; price for limit, ioc and post_only) through the process's order
        entry: WebSocket first, REST as the fallback, never twice. Returns the Order once the venue took it (state
        `acked`; `open` once the stream shows it), or with state `rejected` and a `reason` (never raises for the
        venue's answer). `take_profit` / `stop_loss` prices: reduce-only orders placed once the entry fills.
        `exchange="binance_future"` picks the key when the strategy has several."""
        trading = await self._trading()
        return await trading.place(self, symbol, side, amount, price=price, order_type=order_type,
                                   exchange=exchange, reduce_only=reduce_only, take_profit=take_profit,
                                   stop_loss=stop_loss)

    async def place_buy_order(self, symbol: str, amount: Any, price: Any = None, order_type: str | None = None,
                              **options: Any) -> Any:
        """A buy: a market order without a price, else a limit order (or `order_type`)."""
        kind = order_type or ("market" if price is None else "limit")
        return await self.place_order(symbol, "buy", amount, price, kind, **options)

    async def place_sell_order(self, symbol: str, amount: Any, price: Any = None, order_type: str | None = None,
                               **options: Any) -> Any:
        """A sell: a market order without a price, else a limit order (or `order_type`)."""
        kind = order_type or ("market" if price is None else "limit")
        return await self.place_order(symbol, "sell", amount, price, kind, **options)

    async def cancel_order(self, order: Any) -> Any:
        """Cancel an order; returns it with its state after (a cancel that came too late leaves it filled)."""
        return await (await self._trading()).cancel(order)

    async def amend_order(self, order: Any, *, price: Any = None, amount: Any = None) -> Any:
        """Change an open order's price and/or total amount; OrderError when the venue refuses."""
        return await (await self._trading()).amend(order, price=price, amount=amount)

    def active_orders(self) -> list[Any]:
        """This strategy's orders that are not final (those an earlier run left open included, once reconciled)."""
        trading = getattr(self.pool, "trading", None)
        if trading is None:
            return []
        return [o for g in trading.gateways.values() for o in list(g.orders.values())
                if o.strategy_id == self.strategy_id and not o.final]

    async def cancel_all_orders(self, timeout: float = 10.0) -> int:
        """Cancel every order of this strategy that is not final yet (in parallel); returns how many were asked."""
        trading = getattr(self.pool, "trading", None)
        if trading is None:
            return 0
        mine = self.active_orders()
        if mine:
            await asyncio.wait([asyncio.ensure_future(trading.cancel(o)) for o in mine], timeout=timeout)
        return len(mine)

    async def get_order_status(self, order: Any) -> Any:
        """Ask the venue for the order now; returns its state (an OrderSnapshot)."""
        return (await (await self._trading()).query(order)).snapshot()

    def publish(self, type: str, data: Mapping[str, Any]) -> bool:
        """Send an event of your own (`trading_decision`, `ai_decision`, …) to the dashboard through the process's
        publisher (framework.publisher); from any hook. A no-op returning False when publishing is off."""
        from framework.publisher import publish_from

        return publish_from(self, type, data)

    def deliver_account(self, events: list[AccountEvent]) -> None:
        """Balance and position states: the views (`balances`, `positions`) take them at once, the hooks in order;
        one older than the state held (a delta the venue sent before a reconnect's snapshot) goes to neither. Past
        max_inbox, the newest state per asset / position waits beside the inbox (the views are current)."""
        if self._state is StrategyState.FAILED:
            return
        for event in events:
            if not (self.balances if event.__class__ is BalanceUpdate else self.positions)._take(event):
                self.stale_account_updates += 1
                continue  # older than the state it holds: the hook never sees a state go back in time
            pending = self._account_overflow
            if pending or self._queued >= self.max_inbox:
                if event.state_key in pending:
                    self.coalesced_account_updates += 1
                    del pending[event.state_key]
                pending[event.state_key] = event
                self._idle.clear()
                self._wakeup.set()
            else:
                self._put(event.channel, event)

    def deliver_stored(self, trades: list[Trade]) -> None:
        """Stored fills for this strategy, in seq order, handed over at once (a run of a committed batch).
        What does not fit the inbox is left in the store and read back later."""
        if self._state is StrategyState.FAILED or self._lagging:
            return
        room = self.max_inbox - self._queued
        if room < len(trades):
            trades = trades[:max(room, 0)]
            self._behind()
        for start in range(0, len(trades), HOOK_BATCH):
            chunk = trades[start:start + HOOK_BATCH]
            self._inbox.append(("trades", chunk))
            self._queued += len(chunk)
            self.progress.submit(len(chunk))
        if trades:
            self._idle.clear()
            self._wakeup.set()

    def _behind(self) -> None:
        self._lagging = True
        self._log.bind(pending=self._queued).warning("strategy behind: reading its fills from the store")

    def amended(self, trade: Trade) -> None:
        if self._state is not StrategyState.FAILED:
            self._put("amended", trade)

    def _put(self, kind: str, event: Event) -> None:
        self._inbox.append((kind, event))
        self._queued += 1
        self.progress.submit()
        self._idle.clear()
        self._wakeup.set()

    async def drained(self) -> None:
        """Wait until everything delivered so far is processed and no catch-up is due."""
        while not (self._idle.is_set() or self._task is None or self._task.done()):
            await self._idle.wait()

    # the strategy's task ------------------------------------------------------------------------------
    async def _run(self) -> None:
        hooks = {"trade": self.on_trade, "order": self.on_order_update, "amended": self.on_trade_amended,
                 "balance": self.on_balance, "position": self.on_position, "execution": self.on_execution}
        threaded = {kind: not inspect.iscoroutinefunction(hook) for kind, hook in hooks.items()}
        while self._state is not StrategyState.FAILED:
            if not self._inbox and self._order_overflow:
                while self._order_overflow and self._queued < self.max_inbox:
                    self._put("order", self._order_overflow.popitem(last=False)[1])
            if not self._inbox and self._account_overflow:
                while self._account_overflow and self._queued < self.max_inbox:
                    event = self._account_overflow.popitem(last=False)[1]
                    self._put(event.channel, event)
            if not self._inbox and not self._lagging and (self._orders_behind is not None
                                                          or self._orders_cursor is not None):
                if not await self._read_back_orders():
                    await asyncio.sleep(1.0)  # the store is unreachable: try again
                continue
            if not self._inbox:
                if self._lagging:
                    if not await self._catch_up():
                        await asyncio.sleep(1.0)  # the store is unreachable: try again
                    continue
                if self._market_latest or self._market_flow:  # after fills and order states: they go first
                    if not await self._handle_market():
                        return
                    continue
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            kind, event = self._inbox.popleft()
            if kind == "trades":
                self._queued -= len(event)
                if not await self._handle_run(event, threaded["trade"]):
                    return
                continue
            if kind == "orders":
                updates = list(event)
                while self._inbox and self._inbox[0][0] == "orders" and len(updates) < HOOK_BATCH:
                    updates.extend(self._inbox.popleft()[1])  # the frames since: one hand-off for them all
                self._queued -= len(updates)
                if not await self._handle_updates(updates, threaded["order"]):
                    return
                continue
            self._queued -= 1
            if self._seen(kind, event):
                self.progress.done()  # already read from the store by a catch-up, or handed on from the spool
                continue
            if not threaded[kind]:
                if not await self._handle(hooks[kind], event):
                    return
                self._processed(kind, event)
                continue
            # Sync hooks: what is queued goes to the worker thread in one hand-off, in order.
            batch = [(kind, event)]
            while self._inbox and len(batch) < HOOK_BATCH:
                next_kind, next_event = self._inbox[0]
                if next_kind in ("trades", "orders") or not threaded[next_kind] or self._needs_check(next_kind, next_event):
                    break
                batch.append(self._inbox.popleft())
                self._queued -= 1
            if not await self._handle_batch(hooks, batch):
                return

    def _seen(self, kind: str, event: Event) -> bool:
        return kind == "trade" and event.seq is not None and (
            (self.last_seq is not None and event.seq <= self.last_seq) or self._seen_provisionally(event))

    def _needs_check(self, kind: str, event: Event) -> bool:
        """Whether `_seen` could skip this event (it is then taken alone, after what is before it ran)."""
        return kind == "trade" and event.seq is not None and (
            self.last_seq is None or event.seq <= self.last_seq or event.dedup_key in self._provisional)

    def _processed(self, kind: str, event: Event) -> None:
        self.progress.done()
        if kind == "trade":
            if event.seq is not None:
                self.last_seq = event.seq
            elif event.dedup_key in self._provisional:
                self._provisional_done.add(event.dedup_key)

    @property
    def unconfirmed(self) -> int:
        """Fills its hook has seen from the spool whose stored copy (and so their seq) it has not seen yet:
        while any are left, its position cannot cover them, so an end now counts as unclean."""
        return len(self._provisional_done)

    async def _handle_batch(self, hooks: dict[str, Any], batch: list[tuple[str, Event]]) -> bool:
        calls = [(hooks[kind], event) for kind, event in batch]
        self.busy_in = calls[0][0].__name__
        try:
            done, error, pending = await self._worker.run(_run_hooks, calls)
        finally:
            self.busy_in = None
        for kind, event in batch[:done]:
            self._processed(kind, event)
        if pending is not None:  # a sync hook handed back an awaitable: finish it here, the rest after it
            self._inbox.extendleft(reversed(batch[done + 1:]))
            self._queued += len(batch) - done - 1
            if not await self._handle(lambda _event: pending, batch[done][1]):
                return False
            self._processed(*batch[done])
            return True
        if error is not None:
            kind, event = batch[done]
            return await self._handle(_raiser(error, calls[done][0]), event)
        return True

    async def _handle_run(self, trades: list[Trade], threaded: bool) -> bool:
        """A run of stored fills. When none of them can have been seen (all after `last_seq`, none handed on
        from the spool), a sync hook gets the whole run on the worker thread in one hand-off; otherwise they
        go back in the inbox one by one, for the careful path."""
        last = self.last_seq
        if not threaded or self._provisional or last is None or trades[0].seq <= last:
            self._inbox.extendleft(reversed([("trade", trade) for trade in trades]))
            self._queued += len(trades)
            return True
        return await self._run_on_worker(self.on_trade, "trade", trades)

    async def _handle_updates(self, updates: list[OrderUpdate], threaded: bool) -> bool:
        """Order updates handed over together: a sync hook gets them all on the worker thread in one hand-off."""
        if not threaded:
            self._inbox.extendleft(reversed([("order", update) for update in updates]))
            self._queued += len(updates)
            return True
        return await self._run_on_worker(self.on_order_update, "order", updates)

    async def _run_on_worker(self, hook: Any, kind: str, events: list[Event]) -> bool:
        """One hook over a run of events on the worker thread, in one hand-off. What comes after an event whose
        hook raised or handed back an awaitable goes back in the inbox, after that event is settled here."""
        self.busy_in = hook.__name__
        try:
            done, error, pending = await self._worker.run(_run_hook_over, hook, events)
        finally:
            self.busy_in = None
        if done:
            self.progress.done(done)
            if kind == "trade":
                self.last_seq = events[done - 1].seq
        rest = events[done + 1:]
        if rest:
            self._inbox.appendleft((f"{kind}s", rest))
            self._queued += len(rest)
        if pending is not None:  # the hook handed back an awaitable: finish it here
            if not await self._handle(lambda _event: pending, events[done]):
                return False
            self._processed(kind, events[done])
        elif error is not None:
            if not await self._handle(_raiser(error, hook), events[done]):
                return False
        return True

    def _seen_provisionally(self, trade: Trade) -> bool:
        if trade.dedup_key not in self._provisional:
            return False
        self._provisional.discard(trade.dedup_key)
        self._provisional_done.discard(trade.dedup_key)
        self.last_seq = trade.seq if self.last_seq is None else max(self.last_seq, trade.seq)
        return True

    async def _catch_up(self) -> bool:
        """Read on from the store: the fills stored after `last_seq` that are this strategy's. Live
        deliveries queue again from the start of this read (duplicates of it are skipped by seq); if it
        stops short of the store's end, those are left to the next catch-up."""
        self._lagging = False
        if self._state is StrategyState.STOPPING:
            return True  # what it has not read yet comes at its next start
        try:
            if self.last_seq is None:
                await self.pool.resolve_position(self)
            if self.last_seq is None:
                return False
            threaded = not inspect.iscoroutinefunction(self.on_trade)
            async with contextlib.aclosing(self.pool.catch_up(self, self.last_seq, self.redelivery_bound)) as pages:
                async for seq, trades in pages:
                    through = await self._take_page(trades, threaded)
                    if through is False:
                        return True  # failed: the task ends
                    if through is None:  # a fill's spooled copy is still queued: the inbox goes first
                        self._lagging = True
                        self._drop_queued_stored()
                        return True
                    self.last_seq = max(self.last_seq, seq)
        except StoreError as exc:
            self._lagging = True
            self._drop_queued_stored()
            if not self._store_trouble and self.pool.trade_sync.store_ready.is_set():  # else said by the pool
                self._log.bind(error=str(exc)).warning("catch-up from the store failed; retrying every second")
            self._store_trouble = True
            return False
        if self._state is StrategyState.STOPPING:  # unsubscribed: the pages not read come at its next start
            self._drop_queued_stored()
        self._store_trouble = False
        return True

    async def _take_page(self, trades: list[Trade], threaded: bool) -> bool | None:
        """A page read back from the store, in seq order. A fill its hook already saw from the spool is passed over
        where it stands, never before the fills ahead of it are handled: the position (written every half second)
        must not pass a fill still to come, or a kill meanwhile loses that fill. True once the page is through,
        False if a hook raised, None at a fill whose spooled copy waits in the inbox (handled first, then read on)."""
        take = self._caught_up_on_worker if threaded else self._caught_up_here
        run: list[Trade] = []
        for trade in trades:
            key = trade.dedup_key
            if key not in self._provisional:
                run.append(trade)
                continue
            if run and not await take(run):
                return False
            run = []
            if key in self._provisional_done:
                self._seen_provisionally(trade)
            elif self._spool_copy_queued(key):
                return None
            else:  # its spooled copy never reached the hook: this is its delivery
                self._provisional.discard(key)
                run.append(trade)
        return not run or await take(run)

    def _spool_copy_queued(self, key: tuple) -> bool:
        return any(kind == "trade" and event.seq is None and event.dedup_key == key for kind, event in self._inbox)

    def _drop_queued_stored(self) -> None:
        """A catch-up that stopped short: the stored fills queued since it began lie past what it read, so handing
        them over now would move the position over the fills in between. They are in the store: the next catch-up
        reads them in order."""
        kept, dropped = [], 0
        for kind, event in self._inbox:
            if kind == "trades":
                dropped += len(event)
            elif kind == "trade" and event.seq is not None:
                dropped += 1
            else:
                kept.append((kind, event))
        if dropped:
            self._inbox.clear()
            self._inbox.extend(kept)
            self._queued -= dropped
            self.progress.done(dropped)

    async def _read_back_orders(self) -> bool:
        """The latest stored state of every order of this strategy updated since the earliest state it could not
        keep, a page of max_inbox at a time (the next page once these are handled)."""
        from framework.store import OrderCursor

        cursor, behind = self._orders_cursor, self._orders_behind
        if behind is not None and (cursor is None or behind < cursor.since_ms):
            cursor = OrderCursor(since_ms=behind)  # not kept since: from its time (what comes twice is harmless)
        self._orders_cursor, self._orders_behind = None, None
        try:
            states, self._orders_cursor = await self.pool.order_states(self, cursor, self.max_inbox)
        except StoreError as exc:
            self._orders_cursor = cursor
            self._log.bind(error=str(exc)).warning("order states not read back from the store yet")
            return False
        for state in states:
            self._put("order", state)
        self.order_states_read_back += len(states)
        return True

    async def _caught_up_here(self, trades: list[Trade]) -> bool:
        for trade in trades:
            self.caught_up += 1
            if not await self._handle(self.on_trade, trade):
                return False
            self.last_seq = trade.seq
        return True

    async def _caught_up_on_worker(self, trades: list[Trade]) -> bool:
        """A page read back from the store, through a sync hook on the worker thread in one hand-off (until a
        hook raises, or hands back an awaitable that is finished here before the rest)."""
        while trades:
            self.busy_in = "on_trade"
            try:
                done, error, pending = await self._worker.run(_run_hook_over, self.on_trade, trades)
            finally:
                self.busy_in = None
            self.caught_up += done
            if done:
                self.last_seq = trades[done - 1].seq
            if pending is None and error is None:
                return True
            trade = trades[done]
            self.caught_up += 1
            if not await self._handle((lambda _event: pending) if pending is not None else _raiser(error, self.on_trade),
                                      trade):
                return False
            self.last_seq = trade.seq
            trades = trades[done + 1:]
        return True

    async def _handle(self, hook: Any, event: Event, market: bool = False) -> bool:
        try:
            await self._call(hook, event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - isolate the user's failure from everyone else
            if not market:
                self.progress.done()
            if isinstance(event, Trade) and event.seq is not None:
                self.last_seq = max(self.last_seq or 0, event.seq)  # it was delivered: never again
            self._fail(exc, hook.__name__)
            # Release this strategy's keys; shielded so a concurrent stop() cannot cut it in half.
            await asyncio.shield(self._release_after_failure())
            return False
        return True

    async def _release_after_failure(self) -> None:
        await self.pool.unsubscribe_strategy(self.strategy_id)
        await self.pool.write_position(self, running=False)

    async def _call(self, fn: Any, *args: Any) -> Any:
        """Run a hook: a coroutine function on the event loop, anything else on the worker thread."""
        self.busy_in = getattr(fn, "__name__", "hook")
        try:
            if inspect.iscoroutinefunction(fn):
                return await fn(*args)
            result = await self._worker.run(fn, *args)
            if inspect.isawaitable(result):
                result = await result
            return result
        finally:
            self.busy_in = None

    def _fail(self, exc: BaseException, where: str) -> None:
        self.error = exc
        self._state = StrategyState.FAILED
        self._inbox.clear()
        self._queued = 0
        self._market_latest.clear()
        self._market_flow.clear()
        self._order_overflow.clear()
        self._account_overflow.clear()
        self._orders_behind = self._orders_cursor = None
        self.progress.skip_pending()
        self._idle.set()
        self._log.bind(hook=where, error=repr(exc)).exception("strategy hook raised: strategy marked failed")
        self.pool.sync_log.strategy(self.strategy_id, "failed", hook=where, error=repr(exc))

    async def _stop_task(self) -> None:
        task, self._task = self._task, None
        if task is None or task.done():
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():
                raise


class AccountView(Mapping):
    """A strategy's read-only view of its balances (by asset) or positions (by symbol), always the newest state.

    `view["USDT"]` when one of its keys holds it; with several (two venues, or two hedge legs), name it:
    `view["bybit_future", "USDT"]`, `positions["bybit_future", "BTC/USDT:USDT", "long"]`. `view.all()` has them all
    by (key, asset | symbol, position side)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._states: dict[tuple, AccountEvent] = {}  # (key str, asset | symbol[, position side]) -> newest
        self._by_name: dict[str, list[tuple]] = {}

    def _take(self, event: AccountEvent) -> bool:
        """Keep a state unless a newer one is held (False then); a balance movement (delta) is not kept."""
        if event.__class__ is BalanceUpdate:
            if event.is_delta:
                return True  # a movement only: the absolute state that follows it is what the view keeps
            full, name = (str(event.key), event.asset), event.asset
        else:
            full, name = (str(event.key), event.symbol, event.position_side.value), event.symbol
        held = self._states.get(full)
        if held is not None and held.timestamp > event.timestamp:
            return False  # an older state (a delta sent before a reconnect's snapshot) never undoes a newer one
        if held is None:
            self._by_name.setdefault(name, []).append(full)
        self._states[full] = event
        return True

    def __getitem__(self, name: Any) -> Any:
        if isinstance(name, tuple):
            full = (str(name[0]), *name[1:])
            if self.kind == "position" and len(full) == 2:
                full = (*full, "net")
            return self._states[full]
        found = self._by_name.get(name, ())
        if len(found) == 1:
            return self._states[found[0]]
        if not found:
            raise KeyError(name)
        raise KeyError(f"{name} is in several {self.kind}s ({', '.join(' '.join(f) for f in found)}): "
                       f"name one, e.g. [{found[0][0]!r}, {name!r}]")

    def __iter__(self):
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def all(self) -> dict[tuple, AccountEvent]:
        return dict(self._states)

    def __repr__(self) -> str:
        return f"AccountView({self.kind}s: {sorted(' '.join(k) for k in self._states)})"


def _key_of(value: Any, where: str) -> ConnectionKey:
    if isinstance(value, ConnectionKey):
        return ConnectionKey(exchange=value.exchange, market=value.market)
    try:
        key = ConnectionKey.parse(str(value))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return ConnectionKey(exchange=key.exchange, market=key.market)


def _symbol_list(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    try:
        symbols = list(value)
    except TypeError:
        raise ConfigError(f"{where} must list symbols, e.g. [\"BTC/USDT\"], got {value!r}") from None
    bad = [s for s in symbols if not isinstance(s, str) or "/" not in s]
    if bad:
        raise ConfigError(f"{where}: {bad[0]!r} is not a unified symbol like BTC/USDT or BTC/USDT:USDT")
    return list(dict.fromkeys(symbols))


def _market_symbols(declared: Any, where: str) -> dict[ConnectionKey, list[str]]:
    """`{"binance_spot": ["BTC/USDT"], ...}` → {key: symbols}."""
    if not declared:
        return {}
    if not isinstance(declared, Mapping):
        raise ConfigError(f"{where} must map a key to symbols, e.g. {{\"binance_spot\": [\"BTC/USDT\"]}}")
    plan: dict[ConnectionKey, list[str]] = {}
    for key, symbols in declared.items():
        parsed = _key_of(key, where)
        plan[parsed] = list(dict.fromkeys([*plan.get(parsed, []), *_symbol_list(symbols, f"{where}[{key!r}]")]))
    return plan


def _candle_plan(declared: Any, symbols: dict[ConnectionKey, list[str]]) -> dict[ConnectionKey, list[Watch]]:
    """`candles` in any of its forms → {key: [ohlc watches]}."""
    if not declared:
        return {}
    every = [(key, symbol) for key, listed in symbols.items() for symbol in listed]
    plan: dict[ConnectionKey, list[Watch]] = {}

    def add(key: ConnectionKey, symbol: str, timeframe: str) -> None:
        if not isinstance(timeframe, str) or not _TIMEFRAME.match(timeframe):
            raise ConfigError(f"candles: {timeframe!r} is not a timeframe like 1m, 5m, 1h")
        plan.setdefault(key, []).append(Watch("ohlc", symbol, timeframe))

    if isinstance(declared, str) or not isinstance(declared, Mapping):  # timeframes for every symbol
        for timeframe in [declared] if isinstance(declared, str) else list(declared):
            if not every:
                raise ConfigError("candles names timeframes only: list the symbols in market_data, or use "
                                  "candles = {\"binance_spot\": {\"1m\": [\"BTC/USDT\"]}}")
            for key, symbol in every:
                add(key, symbol, timeframe)
        return plan
    for name, value in declared.items():
        if isinstance(name, str) and _TIMEFRAME.match(name):  # {"1m": [symbols of market_data]}
            for symbol in _symbol_list(value, f"candles[{name!r}]"):
                keys = [key for key, listed in symbols.items() if symbol in listed]
                if not keys:
                    raise ConfigError(f"candles[{name!r}]: {symbol} is in no market_data key: add it there, or "
                                      f"use candles = {{\"binance_spot\": {{{name!r}: [{symbol!r}]}}}}")
                for key in keys:
                    add(key, symbol, name)
            continue
        key = _key_of(name, "candles")
        if isinstance(value, Mapping):  # {"binance_spot": {"1m": [symbols]}}
            for timeframe, listed in value.items():
                for symbol in _symbol_list(listed, f"candles[{name!r}][{timeframe!r}]"):
                    add(key, symbol, timeframe)
        else:  # {"binance_spot": ["1m", "5m"]}: that key's market_data symbols
            for timeframe in [value] if isinstance(value, str) else list(value):
                if not symbols.get(key):
                    raise ConfigError(f"candles[{name!r}] names timeframes only, but market_data lists no symbol "
                                      f"for {key}: use {{{name!r}: {{{timeframe!r}: [\"BTC/USDT\"]}}}}")
                for symbol in symbols[key]:
                    add(key, symbol, timeframe)
    return plan


def _normalize_connectors(connectors: Any) -> tuple[Any, ...]:
    """The connectors of a sequence or of a key → connector mapping; a ConfigError for anything else."""
    if isinstance(connectors, Mapping):
        for name, connector in connectors.items():
            _check_connector(connector, f"exchange_connectors[{name!r}]")
            try:
                key = name if isinstance(name, ConnectionKey) else ConnectionKey.parse(name)
            except (AttributeError, TypeError, ValueError):
                raise ConfigError(
                    f"exchange_connectors key {name!r} is not a connection key: use 'exchange_market[@account]' "
                    "text or a ConnectionKey") from None
            if key != connector.key:
                raise ConfigError(
                    f"exchange_connectors key {str(key)!r} holds the connector for {str(connector.key)!r}: "
                    "key each connector by its own key")
        return tuple(connectors.values())
    if isinstance(connectors, (str, bytes)) or not isinstance(connectors, Iterable):
        raise ConfigError(
            f"exchange_connectors must be a list of connectors or a mapping key → connector, got {connectors!r}")
    connectors = tuple(connectors)
    for index, connector in enumerate(connectors):
        _check_connector(connector, f"exchange_connectors[{index}]")
    return connectors


def _check_connector(connector: Any, where: str) -> None:
    if not isinstance(getattr(connector, "key", None), ConnectionKey):
        raise ConfigError(
            f"{where} is {connector!r}, not a connector: give an ExchangeConnector or MockConnector "
            "(make one per connection key, e.g. MockConnector('binance', 'spot'))")


class _HookThread:
    """One daemon thread per strategy that runs its sync hooks in order. A hook that blocks holds up
    only this strategy; being a daemon, a thread stuck in user code never keeps the process alive."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name=f"strategy-{name}", daemon=True)
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def run(self, fn: Any, *args: Any) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.put((loop, future, fn, args))
        return future

    def _loop(self) -> None:
        while True:
            loop, future, fn, args = self._jobs.get()
            try:
                result, error = fn(*args), None
            except BaseException as exc:  # noqa: BLE001 - handed to the strategy's task
                result, error = None, exc
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass


def _run_hooks(calls: list[tuple[Any, Event]]) -> tuple[int, BaseException | None, Any]:
    """On the worker thread: run hooks in order until one raises or hands back an awaitable.
    Returns (how many completed, the exception, the awaitable)."""
    for index, (hook, event) in enumerate(calls):
        try:
            result = hook(event)
        except Exception as exc:  # noqa: BLE001 - reported to the strategy's task
            return index, exc, None
        if inspect.isawaitable(result):
            return index, None, result
    return len(calls), None, None


def _run_hook_over(hook: Any, events: list[Event]) -> tuple[int, BaseException | None, Any]:
    """On the worker thread: one hook over a run of events until one raises or hands back an awaitable."""
    isawaitable = inspect.isawaitable
    for index, event in enumerate(events):
        try:
            result = hook(event)
        except Exception as exc:  # noqa: BLE001 - reported to the strategy's task
            return index, exc, None
        if result is not None and isawaitable(result):
            return index, None, result
    return len(events), None, None


def _raiser(error: BaseException, hook: Any) -> Any:
    """A stand-in for a hook that raised on the worker thread, so the failure goes the usual way."""
    def raised(_event: Event) -> None:
        raise error

    raised.__name__ = getattr(hook, "__name__", "hook")
    return raised


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
