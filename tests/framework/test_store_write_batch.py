"""A writer's batch in one store transaction: fills, fees, order states and dead letters all kept or none,
and stored fills handed on only once the whole batch is committed."""

from __future__ import annotations

import asyncio

import pytest

from framework.errors import StoreError
from framework.sync_log import TradeSyncLogger
from framework.trade_sync import TradeSync
from tests.framework.test_store_durability import fill, order

pytestmark = pytest.mark.timeout(60)


async def test_one_batch_stores_fills_completes_a_fee_upserts_orders_and_keeps_dead_letters(store):
    inserted, completed = await store.write_batch(
        [fill("a", fee_cost=None, fee_currency=None), fill("b")],
        [fill("a", fee_cost="0.02", fee_currency="USDT")],  # the later copy of a, in the same batch
        [order("1", status="filled", status_raw="FILLED", filled="1")],
        [("binance_spot", '{"x":1}', "unreadable", 5), ("binance_spot", "[]", "missed", 6, "risk")],
    )
    assert inserted == [1, 2]
    assert completed == [fill("a").dedup_key]
    trades = {t.trade_id: t for t in await store.fetch_trades()}
    assert (trades["a"].fee_cost, trades["a"].fee_currency, trades["a"].seq) == (fill("a", fee_cost="0.02").fee_cost,
                                                                              "USDT", 1)
    assert [(o.order_id, o.status.value) for o in await store.fetch_orders()] == [("1", "filled")]
    letters = await store.fetch_dead_letters()
    assert [(d["raw"], d["error"], d["received_at"], d["consumer"]) for d in letters] == [
        ('{"x":1}', "unreadable", 5, None), ("[]", "missed", 6, "risk")]


async def test_a_duplicate_in_a_batch_gets_none_and_the_new_ones_increasing_seqs(store):
    await store.write_batch([fill("a")], [], [], [])
    inserted, completed = await store.write_batch([fill("b"), fill("a"), fill("c")], [], [], [])
    assert inserted[1] is None and inserted[0] < inserted[2]
    assert completed == []
    assert await store.write_batch([], [], [], []) == ([], [])


@pytest.mark.parametrize("poison", ["order timestamp", "dead letter time"])
async def test_a_value_refused_anywhere_in_a_batch_keeps_nothing_of_the_batch(store, poison):
    orders = [order("p", timestamp=2**63)] if poison == "order timestamp" else []
    dead = [("binance_spot", "{}", "e", 2**63)] if poison == "dead letter time" else []
    with pytest.raises(StoreError) as caught:
        await store.write_batch([fill("a"), fill("b")], [], orders, dead)
    assert caught.value.transient is False
    assert await store.fetch_trades() == [] and await store.fetch_orders() == []
    assert await store.fetch_dead_letters() == []
    inserted, _ = await store.write_batch([fill("a")], [], [], [])  # the store takes the next batch
    assert inserted != [None]


class _Recording:
    """The real store; remembers whether each write_batch had returned when fills were handed on."""

    def __init__(self, inner) -> None:
        self.inner, self.url = inner, inner.url
        self.writing = False
        self.handed_on_while_writing: list[str] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def write_batch(self, *batch):
        self.writing = True
        try:
            return await self.inner.write_batch(*batch)
        finally:
            self.writing = False


async def test_fills_of_a_batch_with_a_refused_order_are_handed_on_once_after_their_commit(store, tmp_path):
    recording = _Recording(store)
    sync = TradeSync(recording, TradeSyncLogger(tmp_path / "logs"))
    handed_on: list[tuple[str, int]] = []

    def on_stored(trades):
        if recording.writing:
            recording.handed_on_while_writing += [t.trade_id for t in trades]
        handed_on.extend((t.trade_id, t.seq) for t in trades)

    sync.on_stored = on_stored
    await sync.start()
    try:
        sync.accept(fill("a"))
        sync.record_order(order("p", timestamp=2**63))  # refused: the batch is bisected
        sync.accept(fill("b"))
        await asyncio.wait_for(sync.wait_stored(), 20)
    finally:
        await sync.stop()
    assert recording.handed_on_while_writing == []
    assert [trade_id for trade_id, _ in handed_on] == ["a", "b"]  # once each, not again as duplicates
    assert sorted(t.trade_id for t in await store.fetch_trades()) == ["a", "b"]
    assert [seq for _, seq in handed_on] == [t.seq for t in sorted(await store.fetch_trades(), key=lambda t: t.seq)]
    letters = await store.fetch_dead_letters()
    assert len(letters) == 1 and letters[0]["error"].startswith("store refused")
    assert sync.stats()["stored"] == 2 and sync.stats()["dead_letters"] == 1


class _StepByStep:
    """A store written before write_batch existed: the four calls only (what an in-memory fake may offer)."""

    def __init__(self, inner) -> None:
        self.inner, self.url = inner, inner.url

    def __getattr__(self, name):
        if name == "write_batch":
            raise AttributeError(name)
        return getattr(self.inner, name)


async def test_a_store_without_write_batch_is_written_step_by_step(store, tmp_path):
    sync = TradeSync(_StepByStep(store), TradeSyncLogger(tmp_path / "logs"))
    handed_on: list[str] = []
    sync.on_stored = lambda trades: handed_on.extend(t.trade_id for t in trades)
    await sync.start()
    try:
        sync.accept(fill("a", fee_cost=None, fee_currency=None))
        sync.accept(fill("a", fee_cost="0.03", fee_currency="USDT"))
        sync.record_order(order("1"))
        sync.record_dead_letter("binance_spot", "{}", "unreadable", consumer="risk")
        await asyncio.wait_for(sync.wait_stored(), 20)
    finally:
        await sync.stop()
    assert handed_on == ["a"]
    assert [(t.trade_id, t.fee_currency) for t in await store.fetch_trades()] == [("a", "USDT")]
    assert [o.order_id for o in await store.fetch_orders()] == ["1"]
    assert [(d["error"], d["consumer"]) for d in await store.fetch_dead_letters()] == [("unreadable", "risk")]
