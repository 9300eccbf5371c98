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


class DashboardFeed:
    """Registered on the pool's pipeline as `name`; `start()` once the state is loaded from the store (events that
    came meanwhile wait in the component's own queue, fills past its bound are read back from the store)."""

    def __init__(self, pool: Any, state: DashboardState, *, name: str = "dashboard",
                 health_every: float = HEALTH_EVERY) -> None:
        self.pool = pool
        self.state = state
        self.name = name
        self.health_every = health_every
        self._ready = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._registered = False
        self._log = logger.bind(component=name)

    # lifecycle ------------------------------------------------------------------------------------------------
    def register(self) -> None:
        """Subscribe to the pipeline now (before the state is read from the store: nothing falls in between)."""
        if not self._registered:
            self.pool.pipeline.register_component(self.name, self, channels=CHANNELS)
            self._registered = True

    async def start(self) -> None:
        self.register()
        self._ready.set()
        if self._task is None:
            self.tick()
            self._task = asyncio.create_task(self._run(), name=f"{self.name}-health")

    async def stop(self, timeout: float = 5.0) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._registered:
            self._registered = False
            await self.pool.pipeline.unregister_component(self.name, timeout)

    # the pipeline's handlers (coroutines: they run on the loop, in the component's own task) ---------------------
    async def on_trade_update(self, trade: Any) -> None:
        if not self._ready.is_set():
            await self._ready.wait()
        self.state.apply_fill(trade)

    async def on_order_update_update(self, update: Any) -> None:
        if not self._ready.is_set():
            await self._ready.wait()
        self.state.apply_order_update(update)

    async def on_execution_update(self, execution: Any) -> None:
        if not self._ready.is_set():
            await self._ready.wait()
        self.state.apply_execution(execution)

    async def on_balance_update(self, balance: Any) -> None:
        if not self._ready.is_set():
            await self._ready.wait()
        self.state.apply_balance(balance)

    async def on_position_update(self, position: Any) -> None:
        if not self._ready.is_set():
            await self._ready.wait()
        self.state.apply_position(position)

    async def on_connection_update(self, notice: dict[str, Any]) -> None:
        if not self._ready.is_set():
            await self._ready.wait()
        key = str(notice.get("key"))
        try:
            connection = self.pool.connection(ConnectionKey.parse(key))
        except ConfigError:
            connection = None
        if connection is not None:  # its whole state now (a notice carries only what changed)
            self.state.apply_connection(key, connection.status_dict())

    async def on_alert_update(self, alert: Any) -> None:
        if not self._ready.is_set():
            await self._ready.wait()
        self.state.apply_alert(alert)

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
            except Exception as exc:  # noqa: BLE001 - a status that cannot be read now is read at the next tick
                self._log.bind(error=repr(exc)[:300]).warning("dashboard health not read")

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
