"""Order entry requests in both stores: the newest state per client id (an older record never undoes a newer one),
exact decimals, and a placed order's `orders` row carrying its request path, attempts and ack latency."""

from decimal import Decimal

import attrs

from framework.events import ConnectionKey, Market, OrderStatus, OrderUpdate, Side
from framework.orders.model import OrderRequest, OrderState, Path
from framework.orders.order import Order

KEY = ConnectionKey(exchange="binance", market="spot")
T = 1_764_000_000_000


def snapshot(state, updated, **changes):
    request = OrderRequest(market=Market.SPOT, symbol="BTC/USDT", side=Side.BUY, amount="0.00100001",
                           price="65000.12", client_order_id="s1-abc")
    order = Order(KEY, "s1", request)
    order.state, order.created, order.updated = state, T, updated
    return attrs.evolve(order.snapshot(), **changes)


async def test_the_newest_request_state_wins_and_the_orders_row_gets_path_attempts_latency(store):
    await store.upsert_orders([OrderUpdate(
        exchange="binance", market="spot", symbol="BTC/USDT", symbol_raw="BTCUSDT", order_id="42",
        client_order_id="s1-abc", side="buy", order_type="limit", status=OrderStatus.NEW, status_raw="NEW",
        amount="0.00100001", price="65000.12", filled="0", timestamp=T)])
    await store.record_order_requests([snapshot(OrderState.PENDING, T)])
    await store.record_order_requests([snapshot(OrderState.OPEN, T + 20, order_id="42", path=Path.WEBSOCKET,
                                                attempts=2, ack_latency_ms=1.25)])
    await store.record_order_requests([snapshot(OrderState.ACKED, T + 10, order_id="42")])  # older: ignored
    (row,) = await store.fetch_order_requests(KEY)
    assert row["state"] == "open" and row["order_id"] == "42" and row["request_path"] == "websocket"
    assert row["attempts"] == 2 and row["ack_latency_ms"] == 1.25 and row["strategy_id"] == "s1"
    assert Decimal(str(row["amount"])) == Decimal("0.00100001") and Decimal(str(row["price"])) == Decimal("65000.12")
    assert await store.fetch_order_requests(ConnectionKey(exchange="bybit", market="spot")) == []
    (order,) = await store.fetch_orders(KEY)
    assert order.order_id == "42" and order.status is OrderStatus.NEW  # the venue's state as the stream wrote it
    path = getattr(store, "path", None)
    if path is not None:  # SQLite: the orders row itself
        import sqlite3

        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT request_path, attempts, ack_latency_ms FROM orders").fetchall() == [
                ("websocket", 2, 1.25)]
    else:  # PostgreSQL
        import psycopg

        from framework.store.postgres import PostgresTradeStore  # noqa: F401 - the store under test

        async with await psycopg.AsyncConnection.connect(store.conninfo if hasattr(store, "conninfo") else
                                                         store.url.split("?")[0]) as conn:
            schema = store.url.split("schema=")[1] if "schema=" in store.url else "public"
            cursor = await conn.execute(f'SELECT request_path, attempts, ack_latency_ms FROM "{schema}".orders')
            assert await cursor.fetchall() == [("websocket", 2, 1.25)]
