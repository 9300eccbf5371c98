"""Units a strategy can trust: `contract_size` and `base_amount` on fills and order updates, from every reading path
(the stream's normalize, the store, the spool), without touching equality, dedup keys or the store's columns."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from decimal import Decimal

import attrs

from exchanges.bybit.normalize import normalize as bybit_normalize
from exchanges.gate.normalize import normalize as gate_normalize
from exchanges.mexc.normalize import normalize as mexc_normalize
from exchanges.symbols import register_contract_sizes
from framework.events import Market, OrderUpdate, Trade
from framework.spool import decode, encode
from framework.store import TRADE_COLUMNS, order_from_row, order_row, trade_from_row, trade_row
from strategies.position_tracker import Book, PositionTracker


def _gate_future_fill(contract: str = "BTC_USDT", size: int = -300) -> Trade:
    (trade,) = gate_normalize({"channel": "futures.usertrades", "event": "update", "result": [
        {"id": "3335259", "order_id": "4872460", "contract": contract, "size": size, "price": "40000.4",
         "role": "maker", "create_time_ms": 1628736848321, "fee": "0.0009290592", "text": "t-s1-1"}]}, Market.FUTURE)
    return trade


def _bybit_inverse(kind: str, row: dict) -> Trade | OrderUpdate:
    (event,) = bybit_normalize({"topic": kind, "data": [{"category": "inverse", "symbol": "BTCUSD", **row}]},
                               Market.FUTURE)
    return event


def test_gate_future_fill_keeps_contracts_in_amount_and_gives_coins_in_base_amount():
    trade = _gate_future_fill()
    assert trade.amount == 300 and trade.raw["size"] == -300  # the venue's own figure, untouched
    assert trade.contract_size == Decimal("0.0001") and trade.base_amount == Decimal("0.03")
    assert trade.cost == Decimal("0.03") * Decimal("40000.4")
    assert trade.to_dict()["base_amount"] == Decimal("0.03") and trade.to_dict()["contract_size"] == Decimal("0.0001")


def test_contract_registered_from_market_metadata_sets_the_size_of_a_contract_no_fallback_knows():
    register_contract_sizes("gate", {"UNITSTEST_USDT": Decimal("10")})
    trade = _gate_future_fill("UNITSTEST_USDT", size=7)
    assert trade.contract_size == 10 and trade.base_amount == 70 and trade.amount == 7


def test_mexc_future_order_gives_base_amount_and_base_filled_in_coins():
    (update,) = mexc_normalize({"channel": "push.personal.order", "data": {
        "orderId": 123456789, "externalOid": "ext_001", "symbol": "ETH_USDT", "side": 1, "orderType": 1,
        "price": Decimal("3000.5"), "vol": 25, "dealVol": 10, "updateTime": 1760942212000, "state": 2}},
        Market.FUTURE)
    assert (update.amount, update.filled) == (25, 10)
    assert update.contract_size == Decimal("0.01")
    assert update.base_amount == Decimal("0.25") and update.base_filled == Decimal("0.10")


def test_spot_and_coin_quantity_fills_have_base_amount_equal_to_amount():
    fill = dict(trade_id="1", order_id="2", side="buy", amount="0.00123", price="65000", cost="79.95", timestamp=1)
    spot = Trade(exchange="gate", market="spot", symbol="BTC/USDT", symbol_raw="BTC_USDT", **fill)
    linear = Trade(exchange="binance", market="future", symbol="BTC/USDT:USDT", symbol_raw="BTCUSDT", **fill)
    assert spot.contract_size is None and spot.base_amount == Decimal("0.00123")
    assert linear.contract_size == 1 and linear.base_amount == Decimal("0.00123") and not linear.is_inverse


def test_bybit_inverse_fill_base_amount_is_its_coin_value_and_an_order_has_no_fixed_base():
    trade = _bybit_inverse("execution", {
        "execId": "e1", "orderId": "o1", "orderLinkId": "", "side": "Buy", "execType": "Trade", "execQty": "100",
        "execPrice": "50000", "execValue": "0.002", "execFee": "0.0000015", "isMaker": False, "execTime": "1"})
    assert trade.symbol == "BTC/USD:BTC" and trade.is_inverse
    assert trade.amount == 100 and trade.contract_size == 1  # USD contracts, as Bybit counts them
    assert trade.base_amount == Decimal("0.002")  # the coins those USD bought at this price: execValue
    update = _bybit_inverse("order", {
        "orderId": "o1", "orderLinkId": "", "side": "Buy", "orderType": "Limit", "orderStatus": "PartiallyFilled",
        "qty": "300", "price": "50000", "cumExecQty": "100", "updatedTime": "1"})
    assert update.amount == 300 and update.base_amount is None and update.base_filled is None


def test_contract_size_stays_out_of_equality_dedup_key_and_store_columns():
    trade = _gate_future_fill()
    other = attrs.evolve(trade, contract_size=Decimal("1"))
    assert trade == other and trade.dedup_key == other.dedup_key
    assert "contract_size" not in TRADE_COLUMNS and trade_row(trade) == trade_row(other)
    assert len(trade_row(trade)) == len(TRADE_COLUMNS)


def test_rows_read_back_from_the_store_get_the_contract_size_of_their_market():
    trade = _gate_future_fill()
    back = trade_from_row(trade_row(trade), seq=7)
    assert back == trade and back.contract_size == Decimal("0.0001") and back.base_amount == Decimal("0.03")
    (order,) = mexc_normalize({"channel": "push.personal.order", "data": {
        "orderId": 1, "symbol": "BTC_USDT", "side": 3, "orderType": 1, "price": "65000", "vol": 40,
        "dealVol": 40, "updateTime": 1760942212000, "state": 3}}, Market.FUTURE)
    again = order_from_row(order_row(order)[:-1])
    assert again == order and again.base_amount == Decimal("0.0040") and again.base_filled == Decimal("0.0040")


async def test_fill_stored_and_fetched_keeps_base_amount(store):
    trade = _gate_future_fill()
    await store.insert_trades([trade])
    (stored,) = await store.fetch_trades()
    assert stored == trade and stored.amount == 300 and stored.base_amount == Decimal("0.03")


def test_spool_line_round_trip_keeps_contract_size_and_base_amount():
    trade = attrs.evolve(_gate_future_fill(), contract_size=Decimal("0.001"))  # as the normalizer saw it then
    kind, back = decode(encode("trade", trade))
    assert kind == "trade" and back == trade
    assert back.contract_size == Decimal("0.001") and back.base_amount == Decimal("0.300")


def _inverse_fill(side: str, usd: str, price: str) -> Trade:
    return Trade(exchange="bybit", market="future", symbol="BTC/USD:BTC", symbol_raw="BTCUSD", trade_id=side + usd,
                 order_id="o", side=side, amount=usd, price=price, cost=Decimal(usd) / Decimal(price), timestamp=1)


def test_position_tracker_inverse_book_counts_usd_contracts_and_realizes_pnl_in_the_coin():
    book = Book()
    book.apply(_inverse_fill("buy", "100", "50000"))
    assert book.inverse and book.position == 100 and book.avg_price == 50000
    book.apply(_inverse_fill("sell", "100", "62500"))
    # 100 USD long from 50000 to 62500: 100/50000 - 100/62500 = 0.002 - 0.0016 BTC.
    assert book.position == 0 and book.realized_pnl == Decimal("0.0004")
    assert book.volume == Decimal("0.002") + Decimal("0.0016")
    tracker = PositionTracker("inverse")
    tracker.on_start()
    tracker.books["BTC/USD:BTC"] = book
    assert "position 0 USD @ 0, realized PnL 0.00040000 BTC" in tracker.summary()[0]


def test_a_fresh_process_reading_the_store_first_knows_the_venues_contract_sizes():
    script = textwrap.dedent("""
        import sys
        from framework.store import trade_from_row
        row = ("gate", "future", "default", "BTC/USDT:USDT", "BTC_USDT", "1", "2", None, "buy", "300", "40000",
               "1200.012", None, None, None, 1, 1, "websocket", None)
        trade = trade_from_row(row)
        print(trade.contract_size, trade.base_amount, "exchanges.gate.normalize" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0.0001", "0.0300", "True"]
