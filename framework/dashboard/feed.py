"""The dashboard's pipeline component: fills, orders, executions, balances, positions, connections and alerts into
the dashboard's state and journal, a periodic read of connection and pipeline health, and `publish(type, data)` for
a program's own message types. Everything it does is in memory on the loop: it never waits on a page."""

from __future__ import annotations

import asyncio
from typing import Any

from loguru import logger

from framework.dashboard.state import RESERVED_TYPES, DashboardState
from framework.errors import ConfigError
from framework.events import ConnectionKey
from framework.pipeline.channels import Lane

CHANNELS = ("trade", "order_update", "execution", "balance", "position", "connection", "alert")
HEALTH_EVERY = 1.0  # seconds between reads of the connections' and the pipeline's status
EARLY_LIMIT = 100_000  # events held while the state is read from the store; past it the store is read again


class DashboardFeed:
    """Registered on the pool's pipeline as `name`. Between `register()` and `start()` (the state being read from
    the store) events are held in order, up to EARLY_LIMIT (past it they are dropped and the store read again at
    start). When the component's CRITICAL lane overflowed (fills are read back by the pipeline, order states too),
    balances and positions are read again from the store: none is missed for long."""

    def __init__(self, pool: Any, state: DashboardState, *, name: str = "dashboard",
                 health_every: float = HEALTH_EVERY, store: Any = None) -> None:
        self.pool = pool
        self.store = store if store is not None else pool.store
        self.state = state
        self.name = name
        self.health_every = health_every
        self._early: list[tuple[str, Any]] | None = []
        self._overrun = False
        self._component: Any = None
        self._overflowed = 0
        self._task: asyncio.Task | None = None
        self._log = logger.bind(component=name)

    # lifecycle ------------------------------------------------------------------------------------------------
    def register(self) -> None:
        """Subscribe to the pipeline now; what comes is held until `start()`."""
        if self._component is None:
            self._component = self.pool.pipeline.register_component(self.name, self, channels=CHANNELS)

    def hold(self) -> None:
        """Hold events (in order, in memory) while the state is read from the store again."""
        if self._early is None:
            self._early = []

    async def release(self) -> None:
        """Apply what was held, in order (past EARLY_LIMIT: the store is read again instead), and go on live."""
        early, self._early = self._early, None
        for kind, event in early or ():
            self._apply(kind, event)
        if self._overrun:
            self._overrun = False
            await self.refresh(orders=True)

    async def start(self) -> None:
        """Apply what was held and go live (with a health read at once)."""
        self.register()
        await self.release()
        if self._task is None:
            self.tick()
            self._task = asyncio.create_task(self._run(), name=f"{self.name}-health")

    async def stop(self, timeout: float = 5.0) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._component is not None:
            self._component = None
            await self.pool.pipeline.unregister_component(self.name, timeout)

    async def refresh(self, *, orders: bool = False) -> None:
        """Read the account (and `orders`, and fills) from the store again once what was received is stored."""
        await self.pool.trade_sync.wait_stored()
        await self.state.load_account(self.store, orders=orders, record=True)
        if orders:
            for trade in await self._fills_after():
                self.state.apply_fill(trade)

    async def _fills_after(self) -> list[Any]:
        keys = sorted(self.state.keys | set(self.pool.pipeline.known_keys()), key=str)
        rows = await self.store.trades_after(keys, self.state.fills_seq, EARLY_LIMIT) if keys else []
        return [trade for _, trade in rows]

    # the pipeline's handlers (coroutines that never suspend: they run on the loop, in the component's task) -------
    async def on_trade_update(self, trade: Any) -> None:
        self._take("trade", trade)

    async def on_order_update_update(self, update: Any) -> None:
        self._take("order_update", update)

    async def on_execution_update(self, execution: Any) -> None:
        self._take("execution", execution)

    async def on_balance_update(self, balance: Any) -> None:
        self._take("balance", balance)

    async def on_position_update(self, position: Any) -> None:
        self._take("position", position)

    async def on_connection_update(self, notice: dict[str, Any]) -> None:
        self._take("connection", notice)

    async def on_alert_update(self, alert: Any) -> None:
        self._take("alert", alert)

    def _take(self, kind: str, event: Any) -> None:
        early = self._early
        if early is None:
            self._apply(kind, event)
        elif len(early) < EARLY_LIMIT:
            early.append((kind, event))
        else:
            self._overrun = True

    def _apply(self, kind: str, event: Any) -> None:
        state = self.state
        if kind == "trade":
            state.apply_fill(event)
        elif kind == "order_update":
            state.apply_order_update(event)
        elif kind == "execution":
            state.apply_execution(event)
        elif kind == "balance":
            state.apply_balance(event)
        elif kind == "position":
            state.apply_position(event)
        elif kind == "alert":
            state.apply_alert(event)
        elif kind == "connection":
            key = str(event.get("key"))
            try:
                connection = self.pool.connection(ConnectionKey.parse(key))
            except ConfigError:
                connection = None
            if connection is not None:  # its whole state now (a notice carries only what changed)
                state.apply_connection(key, connection.status_dict())

    # a program's own messages ----------------------------------------------------------------------------------
    def publish(self, kind: str, data: Any) -> int:
        """Journal a message of a type of your own (an event: every one reaches the pages) and return its seq."""
        if not kind or not isinstance(kind, str) or kind in RESERVED_TYPES:
            raise ValueError(f"cannot publish a message of type {kind!r}: choose a type name of your own")
        return self.state.record(kind, data).seq

    # health ------------------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.health_every)
            try:
                self.tick()
                overflowed = self._critical_overflowed()
                if overflowed > self._overflowed:  # account states may have been left out: read them again
                    self._overflowed = overflowed
                    await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - what cannot be read now is read at the next tick
                self._log.bind(error=repr(exc)[:300]).warning("dashboard health or account not read")

    def _critical_overflowed(self) -> int:
        stats = getattr(self._component, "stats", None)
        return stats.lanes[Lane.CRITICAL].overflowed if stats is not None else 0

    def tick(self) -> None:
        """Connections and health from the pool's status; the chart's newest point if fills moved it."""
        status = self.pool.get_connection_status()
        state = self.state
        connected = True
        for key, info in status.get("connections", {}).items():
            state.apply_connection(key, info)
            connected = connected and info.get("status") == "connected"
        for key, info in status.get("public_connections", {}).items():
            state.apply_connection(f"market:{key}", info)
        pipeline = status.get("pipeline", {})
        sync = status.get("trade_sync", {})
        lanes: dict[str, dict[str, int]] = {lane.name.lower(): {"queued": 0, "dropped": 0} for lane in Lane}
        monitor = getattr(getattr(self.pool, "pipeline", None), "monitor", None)
        for stats in list(getattr(monitor, "consumers", {}).values()):
            depth = stats.depth() if callable(getattr(stats, "depth", None)) else {}
            for lane, counters in stats.lanes.items():
                figures = lanes[lane.name.lower()]
                figures["queued"] += int(depth.get(lane, 0))
                figures["dropped"] += int(counters.dropped)
        state.apply_health({
            "healthy": bool(pipeline.get("healthy", True)) and connected,
            "alerts": len(pipeline.get("alerts", [])),
            "fills_stored": int(sync.get("stored", 0)),
            "dead_letters": int(sync.get("dead_letters", 0)),
            "lanes": lanes,
        })
        state.emit_pnl()
