"""A backfilled fill reaches its owner: venues whose REST history has no client order id (Binance, Bitget,
MEXC) give it through the order query, or the process's own knowledge (`known_client_ids`); a fill whose
order nobody knows is marked `owner_unknown` and keeps no client id."""

from __future__ import annotations

import asyncio

import attrs
import pytest

from exchanges import get_exchange
from exchanges.simulator import Simulator
from framework.backfill import Backfiller
from framework.retry import rest_call_policy

FAST_REST = rest_call_policy(initial=0.01, maximum=0.02, jitter=0.01, attempts=3)
PAIRS = [
    ("binance", "spot", "BTC/USDT"), ("binance", "future", "BTC/USDT:USDT"),
    ("bitget", "spot", "BTC/USDT"), ("bitget", "future", "BTC/USDT:USDT"),
    ("mexc", "spot", "BTC/USDT"), ("mexc", "future", "BTC/USDT:USDT"),
]
pairs = [pytest.param(*p, id=f"{p[0]}_{p[1]}") for p in PAIRS]
# MEXC spot's myTrades rows carry `clientOrderId` (on the simulator, as in MEXC's docs): the row names the owner.
no_ids_in_history = [p for p in pairs if p.id != "mexc_spot"]
pytestmark = pytest.mark.timeout(60)


def _backfiller(sim: Simulator, exchange: str, market: str) -> Backfiller:
    spec = get_exchange(exchange)
    key = sim.connector(exchange, market).key
    return Backfiller(key, spec.backfill, sim.credentials_for(exchange), spec.stream.endpoints(key.market),
                      sim.endpoints(exchange, market), retry_policy=FAST_REST)


async def _two_owners(sim: Simulator, exchange: str, market: str, symbol: str):
    """s1's order filled in two parts, then s2's order: the history names neither (on these venues)."""
    s1, s1_fills = await sim.fill(exchange, market, symbol, "buy", "0.010", "65000", client_order_id="s1-17", parts=2)
    s2, s2_fills = await sim.fill(exchange, market, symbol, "sell", "0.004", "65010", client_order_id="s2-3")
    return s1, s2, s1_fills + s2_fills


@pytest.mark.parametrize("exchange, market, symbol", pairs)
async def test_backfilled_fill_gets_its_owner_from_the_venues_order_query(exchange, market, symbol):
    async with Simulator(exchanges=[exchange], seed=3) as sim:
        s1, s2, fills = await _two_owners(sim, exchange, market, symbol)
        backfiller = _backfiller(sim, exchange, market)  # no known_client_ids: the orders table is empty
        try:
            trades = await asyncio.wait_for(backfiller.fetch(symbol, fills[0].time - 1000), 30)
        finally:
            await backfiller.close()
    owners = {t.trade_id: (t.client_order_id, t.owner_unknown) for t in trades}
    assert owners == {f.trade_id: ("s1-17" if f.order_id == s1.order_id else "s2-3", False) for f in fills}


@pytest.mark.parametrize("exchange, market, symbol", no_ids_in_history)
async def test_backfilled_fill_gets_its_owner_from_known_client_ids_without_asking_the_venue(
        exchange, market, symbol):
    async with Simulator(exchanges=[exchange], seed=4) as sim:
        s1, s2, fills = await _two_owners(sim, exchange, market, symbol)
        asked: list[list[str]] = []

        async def known(order_ids: list[str]) -> dict[str, str]:
            asked.append(sorted(order_ids))
            return {s1.order_id: "s1-from-orders-table"}  # s2's order is not known to the process

        backfiller = _backfiller(sim, exchange, market)
        backfiller.known_client_ids = known
        try:
            trades = await asyncio.wait_for(backfiller.fetch(symbol, fills[0].time - 1000), 30)
        finally:
            await backfiller.close()
    owners = {t.trade_id: t.client_order_id for t in trades}
    # The process's answer wins (the venue would say "s1-17"); the venue answers for the order it did not know.
    assert owners == {f.trade_id: "s1-from-orders-table" if f.order_id == s1.order_id else "s2-3" for f in fills}
    assert asked == [sorted([s1.order_id, s2.order_id])]


@pytest.mark.parametrize("exchange, market, symbol", no_ids_in_history)
async def test_fill_of_an_order_the_venue_does_not_know_is_marked_owner_unknown(exchange, market, symbol):
    async with Simulator(exchanges=[exchange], seed=5) as sim:
        s1, s2, fills = await _two_owners(sim, exchange, market, symbol)
        sim.venue(exchange).forgotten_orders.add(s2.order_id)  # gone from the venue's order records
        backfiller = _backfiller(sim, exchange, market)
        try:
            trades = await asyncio.wait_for(backfiller.fetch(symbol, fills[0].time - 1000), 30)
        finally:
            await backfiller.close()
    by_id = {t.trade_id: t for t in trades}
    for fill in fills:
        trade = by_id[fill.trade_id]
        if fill.order_id == s2.order_id:
            assert (trade.client_order_id, trade.owner_unknown) == (None, True)
        else:
            assert (trade.client_order_id, trade.owner_unknown) == ("s1-17", False)


@pytest.mark.parametrize("exchange, market, symbol", pairs)
async def test_a_failing_order_query_leaves_the_owner_unknown_and_is_asked_again_later(exchange, market, symbol):
    """Also the order query of every pair, MEXC spot's included: `with_owners` on fills that name no owner."""
    async with Simulator(exchanges=[exchange], seed=6) as sim:
        s1, _, fills = await _two_owners(sim, exchange, market, symbol)
        backfiller = _backfiller(sim, exchange, market)
        try:
            trades = await asyncio.wait_for(backfiller.fetch(symbol, fills[0].time - 1000), 30)
            bare = [attrs.evolve(t, client_order_id=None) for t in trades]
            fresh = _backfiller(sim, exchange, market)  # nothing cached, no ccxt client yet
            try:
                sim.fail_rest(exchange, market, [500] * 6)  # every attempt (3) at both orders fails
                failed = await asyncio.wait_for(fresh.with_owners(bare), 30)
                assert not sim.faults.rest_failures[(exchange, fresh.key.market)]
                later = await asyncio.wait_for(fresh.with_owners(bare), 30)
            finally:
                await fresh.close()
        finally:
            await backfiller.close()
    assert {(t.client_order_id, t.owner_unknown) for t in failed} == {(None, True)}
    assert {t.trade_id: t.client_order_id for t in later} == {t.trade_id: t.client_order_id for t in trades}
    assert not any(t.owner_unknown for t in later)
