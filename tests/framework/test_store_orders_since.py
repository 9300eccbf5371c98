"""Reading the latest order states back from the store by venue time (orders_since), on SQLite and PostgreSQL,
and migration 5 (the orders_by_time index) on a store written at migration 4."""

from __future__ import annotations

import random
import sqlite3

import psycopg
import pytest

from framework.store import open_store
from framework.store import postgres as pg_store
from framework.store import sqlite as sqlite_store
from tests.framework.test_store_durability import BINANCE, BYBIT, SUB, order
from tests.framework.old_store import store_at_migration

pytestmark = pytest.mark.timeout(60)
T0 = 1_700_000_000_000


def ids(states) -> list[tuple[str, int]]:
    return [(o.order_id, o.timestamp) for o in states]


async def test_orders_since_gives_the_states_of_the_given_keys_from_that_time_on(store):
    await store.upsert_orders([
        order("b-early", timestamp=T0 - 1),
        order("b-at", timestamp=T0),  # exactly since_ms: included
        order("b-late", timestamp=T0 + 5),
        order("y-1", BYBIT, timestamp=T0 + 2),
        order("sub-1", SUB, timestamp=T0 + 1),  # same exchange and market, another account
    ])
    assert ids(await store.orders_since([BINANCE, BYBIT], T0, 10)) == [
        ("b-at", T0), ("y-1", T0 + 2), ("b-late", T0 + 5)]
    assert ids(await store.orders_since([SUB], T0, 10)) == [("sub-1", T0 + 1)]
    assert ids(await store.orders_since([BINANCE, BINANCE], T0 + 1, 10)) == [("b-late", T0 + 5)]
    assert await store.orders_since([BYBIT], T0 + 3, 10) == []
    assert await store.orders_since([], T0, 10) == []


async def test_orders_since_gives_only_the_newest_state_of_an_order(store):
    placed = order("7", timestamp=T0)
    part = order("7", status="partially_filled", status_raw="PARTIALLY_FILLED", filled="0.4", timestamp=T0 + 10)
    await store.upsert_orders([placed])
    await store.upsert_orders([part])
    await store.upsert_orders([placed])  # the older state arriving late changes nothing
    got = await store.orders_since([BINANCE], T0, 10)
    assert got == [part]
    assert (got[0].status.value, got[0].filled, got[0].client_order_id) == ("partially_filled", part.filled, "s1-7")
    assert got[0].price == placed.price and got[0].amount == placed.amount
    assert await store.orders_since([BINANCE], T0 + 11, 10) == []


async def test_orders_since_keeps_the_limit_in_time_then_order_id_order_across_keys(store):
    states = [order(f"{key.exchange}-{i:02d}", key, timestamp=T0 + i // 3)  # three orders per millisecond
              for key in (BINANCE, BYBIT) for i in range(30)]
    states.append(order("zz-same-time", BYBIT, timestamp=T0))
    states.append(order("aa-same-time", BINANCE, timestamp=T0))
    random.Random(5).shuffle(states)
    await store.upsert_orders(states)
    expected = sorted(states, key=lambda o: (o.timestamp, o.order_id))

    assert await store.orders_since([BYBIT, BINANCE], T0, 100) == expected
    first = await store.orders_since([BINANCE, BYBIT], T0, 9)
    assert first == expected[:9]
    assert [o.order_id for o in first[:3]] == ["aa-same-time", "binance-00", "binance-01"]
    assert await store.orders_since([BINANCE, BYBIT], T0 + 4, 5) == [
        o for o in expected if o.timestamp >= T0 + 4][:5]
    assert await store.orders_since([BINANCE], T0, 4) == [o for o in expected if o.exchange == "binance"][:4]
    assert await store.orders_since([BINANCE, BYBIT], T0, 0) == []


async def test_sqlite_orders_since_reads_through_the_time_index_not_the_table(tmp_path):
    conn = sqlite3.connect(tmp_path / "plan.sqlite")
    for migration in sqlite_store.MIGRATIONS:
        for statement in migration.split(";"):
            if statement.strip():
                conn.execute(statement)
    for groups in (1, 3):
        params = (0,) * (5 * groups + (groups > 1))
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sqlite_store.orders_since_sql(groups), params)]
        searches = [step for step in plan if "orders" in step.split(" (")[0]]
        assert len(searches) == groups
        assert all(s.startswith("SEARCH orders USING INDEX orders_by_time") for s in searches), plan
        if groups == 1:  # one key's page comes off the index in order: nothing to sort
            assert not any("TEMP B-TREE" in step for step in plan), plan
    conn.close()


def _store_at_migration_4(store_url: str) -> None:
    with store_at_migration(store_url, 4) as (execute, p):
        execute("INSERT INTO orders VALUES ('binance', 'spot', 'default', 'BTC/USDT', 'BTCUSDT', 'old', "
                f"'s1-old', 'buy', 'limit', 'filled', 'FILLED', '1', '65000', '1', {p}, 3, NULL, 2)", (T0 + 1,))


def _versions_and_indexes(store_url: str) -> tuple[list[int], set[str]]:
    if store_url.startswith("sqlite"):
        conn = sqlite3.connect(sqlite_store._path_of(store_url))
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY version")]
        indexes = {n for (n,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'orders'")}
        conn.close()
        return versions, indexes
    base, schema = pg_store.split_schema(store_url)
    with psycopg.connect(base, autocommit=True) as conn:
        versions = [v for (v,) in conn.execute(f'SELECT version FROM "{schema}".schema_version ORDER BY version')]
        indexes = {n for (n,) in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = 'orders'", (schema,))}
    return versions, indexes


async def test_a_store_at_migration_4_gains_the_time_index_and_reads_its_old_orders(store_url):
    _store_at_migration_4(store_url)
    assert "orders_by_time" not in _versions_and_indexes(store_url)[1]
    store = open_store(store_url)
    await store.start()
    try:
        (old,) = await store.orders_since([BINANCE], T0, 10)
        assert (old.order_id, old.client_order_id, old.status.value, old.timestamp) == (
            "old", "s1-old", "filled", T0 + 1)
        assert old.filled == order("x", filled="1").filled
        await store.upsert_orders([order("new", timestamp=T0 + 2)])
        assert ids(await store.orders_since([BINANCE], T0, 10)) == [("old", T0 + 1), ("new", T0 + 2)]
    finally:
        await store.stop()
    store = open_store(store_url)  # a second start finds the latest version and migrates nothing
    await store.start()
    try:
        assert len(await store.orders_since([BINANCE], 0, 10)) == 2
    finally:
        await store.stop()
    versions, indexes = _versions_and_indexes(store_url)
    assert versions == list(range(1, len(sqlite_store.MIGRATIONS) + 1))  # 5 and every later one
    assert "orders_by_time" in indexes
