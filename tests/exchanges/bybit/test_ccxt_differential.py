"""Our Bybit fills against ccxt's own parser on the same execution frames (offline, markets given by hand).

ccxt.pro.bybit routes v5 `execution` / `execution.fast` rows through `handle_my_trades` → `parse_trade`
(its `parse_ws_trade` only reads public trades and the retired spot `ticketInfo` shape), so the frame goes
through `handle_my_trades` exactly as a socket would deliver it, with a stand-in client that records what
ccxt resolves. ccxt's numbers are kept as strings (`number = str`) and compared as Decimals.
Generated rows use the execTypes both sides count as fills (ccxt's default filter is Trade, AdlTrade,
BustTrade, Settle; ours is documented in normalize.py).
"""

from __future__ import annotations

from decimal import Decimal

import ccxt.pro as ccxtpro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchanges.bybit.normalize import normalize
from framework.events import Market
from tests.exchanges.bybit.test_properties import BASES, QUOTES, execution_rows
from tests.exchanges.conftest import load_samples

SHARED_FILL_EXEC_TYPES = ["Trade", "AdlTrade", "BustTrade"]
DATED = [  # (id, base, quote, expiry suffix) of linear dated futures
    ("BTCUSDT-21FEB25", "BTC", "USDT", "-250221"),
    ("BTC-24MAR23", "BTC", "USDC", "-230324"),
]


def _market(market_id: str, base: str, quote: str, kind: str, suffix: str = "") -> dict:
    spot = kind == "spot"
    return {
        "id": market_id, "symbol": f"{base}/{quote}" if spot else f"{base}/{quote}:{quote}{suffix}",
        "base": base, "quote": quote, "settle": None if spot else quote,
        "baseId": base, "quoteId": quote, "settleId": None if spot else quote,
        "type": kind, "spot": spot, "swap": kind == "swap", "future": kind == "future", "option": False,
        "contract": not spot, "linear": None if spot else True, "inverse": None if spot else False,
        "contractSize": None if spot else 1, "active": True, "precision": {}, "limits": {},
    }


class _RecordingClient:
    """Stands in for ccxt's socket client: keeps what `handle_my_trades` resolves."""

    def __init__(self) -> None:
        self.resolved: dict[str, list] = {}

    def resolve(self, result, message_hash: str) -> None:
        self.resolved[message_hash] = list(result)


@pytest.fixture(scope="module")
def ccxt_bybit():
    exchange = ccxtpro.bybit()
    exchange.number = str
    bases = [*BASES, "ICP"]  # ICP: the docs' execution.fast sample
    markets = [_market(b + q, b, q, kind) for b in bases for q in QUOTES for kind in ("spot", "swap")]
    markets += [_market(i, b, q, "future", s) for i, b, q, s in DATED]
    markets.append(_market("ETHPERP", "ETH", "USDC", "swap"))
    exchange.set_markets(markets)
    return exchange


def _ccxt_trades(exchange, frame: dict) -> dict[str, dict]:
    exchange.myTrades = None
    client = _RecordingClient()
    exchange.handle_my_trades(client, frame)
    return {t["id"]: t for t in client.resolved.get("myTrades", [])}


def _shared_fills(rows: list[dict], data) -> list[dict]:
    for row in rows:
        row["execType"] = data.draw(st.sampled_from(SHARED_FILL_EXEC_TYPES))
    return rows


def _assert_agree(frame: dict, market: Market, exchange) -> None:
    ours = normalize(frame, market)
    theirs = _ccxt_trades(exchange, frame)
    assert len(ours) == len(theirs) == len(frame["data"])
    for trade in ours:
        ccxt_trade = theirs[trade.trade_id]
        fee = ccxt_trade["fee"]
        assert (trade.order_id, trade.symbol, trade.side.value, trade.timestamp) == (
            ccxt_trade["order"], ccxt_trade["symbol"], ccxt_trade["side"], ccxt_trade["timestamp"])
        assert (trade.amount, trade.price, trade.cost) == (
            Decimal(ccxt_trade["amount"]), Decimal(ccxt_trade["price"]), Decimal(ccxt_trade["cost"]))
        assert trade.is_maker is (ccxt_trade["takerOrMaker"] == "maker")
        if trade.fee_cost is None:
            assert fee is None or fee["cost"] is None
        else:
            assert (trade.fee_cost, trade.fee_currency) == (Decimal(fee["cost"]), fee["currency"])


@pytest.mark.parametrize("name", ["execution.mdx", "fast-execution.mdx"])
def test_docs_execution_samples_agree_with_ccxt(name, ccxt_bybit):
    [sample] = [s for s in load_samples("bybit") if f"private/{name}" in s["source"]]
    _assert_agree(sample["raw"], Market.FUTURE, ccxt_bybit)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_generated_linear_fills_agree_with_ccxt(data, ccxt_bybit):
    rows = data.draw(st.lists(execution_rows(Market.FUTURE), min_size=1, max_size=3, unique_by=lambda r: r["execId"]))
    for row in _shared_fills(rows, data):
        market_id, quote = data.draw(st.sampled_from(
            [(row["symbol"], row["symbol"][-4:]), ("ETHPERP", "USDC")] + [(i, q) for i, _, q, _ in DATED]))
        # ccxt derives the fee coin (the settle coin for linear) and ignores `feeCurrency`: send the same.
        row.update(symbol=market_id, feeCurrency=data.draw(st.sampled_from(["", quote])))
    _assert_agree({"topic": "execution", "id": "x", "creationTime": 1, "data": rows}, Market.FUTURE, ccxt_bybit)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_generated_spot_fills_without_fee_currency_agree_with_ccxt(data, ccxt_bybit):
    rows = data.draw(st.lists(execution_rows(Market.SPOT), min_size=1, max_size=3, unique_by=lambda r: r["execId"]))
    for row in _shared_fills(rows, data):
        # ccxt reads the spot fee coin from the fee's sign only; a zero fee is where the instruction needs
        # isMaker too (see normalize's docstring), so the differential keeps to non-zero fees.
        fee = data.draw(st.decimals(min_value=Decimal("-1"), max_value=Decimal("1"), places=8,
                                    allow_nan=False).filter(lambda d: d != 0))
        row.update(execFee=str(fee), feeCurrency="")
    _assert_agree({"topic": "execution", "id": "x", "creationTime": 1, "data": rows}, Market.SPOT, ccxt_bybit)
