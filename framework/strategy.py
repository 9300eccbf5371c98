"""BaseStrategy: the lifecycle state table the framework owns, and the `on_*` hooks users write."""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from loguru import logger

from framework.errors import ConfigError, LifecycleError
from framework.events import Event, OrderUpdate, Trade
from framework.progress import Progress

if TYPE_CHECKING:
    from framework.pool import ConnectionPool


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
    Events reach the hooks one at a time, in order, from the strategy's own task: a slow or failing
    strategy never holds up the socket or the other strategies. An exception in a hook marks this
    strategy FAILED and releases its subscriptions.
    """

    def __init__(
        self,
        strategy_id: str,
        exchange_connectors: Sequence[Any],
        symbols: Iterable[str] | None = None,
        *,
        pool: ConnectionPool | None = None,
        client_order_id_prefix: str | None = None,
        **config: Any,
    ) -> None:
        if not strategy_id or not isinstance(strategy_id, str):
            raise ConfigError("strategy_id must be a non-empty string")
        self.strategy_id = strategy_id
        self.exchange_connectors = list(exchange_connectors)
        self.symbols = list(symbols) if symbols else None
        self.config = config
        self.client_order_id_prefix = client_order_id_prefix or strategy_id
        self.progress = Progress()
        self.error: BaseException | None = None
        self._pool = pool
        self._state = StrategyState.CREATED
        self._inbox: deque[Event] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._log = logger.bind(strategy=strategy_id)

    # hooks users override ----------------------------------------------------------------------
    def on_start(self) -> Any:
        """Called once the strategy is subscribed, before any event."""

    def on_trade(self, trade: Trade) -> Any:
        """Called with every new fill routed to this strategy (never twice for one fill)."""

    def on_order_update(self, update: OrderUpdate) -> Any:
        """Called with every order update routed to this strategy."""

    def on_stop(self) -> Any:
        """Called when the strategy stops, after its last event."""

    # the framework's side ------------------------------------------------------------------------
    @property
    def state(self) -> StrategyState:
        return self._state

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
        subscribed = False
        try:
            # The pool rolls back a subscription that fails part-way; on_start failing is ours to undo.
            await self.pool.subscribe_strategy(
                self.strategy_id, self.exchange_connectors, self.symbols, consumer=self
            )
            subscribed = True
            await _call(self.on_start)
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
        """Unsubscribe, deliver what was already received (up to `timeout`), then `on_stop`. Idempotent."""
        if self._state in (StrategyState.STOPPED, StrategyState.STOPPING):
            return
        if self._state is StrategyState.FAILED:
            await self._stop_task()
            return
        self._transition(StrategyState.STOPPING)
        await self.pool.unsubscribe_strategy(self.strategy_id)
        try:
            await self.progress.wait_until(self.progress.submitted, timeout)
        except TimeoutError:
            self._log.bind(pending=len(self._inbox)).warning("strategy stopped before its inbox was empty")
        await self._stop_task()
        if self._state is StrategyState.FAILED:
            return
        try:
            await _call(self.on_stop)
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

    def deliver(self, event: Event) -> None:
        """Called by the pool: queue an event for this strategy's task. Never blocks."""
        if self._state is StrategyState.FAILED:
            return
        self._inbox.append(event)
        self.progress.submit()
        self._wakeup.set()

    async def _run(self) -> None:
        while True:
            if not self._inbox:
                self._wakeup.clear()
                await self._wakeup.wait()
            event = self._inbox.popleft()
            hook = self.on_trade if isinstance(event, Trade) else self.on_order_update
            try:
                await _call(hook, event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - isolate the user's failure from everyone else
                self.progress.done()
                self._fail(exc, hook.__name__)
                # Release this strategy's keys; shielded so a concurrent stop() cannot cut it in half.
                await asyncio.shield(self.pool.unsubscribe_strategy(self.strategy_id))
                return
            self.progress.done()

    def _fail(self, exc: BaseException, where: str) -> None:
        self.error = exc
        self._state = StrategyState.FAILED
        self._inbox.clear()
        self.progress.skip_pending()
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


async def _call(fn: Any, *args: Any) -> Any:
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result
