"""The store layer under the durability promise: seq numbers, coverage marks, delivery positions, poisoned
values refused as StoreError only, start-up with the database down, concurrent first starts on one schema."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import textwrap
import time
import uuid
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from framework.errors import StoreError
from framework.events import ConnectionKey, OrderUpdate, Trade
from framework.store import open_store
from framework.store import postgres as pg_store
from tests.chaos.tcp_proxy import TcpProxy
from tests.conftest import make_schema_url
from tests.framework.old_store import store_at_migration

pytestmark = pytest.mark.timeout(90)
ROOT = Path(__file__).resolve().parents[2]
BINANCE = ConnectionKey(exchange="binance", market="spot")
BYBIT = ConnectionKey(exchange="bybit", market="future")
SUB = ConnectionKey(exchange="binance", market="spot", account="sub1")


def fill(trade_id: str, key: ConnectionKey = BINANCE, **fields) -> Trade:
    values = dict(
        exchange=key.exchange, market=key.market, account=key.account, symbol="BTC/USDT", symbol_raw="BTCUSDT",
        trade_id=trade_id, order_id="1", side="buy", amount="0.5", price="65000.1", cost="32500.05",
        fee_cost="0.01", fee_currency="USDT", timestamp=1_700_000_000_000,
    )
    values.update(fields)
    return Trade(**values)


def order(order_id: str, key: ConnectionKey = BINANCE, **fields) -> OrderUpdate:
    values = dict(
        exchange=key.exchange, market=key.market, account=key.account, symbol="BTC/USDT", symbol_raw="BTCUSDT",
        order_id=order_id, client_order_id=f"s1-{order_id}", side="buy", order_type="limit", status="new",
        status_raw="NEW", amount="1", price="65000", filled="0", timestamp=1_700_000_000_000,
    )
    values.update(fields)
    return OrderUpdate(**values)


# --- seq ---------------------------------------------------------------------------------------------------


async def test_seq_increases_in_the_order_given_and_a_duplicate_gets_none(store):
    ids = [f"t{i}" for i in range(200)]
    random.Random(7).shuffle(ids)  # insertion order unrelated to the key order
    first = await store.insert_trades([fill(i) for i in ids])
    assert None not in first and first == sorted(first) and len(set(first)) == 200 and first[0] >= 1
    assert await store.max_seq() == first[-1]

    again = [fill("n1"), fill(ids[5]), fill("n2"), fill(ids[0]), fill("n3")]
    second = await store.insert_trades(again)
    assert [s is None for s in second] == [False, True, False, True, False]
    new = [s for s in second if s is not None]
    assert new == sorted(new) and new[0] > first[-1]
    assert await store.max_seq() == new[-1]
    assert await store.insert_trades([]) == []
    stored = {t.trade_id: t.seq for t in await store.fetch_trades()}
    assert [stored[i] for i in ids] == first and stored["n2"] == new[1]


async def test_a_reader_following_seq_while_two_writers_commit_misses_no_fill(store_url):
    """Seqs become visible in increasing order: a reader that moves its position to the highest seq it has
    seen (as delivery does) never skips a fill that another writer commits later with a smaller seq."""
    writers = [open_store(store_url), open_store(store_url)]
    reader = open_store(store_url)
    for s in (*writers, reader):
        await s.start()
    try:
        async def write(s, name):
            for b in range(40):
                await s.insert_trades([fill(f"{name}-{b}-{i}") for i in range(10)])
                await asyncio.sleep(0)

        seen: list[int] = []
        position = 0
        done = asyncio.gather(write(writers[0], "x"), write(writers[1], "y"))
        while True:
            finished = done.done()
            rows = await reader.trades_after([BINANCE], position, 1000)
            seen += [s for s, _ in rows]
            position = rows[-1][0] if rows else position
            if finished and not rows:
                break
            await asyncio.sleep(0)
        await asyncio.wait_for(done, 30)
        everything = [s for s, _ in await reader.trades_after([BINANCE], 0, 10_000)]
        assert len(everything) == 800 and seen == everything
    finally:
        for s in (*writers, reader):
            await s.stop()


async def test_max_seq_of_an_empty_store_is_zero(store):
    assert await store.max_seq() == 0
    assert await store.trades_after([BINANCE], 0, 10) == []


async def test_trades_after_gives_the_keys_fills_by_seq_with_their_seq(store):
    seqs = await store.insert_trades([fill("a"), fill("b", BYBIT), fill("c", SUB), fill("d"), fill("e", BYBIT)])
    got = await store.trades_after([BINANCE, BYBIT], 0, 100)
    assert [(s, t.trade_id) for s, t in got] == [(seqs[0], "a"), (seqs[1], "b"), (seqs[3], "d"), (seqs[4], "e")]
    assert all(t.seq == s for s, t in got)
    assert got[0][1] == fill("a") and got[0][1].amount.as_tuple() == Decimal("0.5").as_tuple()
    assert [t.trade_id for _, t in await store.trades_after([BINANCE, BYBIT], seqs[1], 2)] == ["d", "e"]
    assert [t.trade_id for _, t in await store.trades_after([SUB], 0, 100)] == ["c"]
    assert await store.trades_after([], 0, 100) == []
    assert await store.trades_after([BINANCE], seqs[4], 100) == []


async def test_concurrent_writers_take_distinct_increasing_seqs(store_url):
    """Two store objects (two processes' worth of connections) writing at once: every seq distinct, each
    caller's seqs increasing, and together they are exactly the stored rows."""
    stores = [open_store(store_url), open_store(store_url)]
    for s in stores:
        await s.start()
    try:
        async def writer(s, name):
            out = []
            for b in range(20):
                out += await s.insert_trades([fill(f"{name}-{b}-{i}") for i in range(25)])
            return out

        results = await asyncio.wait_for(asyncio.gather(writer(stores[0], "x"), writer(stores[1], "y")), 60)
        for seqs in results:
            assert None not in seqs and seqs == sorted(seqs)
        every = results[0] + results[1]
        assert len(set(every)) == 1000
        stored = await stores[0].trades_after([BINANCE], 0, 5000)
        assert sorted(every) == [s for s, _ in stored]
    finally:
        for s in stores:
            await s.stop()


# --- migration 3 on a database written by the previous version ---------------------------------------------

OLD_ROWS = [  # (trade_id, timestamp, stored_at): stored in an order unlike their timestamps
    ("late-venue-time", 3_000, 1_000),
    ("early-venue-time", 1_000, 2_000),
    ("same-stored-b", 5_000, 3_000),
    ("same-stored-a", 4_000, 3_000),
]


def _old_trade_row(trade_id: str, timestamp: int) -> tuple:
    return ("binance", "spot", "default", "BTC/USDT", "BTCUSDT", trade_id, "1", None, "buy", "1", "2", "2",
            None, None, None, timestamp, timestamp, "websocket", None)


async def test_migration_numbers_existing_rows_in_the_order_they_were_stored(store_url):
    cols = "exchange, market, account, symbol, symbol_raw, trade_id, order_id, client_order_id, side, amount, " \
           "price, cost, fee_cost, fee_currency, is_maker, timestamp, received_at, source, raw, stored_at"
    with store_at_migration(store_url, 2) as (execute, p):
        stored_at = p if p == "?" else f"to_timestamp({p})"  # an int in SQLite, a timestamptz in PostgreSQL
        for tid, ts, stored in OLD_ROWS:
            execute(f"INSERT INTO trades ({cols}) VALUES ({', '.join([p] * 19)}, {stored_at})",
                    (*_old_trade_row(tid, ts), stored))

    store = open_store(store_url)
    await store.start()
    try:
        got = await store.trades_after([BINANCE], 0, 10)
        assert [(s, t.trade_id) for s, t in got] == [
            (1, "late-venue-time"), (2, "early-venue-time"), (3, "same-stored-a"), (4, "same-stored-b"),
        ]
        assert await store.max_seq() == 4
        assert await store.insert_trades([fill("new"), fill("same-stored-a", symbol="BTC/USDT")]) == [5, None]
        assert await store.get_coverage(BINANCE) == {} and await store.get_delivery("s1") is None
    finally:
        await store.stop()
    store = open_store(store_url)  # a second start finds version 3 and migrates nothing
    await store.start()
    try:
        assert await store.max_seq() == 5
    finally:
        await store.stop()


# --- coverage, deliveries, owners, fees --------------------------------------------------------------------


async def test_coverage_mark_only_moves_forward_per_symbol_and_key(store):
    assert await store.get_coverage(BINANCE) == {}
    await store.advance_coverage(BINANCE, {"BTC/USDT": 2_000, "*": 1_500})
    await store.advance_coverage(BINANCE, {"BTC/USDT": 1_000, "ETH/USDT": 500, "*": 1_600})
    await store.advance_coverage(SUB, {"BTC/USDT": 9_999})
    await store.advance_coverage(BINANCE, {})
    assert await store.get_coverage(BINANCE) == {"BTC/USDT": 2_000, "ETH/USDT": 500, "*": 1_600}
    assert await store.get_coverage(SUB) == {"BTC/USDT": 9_999}
    assert await store.get_coverage(BYBIT) == {}


async def test_delivery_position_never_moves_back_while_running_and_prefix_follow(store):
    assert await store.get_delivery("s1") is None
    await store.set_delivery("s1", 10, True, "s1")
    assert await store.get_delivery("s1") == (10, True)
    await store.set_delivery("s1", 7, False, "s1-new")
    assert await store.get_delivery("s1") == (10, False)
    await store.set_delivery("s1", 12, True, None)
    await store.set_delivery("s2", 0, False, "two")
    assert await store.get_delivery("s1") == (12, True)
    assert await store.get_delivery("s2") == (0, False)
    assert await store.delivery_prefixes() == {"s2": "two"}  # s1's prefix was last written as None
    await store.set_delivery("s1", 12, False, "s1")
    assert await store.delivery_prefixes() == {"s1": "s1", "s2": "two"}


async def test_client_order_ids_come_from_the_orders_table_of_that_key(store):
    await store.upsert_orders([order("1"), order("2", client_order_id=None), order("3", SUB)])
    got = await store.client_order_ids(BINANCE, ["1", "2", "3", "404"])
    assert got == {"1": "s1-1"}
    assert await store.client_order_ids(SUB, ["3"]) == {"3": "s1-3"}
    assert await store.client_order_ids(BINANCE, []) == {}
    many = [f"m{i}" for i in range(1200)]  # more ids than one query asks for at once
    await store.upsert_orders([order(i, client_order_id=f"c{i}") for i in many])
    assert len(await store.client_order_ids(BINANCE, many)) == 1200


async def test_fee_completion_returns_the_keys_it_completed_and_fee_missing_keys_lists_the_rest(store):
    no_fee = dict(fee_cost=None, fee_currency=None)
    await store.insert_trades([
        fill("a", timestamp=1_000, **no_fee), fill("b", timestamp=2_000, **no_fee), fill("c", timestamp=3_000),
        fill("d", timestamp=500, **no_fee), fill("e", SUB, timestamp=2_500, **no_fee),
    ])
    assert await store.fee_missing_keys(BINANCE, 900, 10) == [fill("b").dedup_key, fill("a").dedup_key]
    assert await store.fee_missing_keys(BINANCE, 0, 1) == [fill("b").dedup_key]

    copies = [fill("a", fee_cost="0.25", fee_currency="BNB"), fill("c", fee_cost="9", fee_currency="USDT"),
              fill("zz", fee_cost="1", fee_currency="USDT"), fill("b", **no_fee)]
    assert await store.complete_fees(copies) == [fill("a").dedup_key]  # c had one, zz is unknown, b none given
    assert await store.complete_fees([fill("a", fee_cost="7", fee_currency="X")]) == []  # never overwritten
    assert await store.complete_fees([]) == []
    stored = {t.trade_id: t for t in await store.fetch_trades()}
    assert (stored["a"].fee_cost, stored["a"].fee_currency) == (Decimal("0.25"), "BNB")
    assert stored["c"].fee_cost == Decimal("0.01")
    assert await store.fee_missing_keys(BINANCE, 0, 10) == [fill("b").dedup_key, fill("d").dedup_key]
    assert await store.fee_missing_keys(SUB, 0, 10) == [fill("e", SUB).dedup_key]


# --- poisoned values: StoreError(transient=False), nothing else, and the store goes on ---------------------

def _circular() -> list:
    frame: list = []
    frame.append(frame)
    return frame


HUGE = Decimal("1e1000000")
NUL = "bad\x00text"
POISONS = {
    # name: (call on the store, whether SQLite can take the value: then it is stored, not refused)
    "trade timestamp 2**63": (lambda s: s.insert_trades([fill("p", timestamp=2**63)]), False),
    "trade timestamp -2**63-1": (lambda s: s.insert_trades([fill("p", timestamp=-(2**63) - 1)]), False),
    "trade received_at -2**70": (lambda s: s.insert_trades([fill("ok1"), fill("p", received_at=-(2**70))]), False),
    "trade amount 1e1000000": (lambda s: s.insert_trades([fill("p", amount=HUGE)]), True),
    "trade symbol with NUL": (lambda s: s.insert_trades([fill("p", symbol_raw=NUL)]), True),
    "order timestamp 2**63": (lambda s: s.upsert_orders([order("p", timestamp=2**63)]), False),
    "order filled 1e1000000": (lambda s: s.upsert_orders([order("p", filled=HUGE)]), True),
    "order client id with NUL": (lambda s: s.upsert_orders([order("p", client_order_id=NUL)]), True),
    "fee 1e1000000": (lambda s: s.complete_fees([fill("nofee", fee_cost=HUGE)]), True),
    "fee currency with NUL": (lambda s: s.complete_fees([fill("nofee", fee_currency=NUL)]), True),
    "dead letter received_at 2**63": (lambda s: s.add_dead_letter("binance_spot", "{}", "e", 2**63), False),
    "dead letter raw with NUL": (lambda s: s.add_dead_letter("binance_spot", NUL, "e", 1), True),
    "dead letter raw that is not JSON": (lambda s: s.add_dead_letter("binance_spot", _circular(), "e", 1), False),
    "coverage mark 2**64": (lambda s: s.advance_coverage(BINANCE, {"BTC/USDT": 2**64}), False),
    "coverage mark not a number": (lambda s: s.advance_coverage(BINANCE, {"BTC/USDT": "soon"}), False),
    "delivery position 2**63": (lambda s: s.set_delivery("s1", 2**63, True, "s1"), False),
}


@pytest.mark.parametrize("poison", list(POISONS))
async def test_a_value_the_database_cannot_take_raises_only_a_non_transient_store_error(store, store_url, poison):
    call, sqlite_takes_it = POISONS[poison]
    await store.insert_trades([fill("nofee", fee_cost=None, fee_currency=None)])
    if store_url.startswith("sqlite") and sqlite_takes_it:
        await call(store)  # SQLite keeps decimals as text and text with NUL as it is: no refusal
    else:
        with pytest.raises(StoreError) as caught:
            await call(store)
        assert caught.value.transient is False
        message = str(caught.value)
        assert "\n" not in message and len(message) < 500
    # Nothing of a refused call was kept, and the store takes the next call.
    assert await store.insert_trades([fill("after")]) != [None]
    stored = {t.trade_id for t in await store.fetch_trades()}
    assert "after" in stored and ("ok1" not in stored)  # a refused batch is not half stored


async def test_sqlite_keeps_a_huge_decimal_exactly(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'huge.sqlite'}")
    await store.start()
    try:
        await store.insert_trades([fill("h", amount=HUGE)])
        assert (await store.fetch_trades())[0].amount == HUGE
    finally:
        await store.stop()


# --- PostgreSQL start-up: down at start, concurrent first starts -------------------------------------------


def _through(url: str, port: int, password: str | None = None) -> str:
    parts = urlsplit(url)
    user = parts.username or "postgres"
    auth = f"{user}:{password}" if password else user
    return urlunsplit(parts._replace(netloc=f"{auth}@127.0.0.1:{port}"))


@pytest.mark.postgres
async def test_start_with_the_database_down_fails_fast_and_a_later_start_succeeds(pg_url):
    target = urlsplit(pg_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    try:
        url = _through(pg_url, proxy.port, password="s3cret-pw")
        store = open_store(url)
        proxy.cut()
        began = time.monotonic()
        with pytest.raises(StoreError) as caught:
            await asyncio.wait_for(store.start(), 15)
        assert time.monotonic() - began < pg_store.START_TIMEOUT + 1
        message = str(caught.value)
        assert caught.value.transient is True
        assert "\n" not in message and "s3cret-pw" not in message and f"127.0.0.1:{proxy.port}" in message

        proxy.restore()
        await asyncio.wait_for(store.start(), 15)  # the same object, once the database is back
        try:
            assert await store.insert_trades([fill("a")]) == [1]
        finally:
            await store.stop()
    finally:
        await proxy.stop()


@pytest.mark.postgres
async def test_start_against_a_server_that_never_answers_gives_up_within_the_start_timeout(pg_url):
    silent: list[asyncio.StreamWriter] = []

    async def accept_and_say_nothing(reader, writer):
        silent.append(writer)

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        store = open_store(_through(pg_url, port))
        began = time.monotonic()
        with pytest.raises(StoreError) as caught:
            await asyncio.wait_for(store.start(), 20)
        elapsed = time.monotonic() - began
        assert caught.value.transient is True and "\n" not in str(caught.value)
        assert elapsed < pg_store.START_TIMEOUT + 1.5, elapsed
    finally:
        for writer in silent:
            writer.transport.abort()
        server.close()
        await server.wait_closed()


CHILD = textwrap.dedent("""
    import asyncio, sys, time
    sys.path.insert(0, {root!r})
    from framework.store import open_store

    async def main():
        store = open_store({url!r})
        time.sleep(max(0.0, {at!r} - time.time()))  # every process starts at the same moment
        await store.start()
        await store.insert_trades([])
        await store.stop()

    asyncio.run(main())
""")


@pytest.mark.postgres
@pytest.mark.slow
def test_eight_processes_starting_at_once_on_a_fresh_schema_all_succeed(pg_server):
    schema = f"t_{uuid.uuid4().hex[:12]}"
    url = make_schema_url(pg_server, schema)
    at = time.time() + 3.0
    script = CHILD.format(root=str(ROOT), url=url, at=at)
    try:
        children = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True) for _ in range(8)]
        results = [(c.wait(timeout=60), c.stderr.read().strip().splitlines()[-1:]) for c in children]
        assert [rc for rc, _ in results] == [0] * 8, results
        with psycopg.connect(pg_server, autocommit=True) as conn:
            versions = conn.execute(f'SELECT version FROM "{schema}".schema_version ORDER BY version').fetchall()
        assert [v for (v,) in versions] == list(range(1, len(pg_store.MIGRATIONS) + 1))
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
