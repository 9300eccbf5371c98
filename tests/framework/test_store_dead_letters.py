"""Dead letters per consumer in both stores: events kept exactly, replay requests marked by one process and
seen by another, oldest first, and a store created at migration 3 migrated with its letters kept."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import attrs
import psycopg
import pytest

from framework.events import ConnectionKey, OrderUpdate, Trade
from framework.spool import decode, encode
from framework.store import open_store
from framework.store import postgres as pg_store
from framework.store import sqlite as sqlite_store
from tests.framework.old_store import store_at_migration

pytestmark = pytest.mark.timeout(60)
BINANCE = ConnectionKey(exchange="binance", market="spot")


def fill(trade_id: str, **fields) -> Trade:
    values = dict(
        exchange="binance", market="spot", account="sub1", symbol="BTC/USDT", symbol_raw="BTCUSDT",
        trade_id=trade_id, order_id="77", client_order_id="s1-77", side="sell", amount="0.00100000",
        price="65000.10", cost="65.00010000", fee_cost="0.000000010", fee_currency="BTC", is_maker=True,
        timestamp=1_700_000_000_123, received_at=1_700_000_000_456, raw={"p": "65000.10"}, seq=41,
    )
    values.update(fields)
    return Trade(**values)


def order(order_id: str, **fields) -> OrderUpdate:
    values = dict(
        exchange="bybit", market="future", account="default", symbol="BTC/USDT:USDT", symbol_raw="BTCUSDT",
        order_id=order_id, client_order_id=None, side="buy", order_type="limit", status="partially_filled",
        status_raw="PartiallyFilled", amount="2.000", price=None, filled="0.5000", timestamp=1_700_000_000_000,
        received_at=1_700_000_000_001,
    )
    values.update(fields)
    return OrderUpdate(**values)


def fields_as_text(event) -> dict[str, str]:
    """Every field but `raw` (audit text once encoded) as type and text: Decimal('0.50') != Decimal('0.5')."""
    return {a.name: f"{type(v).__name__}:{v}" for a in attrs.fields(type(event)) if a.name != "raw"
            for v in [getattr(event, a.name)]}


def ident(letter: dict) -> str:
    """Which event a letter holds: a fill's trade id, an order update's order id."""
    event = decode(letter["raw"])[1]
    return event.trade_id if isinstance(event, Trade) else event.order_id


async def missed(store, consumer: str | None, kind: str, event, error: str = "breaker open") -> None:
    await store.add_dead_letter(str(event.key), encode(kind, event), error, event.received_at, consumer)


async def test_a_consumer_letter_gives_back_its_fill_and_order_update_exactly(store):
    trade, update = fill("t1"), order("o1")
    await missed(store, "risk", "trade", trade)
    await missed(store, "risk", "order", update)

    letters = await store.fetch_dead_letters(consumer="risk")
    assert [(letter["consumer"], letter["connection_key"], letter["error"]) for letter in letters] == [
        ("risk", "binance_spot@sub1", "breaker open"), ("risk", "bybit_future", "breaker open")]
    (kind1, got_trade), (kind2, got_update) = [decode(letter["raw"]) for letter in letters]
    assert (kind1, kind2) == ("trade", "order")
    assert fields_as_text(got_trade) == fields_as_text(trade)
    assert got_trade.seq == 41 and got_trade.amount == Decimal("0.00100000") and str(got_trade.amount) == "0.00100000"
    assert fields_as_text(got_update) == fields_as_text(update)
    assert got_update.price is None and str(got_update.filled) == "0.5000"


async def test_a_frame_letter_keeps_no_consumer_and_positional_calls_still_work(store):
    await store.add_dead_letter("binance_spot", '{"e": "executionReport"}', "unknown status", 5)
    (letter,) = await store.fetch_dead_letters()
    assert letter["consumer"] is None and letter["replay_requested_at"] is None
    assert letter["raw"] == '{"e": "executionReport"}' and letter["received_at"] == 5
    assert await store.fetch_dead_letters(consumer="risk") == []
    assert await store.request_replay("risk") == 0


async def test_request_replay_marks_only_that_consumers_letters_not_yet_replayed(store):
    await missed(store, "risk", "trade", fill("a"))
    await missed(store, "dashboard", "trade", fill("a"))
    await missed(store, None, "trade", fill("refused"))
    await missed(store, "risk", "trade", fill("b"))
    await missed(store, "risk", "order", order("c"))
    done = (await store.fetch_dead_letters(consumer="risk"))[1]
    await store.mark_dead_letter(done["id"], 1_700_000_009_000, "handed to risk")

    assert await store.requested_letters(["risk", "dashboard"], 10) == []
    assert await store.request_replay("risk") == 2
    requested = await store.requested_letters(["risk", "dashboard"], 10)
    assert [(letter["consumer"], ident(letter)) for letter in requested] == [("risk", "a"), ("risk", "c")]
    assert all(isinstance(letter["replay_requested_at"], int) for letter in requested)
    others = [letter for letter in await store.fetch_dead_letters() if letter["consumer"] != "risk"]
    assert [letter["replay_requested_at"] for letter in others] == [None, None]
    assert len(await store.fetch_dead_letters(consumer="risk")) == 3
    assert len(await store.fetch_dead_letters(pending_only=True, consumer="risk")) == 2


async def test_requesting_again_keeps_the_first_request_time_and_counts_what_is_still_pending(store):
    for trade_id in ("a", "b", "c"):
        await missed(store, "risk", "trade", fill(trade_id))
    assert await store.request_replay("risk") == 3
    first = {letter["id"]: letter["replay_requested_at"] for letter in await store.requested_letters(["risk"], 10)}
    handed = min(first)
    await store.mark_dead_letter(handed, 1_700_000_009_000, "handed to risk")
    await missed(store, "risk", "trade", fill("d"))  # missed after the request: not requested yet

    assert [ident(letter) for letter in await store.requested_letters(["risk"], 10)] == ["b", "c"]
    assert await store.request_replay("risk") == 3
    again = await store.requested_letters(["risk"], 10)
    assert [ident(letter) for letter in again] == ["b", "c", "d"]
    assert {letter["id"]: letter["replay_requested_at"] for letter in again[:2]} == {
        i: t for i, t in first.items() if i != handed}


async def test_requested_letters_come_oldest_first_up_to_the_limit_across_consumers(store):
    for i in range(6):
        await missed(store, "risk" if i % 2 else "dashboard", "trade", fill(f"t{i}"))
    await store.request_replay("risk")
    await store.request_replay("dashboard")
    got = await store.requested_letters(["risk", "dashboard", "risk"], 4)
    assert [ident(letter) for letter in got] == ["t0", "t1", "t2", "t3"]
    assert await store.requested_letters([], 4) == [] and await store.requested_letters(["risk"], 0) == []


async def test_a_replay_that_fails_keeps_the_letter_pending_and_requested(store):
    await missed(store, "risk", "trade", fill("a"))
    await store.request_replay("risk")
    (letter,) = await store.requested_letters(["risk"], 10)
    await store.mark_dead_letter(letter["id"], None, "risk raised ValueError")
    (again,) = await store.requested_letters(["risk"], 10)
    assert again["id"] == letter["id"] and again["replay_result"] == "risk raised ValueError"


async def test_a_request_made_through_another_store_is_seen_by_the_running_one(store, store_url):
    await missed(store, "risk", "trade", fill("a"))
    operator = open_store(store_url)  # the script, from another shell
    await operator.start()
    try:
        assert await operator.request_replay("risk") == 1
    finally:
        await operator.stop()
    (letter,) = await store.requested_letters(["risk"], 10)
    assert ident(letter) == "a"


async def test_a_store_at_migration_3_gains_consumer_letters_and_keeps_its_own(store_url):
    with store_at_migration(store_url, 3) as (execute, _):
        execute("INSERT INTO dead_letters (connection_key, raw, error, received_at) "
                "VALUES ('binance_spot', '{\"x\":1}', 'old', 7)")

    store = open_store(store_url)
    await store.start()
    try:
        (old,) = await store.fetch_dead_letters()
        assert (old["connection_key"], old["raw"], old["error"], old["received_at"]) == (
            "binance_spot", '{"x":1}', "old", 7)
        assert old["consumer"] is None and old["replay_requested_at"] is None
        await missed(store, "risk", "trade", fill("new"))
        assert await store.request_replay("risk") == 1
        (letter,) = await store.requested_letters(["risk"], 10)
        assert letter["id"] > old["id"] and ident(letter) == "new"
    finally:
        await store.stop()
    store = open_store(store_url)  # a second start finds version 4 and migrates nothing
    await store.start()
    try:
        assert len(await store.fetch_dead_letters()) == 2
    finally:
        await store.stop()
    if store_url.startswith("sqlite"):
        conn = sqlite3.connect(sqlite_store._path_of(store_url))
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY version")]
        conn.close()
    else:
        base, schema = pg_store.split_schema(store_url)
        with psycopg.connect(base, autocommit=True) as conn:
            versions = [v for (v,) in conn.execute(f'SELECT version FROM "{schema}".schema_version ORDER BY version')]
    assert versions == list(range(1, len(sqlite_store.MIGRATIONS) + 1))
