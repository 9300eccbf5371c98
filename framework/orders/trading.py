"""Order entry for a process: `setup_websocket_trading(pool, config)` makes the `WebSocketTrading` the pool's
strategies place orders through — one gateway per key, the guards (concurrency, notional), client ids from each
strategy's prefix, executions to the placing strategy, metrics and status."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from loguru import logger

from framework.errors import ConfigError
from framework.events import ConnectionKey, Market, Side, now_ms, to_decimal, to_optional_decimal
from framework.orders.config import WebSocketTradingConfig
from framework.orders.gateway import OrderError, OrderGateway
from framework.orders.metrics import OrderMetrics
from framework.orders.model import Execution, OrderRequest, OrderState, OrderType
from framework.orders.order import Order

if TYPE_CHECKING:
    from framework.pool import ConnectionPool

_SEQUENCE = itertools.count()


def unique_number() -> int:
    """A number no earlier run of this process made (ms clock × 1000 + a sequence): the n of a client id."""
    return now_ms() * 1000 + next(_SEQUENCE) % 1000


class WebSocketTrading:
    """The process's order entry. Strategies call it through `BaseStrategy.place_order` & co."""

    def __init__(self, pool: ConnectionPool, config: WebSocketTradingConfig | None = None) -> None:
        self.pool = pool
        self.config = config or WebSocketTradingConfig()
        self.metrics = OrderMetrics()
        self.gateways: dict[ConnectionKey, OrderGateway] = {}
        self._slots = asyncio.Semaphore(self.config.max_concurrent_orders)
        self._lock = asyncio.Lock()
        self._strategies: dict[str, Any] = {}
        self._last_n = 0
        self.active = False
        self._log = logger.bind(component="orders")

    # lifecycle -------------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self.active = True

    async def stop(self) -> None:
        self.active = False
        for key, gateway in list(self.gateways.items()):  # kept: their orders and figures stay readable
            self.pool.pipeline.order_taps.pop(key, None)
            await gateway.stop()

    # gateways --------------------------------------------------------------------------------------------------
    async def gateway(self, key: ConnectionKey, connector: Any) -> OrderGateway:
        found = self.gateways.get(key)
        if found is not None:
            return found
        async with self._lock:
            found = self.gateways.get(key)
            if found is not None:
                return found
            spec = getattr(connector, "spec", None)
            if spec is None or getattr(connector, "is_mock", False):
                raise ConfigError(f"{key}: a mock connector cannot place orders; use an ExchangeConnector "
                                  f"(the simulator's, or the live venue's)")
            if spec.orders is None:
                raise ConfigError(f"{spec.name} has no order entry in this version")
            gateway = OrderGateway(key, spec, connector.credentials, connector.endpoints, self.config, self.metrics,
                                   emit=self._emit, record=self._record, record_now=self._record_now,
                                   connection=self.pool.connection(key))
            gateway._child_factory = self._child
            self.gateways[key] = gateway
            self.pool.pipeline.order_taps[key] = gateway
            await gateway.start()
            await self._recover(gateway)
            if gateway.channel is not None:  # the first order need not wait for the login, but a moment helps
                await gateway.channel.wait_ready(min(5.0, self.config.ack_timeout_seconds))
            return gateway

    def register(self, strategy: Any) -> None:
        self._strategies[strategy.strategy_id] = strategy

    async def attach(self, strategy: Any) -> None:
        """A strategy started: its keys with order entry get their gateway now (the WebSocket trading login, and
        the requests an earlier process left unfinished, done before its first order)."""
        self.register(strategy)
        for connector in strategy.exchange_connectors:
            spec = getattr(connector, "spec", None)
            if spec is not None and spec.orders is not None and connector.key.market in spec.orders.markets \
                    and not getattr(connector, "is_mock", False):
                await self.gateway(connector.key, connector)

    async def _recover(self, gateway: OrderGateway) -> None:
        try:
            rows = await self.pool.store.fetch_order_requests(gateway.key)
        except Exception as exc:  # noqa: BLE001 - a store that cannot say: nothing to take over now
            self._log.bind(key=str(gateway.key), error=str(exc)[:200]).warning("unfinished order requests not read")
            return
        gateway.recover(rows)

    async def _record_now(self, order: Order) -> None:
        """The request in the store before its first attempt: a kill -9 after the send leaves it to be reconciled
        at the next start. A store that is down does not stop trading (the periodic writer catches up)."""
        try:
            await self.pool.store.record_order_requests([order.snapshot()])
        except Exception as exc:  # noqa: BLE001 - recorded later by the periodic writer
            self.pool.record_order_request(order.snapshot())
            self._log.bind(error=str(exc)[:200]).warning("order request not written ahead (store unavailable)")

    def client_order_id(self, key: ConnectionKey, prefix: str, rules: Any) -> str:
        """A fresh client id for an order of the strategy with this prefix, in the venue's rules (OrderRules)."""
        n = max(unique_number(), self._last_n + 1)
        self._last_n = n
        try:
            return rules.client_id(key.market, prefix, n)
        except ValueError as exc:
            raise ConfigError(f"client_order_id_prefix {prefix!r} cannot make a {key.exchange} client id: {exc}; "
                              f"give the strategy a client_order_id_prefix that fits") from None

    # what strategies call --------------------------------------------------------------------------------------
    async def place(self, strategy: Any, symbol: str, side: Any, amount: Any, *, price: Any = None,
                    order_type: str = "limit", exchange: Any = None, reduce_only: bool = False,
                    take_profit: Any = None, stop_loss: Any = None) -> Order:
        if not self.config.enabled:
            raise ConfigError("order entry is disabled (WebSocketTradingConfig.enabled=False)")
        key, connector = self._key_for(strategy, symbol, exchange)
        spec = connector.spec
        rules = spec.orders
        if rules is None or key.market in rules.closed or key.market not in rules.markets:
            reason = rules.closed.get(key.market) if rules is not None else None
            raise OrderError(f"{key}: order entry is not possible here" + (f": {reason}" if reason else ""))
        kind = _order_type(order_type)
        if kind.value not in rules.order_types:
            raise OrderError(f"{key.exchange} does not take {kind.value} orders (it takes "
                             f"{', '.join(sorted(rules.order_types))})")
        price = to_optional_decimal(price)
        amount = to_decimal(amount)
        if amount <= 0:
            raise OrderError(f"amount must be positive, got {amount}")
        if kind is not OrderType.MARKET and (price is None or price <= 0):
            raise OrderError(f"a {kind.value} order needs a positive price")
        if (take_profit is not None or stop_loss is not None) and key.market not in rules.conditional:
            raise OrderError(f"{key}: take-profit / stop-loss orders are not available on this venue here")
        gateway = await self.gateway(key, connector)
        if kind is OrderType.MARKET and price is None and rules.market_reference:
            price = await gateway.reference_price(symbol, Side.parse(side).value)
            if price is None:
                raise OrderError(f"{key.exchange} market orders need a reference price and {symbol}'s book could "
                                 f"not be read: give a price")
        self._check_notional(strategy, key, symbol, amount, price)
        request = OrderRequest(market=key.market, symbol=symbol, side=Side.parse(side), amount=amount, price=price,
                               order_type=kind, reduce_only=reduce_only,
                               client_order_id=self.client_order_id(key, strategy.client_order_id_prefix, rules))
        order = Order(key, strategy.strategy_id, request)
        if take_profit is not None:
            order.protect["take_profit"] = to_decimal(take_profit)
        if stop_loss is not None:
            order.protect["stop_loss"] = to_decimal(stop_loss)
        self.register(strategy)
        async with self._slots:
            await gateway.place(order)
        return order

    def _child(self, entry: Order, kind: str, trigger: Decimal) -> Order:
        """A TP/SL order protecting what an entry filled: the other side, reduce-only, market on trigger."""
        key = entry.key
        prefix = self._strategies[entry.strategy_id].client_order_id_prefix
        request = OrderRequest(
            market=key.market, symbol=entry.symbol, side=Side.SELL if entry.side is Side.BUY else Side.BUY,
            amount=entry.filled, price=None, order_type=OrderType.MARKET, reduce_only=key.market is Market.FUTURE,
            trigger_price=trigger, trigger=kind,
            client_order_id=self.client_order_id(key, prefix, self.gateways[key].rules),
        )
        return Order(key, entry.strategy_id, request, parent=entry.client_order_id, kind=kind)

    async def cancel(self, order: Order) -> Order:
        return await self._gateway_of(order).cancel(order)

    async def amend(self, order: Order, *, price: Any = None, amount: Any = None) -> Order:
        price, amount = to_optional_decimal(price), to_optional_decimal(amount)
        if price is None and amount is None:
            raise OrderError("amend needs a new price and/or amount")
        gateway = self._gateway_of(order)
        if gateway.rules.rest.amend is None and not (gateway.rules.ws is not None and "amend" in gateway.rules.ws.ops):
            raise OrderError(f"{order.key.exchange} has no order amend: cancel the order and place a new one")
        fresh = self.client_order_id(order.key, self._strategies[order.strategy_id].client_order_id_prefix, gateway.rules)
        return await gateway.amend(order, price=price, amount=amount, new_client_order_id=fresh)

    async def query(self, order: Order) -> Order:
        return await self._gateway_of(order).query(order)

    def _gateway_of(self, order: Order) -> OrderGateway:
        gateway = self.gateways.get(order.key)
        if gateway is None:
            raise OrderError(f"{order.client_order_id} was not placed through this process's order entry")
        return gateway

    def _key_for(self, strategy: Any, symbol: str, exchange: Any) -> tuple[ConnectionKey, Any]:
        connectors = list(strategy.exchange_connectors)
        if exchange is not None:
            wanted = str(exchange)
            chosen = [c for c in connectors if str(c.key) == wanted or f"{c.key.exchange}_{c.key.market.value}" == wanted]
        else:
            future = ":" in symbol
            chosen = [c for c in connectors if (c.key.market is Market.FUTURE) == future] or connectors
        if len(chosen) != 1:
            names = ", ".join(str(c.key) for c in connectors) or "none"
            raise ConfigError(f"{strategy.strategy_id}: say which key the order is for with exchange=… "
                              f"(its connectors: {names})")
        return chosen[0].key, chosen[0]

    def _check_notional(self, strategy: Any, key: ConnectionKey, symbol: str, amount: Decimal,
                        price: Decimal | None) -> None:
        limit = self.config.max_notional_per_strategy
        if limit is None:
            return
        if price is None:
            price = _reference_price(self.pool, key, symbol)
            if price is None:
                raise OrderError(f"max_notional_per_strategy is set and {symbol} has no price to value a market "
                                 f"order with: watch its ticker or book (market_data), or give a limit price")
        open_notional = sum(
            (o.remaining * (o.price or price) for g in self.gateways.values() for o in g.orders.values()
             if o.strategy_id == strategy.strategy_id and not o.final), Decimal(0))
        if open_notional + amount * price > limit:
            raise OrderError(f"order of {amount * price} would take {strategy.strategy_id}'s open notional to "
                             f"{open_notional + amount * price}, over max_notional_per_strategy {limit}")

    # executions and records ------------------------------------------------------------------------------------
    def _emit(self, order: Order, execution: Execution) -> None:
        strategy = self._strategies.get(order.strategy_id) or self.pool.consumer(order.strategy_id)
        if strategy is not None:
            strategy.deliver_execution(execution)
        self.pool.pipeline.publish_execution(order.key, execution)

    def _record(self, order: Order) -> None:
        self.pool.record_order_request(order.snapshot())

    # figures -------------------------------------------------------------------------------------------------
    def get_metrics(self) -> dict[str, Any]:
        figures = self.metrics.as_dict()
        figures["active_orders_count"] = sum(1 for g in self.gateways.values() for o in g.orders.values()
                                             if not o.final)
        return figures

    def get_status(self) -> dict[str, Any]:
        metrics = self.metrics
        channels = [g.channel for g in self.gateways.values() if g.channel is not None]
        return {
            "integration_status": {
                "websocket_available": any(c.ready for c in channels),
                "integration_active": self.active,
                "prefer_websocket": self.config.prefer_websocket and all(g.ws_preferred for g in self.gateways.values()),
            },
            "performance_metrics": {
                "websocket_trades": metrics.answered["websocket"], "rest_trades": metrics.answered["rest"],
                "websocket_success_rate": metrics.success_rate("websocket"),
                "rest_success_rate": metrics.success_rate("rest"),
                "fallback_events": sum(metrics.fallbacks.values()),
                "fallback_reasons": dict(metrics.fallbacks),
                "websocket_latency_ms": metrics.summary("ack", "websocket"),
                "rest_latency_ms": metrics.summary("ack", "rest"),
            },
            "keys": {str(key): gateway.status() for key, gateway in self.gateways.items()},
            "venues": {str(key): (gateway.rules.notes or "") for key, gateway in self.gateways.items()},
        }

    def prometheus_samples(self) -> list[tuple[str, dict[str, str], float]]:
        """The order entry figures for /metrics: (name, labels, value)."""
        metrics = self.metrics
        samples: list[tuple[str, dict[str, str], float]] = []
        for series in ("ack", "confirm", "first_fill"):
            for path in ("websocket", "rest"):
                summary = metrics.summary(series, path)
                for quantile, field in (("0.5", "p50_ms"), ("0.99", "p99_ms")):
                    if summary[field] is not None:
                        samples.append((f"tradesync_order_{series}_latency_seconds",
                                        {"path": path, "quantile": quantile}, summary[field] / 1000))
        for path in ("websocket", "rest"):
            samples.append(("tradesync_order_requests", {"path": path}, metrics.attempts[path]))
            rate = metrics.success_rate(path)
            if rate is not None:
                samples.append(("tradesync_order_success_rate", {"path": path}, rate))
        for reason, count in metrics.fallbacks.items():
            samples.append(("tradesync_order_fallbacks", {"reason": reason}, count))
        for state, count in metrics.counts.items():
            samples.append(("tradesync_orders", {"state": state}, count))
        samples.append(("tradesync_orders_active", {}, self.get_metrics()["active_orders_count"]))
        for key, gateway in self.gateways.items():
            ready = gateway.channel is not None and gateway.channel.ready
            samples.append(("tradesync_order_websocket_ready", {"key": str(key)}, 1 if ready else 0))
        return samples

    async def force_websocket_preference(self, prefer: bool) -> None:
        """True: WebSocket first where there is one; False: REST for every order until set back."""
        for gateway in self.gateways.values():
            gateway.ws_preferred = bool(prefer)
        self.config = _evolve(self.config, prefer_websocket=bool(prefer))

    async def retry_websocket_initialization(self) -> dict[str, str]:
        """Reconnect every key's WebSocket trading channel (after a refusal or giving up); their states after."""
        for gateway in self.gateways.values():
            await gateway.retry_websocket()
        for gateway in self.gateways.values():
            if gateway.channel is not None:
                await gateway.channel.wait_ready(5.0)
        return {str(k): (g.channel.state if g.channel else "none") for k, g in self.gateways.items()}


def _evolve(config: WebSocketTradingConfig, **changes: Any) -> WebSocketTradingConfig:
    import attrs

    return attrs.evolve(config, **changes)


def _order_type(value: Any) -> OrderType:
    try:
        return OrderType(str(value).lower())
    except ValueError:
        raise OrderError(f"unknown order type {value!r}: use one of {', '.join(t.value for t in OrderType)}") from None


def _reference_price(pool: Any, key: ConnectionKey, symbol: str) -> Decimal | None:
    connection = pool.public_connection(key.exchange, key.market)
    latest = getattr(connection, "latest_price", None) if connection is not None else None
    return latest(symbol) if latest else None


async def setup_websocket_trading(pool: ConnectionPool, config: WebSocketTradingConfig | None = None
                                  ) -> WebSocketTrading:
    """The process's order entry on this pool (one per pool; a second call returns the first, re-configured)."""
    trading = getattr(pool, "trading", None)
    if trading is None:
        trading = WebSocketTrading(pool, config)
        pool.trading = trading
    elif config is not None:
        trading.config = config
    await trading.start()
    return trading


__all__ = ["WebSocketTrading", "setup_websocket_trading", "OrderState"]
