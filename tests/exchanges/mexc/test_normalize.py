"""MEXC normalize: every official sample (expected values read off the messages by hand), protobuf decoding
checked against hand-written bytes and against ccxt's generated schema, and the documented edge rules."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2, json_format

from exchanges.mexc.normalize import normalize
from exchanges.mexc.proto import PrivateDealsV3Api, PrivateOrdersV3Api, PushDataV3ApiWrapper
from framework.errors import NormalizeError
from framework.events import Market, OrderStatus, OrderUpdate, Side, Trade

SAMPLES = json.loads(
    (Path(__file__).resolve().parents[2] / "data/exchanges/mexc.samples.json").read_text(), parse_float=Decimal
)


def _frame(sample: dict):
    """The wire frame of a sample: JSON as the connection parses it, or the protobuf bytes of a decoded push."""
    if "raw" in sample:
        return sample["raw"]
    return json_format.ParseDict(sample["raw_decoded_json"], PushDataV3ApiWrapper()).SerializeToString()


def _by_source(fragment: str, kind: str) -> dict:
    (found,) = [s for s in SAMPLES if fragment in s["source"] and s["kind"] == kind]
    return found


# Expected values written by reading each sample message.
EXPECTED = [
    (
        "@ 076ba53",
        "trade",
        Trade(
            exchange="mexc", market="spot", symbol="MX/USDT", symbol_raw="MXUSDT",
            trade_id="5bbb6ad8b4474570b155610e30d960cd", order_id="2dd9655f9fa2438fa1709510d7c1afd9",
            client_order_id=None, side="buy", amount=Decimal("0.31"), price=Decimal("1.804"),
            cost=Decimal("0.55924"), fee_cost=Decimal("0.000248206380027431"), fee_currency="MX",
            is_maker=False, timestamp=1678901086198,
        ),
    ),
    (
        "@ 076ba53",
        "order_update",
        OrderUpdate(
            exchange="mexc", market="spot", symbol="MX/USDT", symbol_raw="MXUSDT",
            order_id="e03a5c7441e44ed899466a7140b71391", client_order_id=None, side="buy", order_type="limit",
            status="new", status_raw="1", amount=Decimal("10"), price=Decimal("0.8"), filled=Decimal("0"),
            timestamp=1661938138193,
        ),
    ),
    (
        "@ c0de8ff",
        "trade",
        Trade(
            exchange="mexc", market="spot", symbol="MX/USDT", symbol_raw="MXUSDT",
            trade_id="505979017439002624X1", order_id="C02__505979017439002624115", client_order_id=None,
            side="sell", amount=Decimal("1"), price=Decimal("3.6962"), cost=Decimal("3.6962"),
            fee_cost=Decimal("0.0003998377369698171"), fee_currency="MX", is_maker=False,
            timestamp=1736417034280,
        ),
    ),
    (
        "@ c0de8ff",
        "order_update",
        OrderUpdate(
            exchange="mexc", market="spot", symbol="MX/USDT", symbol_raw="MXUSDT",
            order_id="C02__505979017439002624115", client_order_id=None, side="sell", order_type="market",
            status="filled", status_raw="2", amount=Decimal("1"), price=None, filled=Decimal("1"),
            timestamp=1736417034281,
        ),
    ),
    (
        "@ 84922b1",
        "order_update",
        OrderUpdate(
            exchange="mexc", market="future", symbol="CRV/USDT:USDT", symbol_raw="CRV_USDT",
            order_id="102067003631907840", client_order_id="_m_95bc2b72d3784bce8f9efecbdef9fe35", side="sell",
            order_type="market", status="filled", status_raw="3", amount=Decimal("1"), price=None,
            filled=Decimal("1"), timestamp=1610005069983,
        ),
    ),
    (
        "Private channels / Order sample",
        "order_update",
        OrderUpdate(
            exchange="mexc", market="future", symbol="BTC/USDT:USDT", symbol_raw="BTC_USDT",
            order_id="123456789", client_order_id="ext_001", side="buy", order_type="limit",
            status="partially_filled", status_raw="2", amount=Decimal("10"), price=Decimal("45000.5"),
            filled=Decimal("5"), timestamp=1760942212000,
        ),
    ),
    (
        "Fill details",
        "trade",
        Trade(
            exchange="mexc", market="future", symbol="BTC/USDT:USDT", symbol_raw="BTC_USDT",
            trade_id="987654321", order_id="123456789", client_order_id="ext_001", side="buy",
            amount=Decimal("10"), price=Decimal("45000.5"),
            cost=Decimal("45.0005"),  # 10 contracts × 45000.5 × 0.0001 BTC per contract
            fee_cost=Decimal("0.225"), fee_currency="USDT", is_maker=False, timestamp=1760942212000,
        ),
    ),
]  # fmt: skip


def test_every_sample_has_an_expectation():
    assert len(EXPECTED) == len(SAMPLES)
    assert {id(_by_source(fragment, kind)) for fragment, kind, _ in EXPECTED} == {id(s) for s in SAMPLES}


@pytest.mark.parametrize("fragment, kind, expected", EXPECTED, ids=[f"{f}-{k}" for f, k, _ in EXPECTED])
def test_sample_normalizes_to_the_values_read_off_the_message(fragment, kind, expected):
    sample = _by_source(fragment, kind)
    frame = _frame(sample)
    (event,) = normalize(frame, Market(sample["market"]))
    assert event == expected
    assert event.raw is frame
    for name in ("amount", "price", "cost", "fee_cost", "filled"):
        value = getattr(event, name, None)
        assert value is None or type(value) is Decimal


def test_protobuf_frame_written_byte_by_byte_decodes_to_its_trade():
    deal = (
        b"\x0a\x06" b"3.6962"                          # field 1 price, wire type 2 (1<<3|2 = 0x0a), 6 bytes
        b"\x12\x01" b"1"                               # field 2 quantity
        b"\x1a\x06" b"3.6962"                          # field 3 amount (quote cost)
        b"\x20\x02"                                    # field 4 tradeType, varint (4<<3|0 = 0x20) = 2 sell
        b"\x28\x01"                                    # field 5 isMaker = true
        b"\x3a\x14" b"505979017439002624X1"            # field 7 tradeId, 20 bytes
        b"\x42\x03" b"my1"                             # field 8 clientOrderId
        b"\x4a\x1a" b"C02__505979017439002624115"      # field 9 orderId, 26 bytes
        b"\x52\x15" b"0.0003998377369698171"           # field 10 feeAmount, 21 bytes
        b"\x5a\x02" b"MX"                              # field 11 feeCurrency
        b"\x60" b"\xa8\x80\x95\xd4\xc4\x32"            # field 12 time = 1736417034280, 7-bit groups low first
        b"\x68\x01"                                    # field 13: not in the schema, must be skipped
    )  # fmt: skip
    assert len(deal) < 128  # so its length fits in one varint byte below
    frame = (
        b"\x0a\x1c" b"spot@private.deals.v3.api.pb"    # field 1 channel, 28 bytes
        b"\x1a\x06" b"MXUSDT"                          # field 3 symbol
        b"\x30" b"\xdc\x80\x95\xd4\xc4\x32"            # field 6 sendTime = 1736417034332
        b"\x92\x13" + bytes([len(deal)]) + deal        # field 306 privateDeals: tag 306<<3|2 = 2450 = 0x92 0x13
    )  # fmt: skip
    (trade,) = normalize(frame, Market.SPOT)
    assert trade == Trade(
        exchange="mexc", market="spot", symbol="MX/USDT", symbol_raw="MXUSDT", trade_id="505979017439002624X1",
        order_id="C02__505979017439002624115", client_order_id="my1", side="sell", amount=Decimal("1"),
        price=Decimal("3.6962"), cost=Decimal("3.6962"), fee_cost=Decimal("0.0003998377369698171"),
        fee_currency="MX", is_maker=True, timestamp=1736417034280,
    )  # fmt: skip


def test_schema_matches_ccxt_generated_descriptors_field_for_field():
    pytest.importorskip("ccxt.protobuf.mexc")
    from ccxt.protobuf.mexc import PrivateDealsV3Api_pb2, PrivateOrdersV3Api_pb2, PushDataV3ApiWrapper_pb2

    pairs = [
        (PrivateDealsV3Api, PrivateDealsV3Api_pb2.PrivateDealsV3Api, 12),
        (PrivateOrdersV3Api, PrivateOrdersV3Api_pb2.PrivateOrdersV3Api, 26),
        (PushDataV3ApiWrapper, PushDataV3ApiWrapper_pb2.PushDataV3ApiWrapper, 7),  # 5 fields + our 2 bodies
    ]
    for ours, theirs, count in pairs:
        mine = _numbers_and_types(ours)
        assert len(mine) == count
        assert mine.items() <= _numbers_and_types(theirs).items()  # same name, number and type as theirs


def _numbers_and_types(message_class) -> dict[str, tuple[int, int]]:
    proto = descriptor_pb2.DescriptorProto()
    message_class.DESCRIPTOR.CopyToProto(proto)
    return {f.name: (f.number, f.type) for f in proto.field}


def test_sample_encoded_by_ccxt_schema_decodes_with_ours():
    pytest.importorskip("ccxt.protobuf.mexc")
    from ccxt.protobuf.mexc.PushDataV3ApiWrapper_pb2 import PushDataV3ApiWrapper as CcxtWrapper

    sample = _by_source("@ c0de8ff", "order_update")
    frame = json_format.ParseDict(sample["raw_decoded_json"], CcxtWrapper()).SerializeToString()
    (order,) = normalize(frame, Market.SPOT)
    assert (order.order_id, order.status, order.filled, order.timestamp) == (
        "C02__505979017439002624115", OrderStatus.FILLED, Decimal("1"), 1736417034281,
    )  # fmt: skip


def _pb_order(**fields) -> bytes:
    base = {"id": "O1", "clientId": "c-1", "price": "2.5", "quantity": "4", "orderType": 1, "tradeType": 1,
            "cumulativeQuantity": "1.5", "status": 3, "createTime": 1700000000000}  # fmt: skip
    push = PushDataV3ApiWrapper(channel="spot@private.orders.v3.api.pb", symbol="BTCUSDT", createTime=1700000000005,
                                sendTime=1700000000007)
    push.privateOrders.CopyFrom(PrivateOrdersV3Api(**(base | fields)))
    return push.SerializeToString()


def test_spot_partial_limit_order_keeps_limit_price_and_client_id():
    (order,) = normalize(_pb_order(), Market.SPOT)
    assert (order.symbol, order.client_order_id, order.side, order.order_type) == ("BTC/USDT", "c-1", Side.BUY, "limit")
    assert (order.status, order.price, order.amount, order.filled) == (
        OrderStatus.PARTIALLY_FILLED, Decimal("2.5"), Decimal("4"), Decimal("1.5"),
    )  # fmt: skip
    assert order.timestamp == 1700000000007  # the push's sendTime, not the order's createTime


@pytest.mark.parametrize("status, expected", [(1, "new"), (2, "filled"), (3, "partially_filled"),
                                              (4, "canceled"), (5, "canceled")])  # fmt: skip
def test_spot_order_status_codes_map_to_order_status(status, expected):
    (order,) = normalize(_pb_order(status=status), Market.SPOT)
    assert (order.status.value, order.status_raw) == (expected, str(status))


def test_spot_deal_without_quote_amount_costs_quantity_times_price():
    push = PushDataV3ApiWrapper(channel="spot@private.deals.v3.api.pb", symbol="ETHUSDT")
    push.privateDeals.CopyFrom(PrivateDealsV3Api(price="2000.01", quantity="0.003", tradeType=1, tradeId="T",
                                                 orderId="O", time=1700000000000))  # fmt: skip
    (trade,) = normalize(push.SerializeToString(), Market.SPOT)
    assert (trade.cost, trade.fee_cost, trade.fee_currency) == (Decimal("6.00003"), None, None)


def test_spot_account_push_and_empty_wrapper_give_nothing():
    account_push = b"\x0a\x1e" b"spot@private.account.v3.api.pb" b"\x9a\x13\x02" b"\x0a\x00"  # field 307 body
    assert normalize(account_push, Market.SPOT) == []
    assert normalize(b"", Market.SPOT) == []


@pytest.mark.parametrize(
    "frame",
    [
        {"id": 0, "code": 0, "msg": "spot@private.orders.v3.api.pb,spot@private.deals.v3.api.pb"},
        {"id": 0, "code": 0, "msg": "PONG"},
        {"channel": "rs.login", "data": "success", "ts": 1587442022003},
        {"channel": "pong", "data": 1587453241453},
        {"channel": "push.personal.position", "data": {"symbol": "BTC_USDT", "holdVol": 1}},
        {"c": "spot@private.account.v3.api", "d": {}},
        [],
        "PONG",
    ],
)
def test_acks_pongs_and_other_channels_give_nothing(frame):
    assert normalize(frame, Market.FUTURE) == []


def _future_deal(**fields) -> dict:
    data = {"id": 5, "symbol": "BTC_USDT", "side": 3, "vol": 2, "price": Decimal("60000.1"), "feeCurrency": "USDT",
            "fee": Decimal("-0.0012"), "timestamp": 1700000000000, "isTaker": False, "orderId": 9, "externalOid": ""}
    return {"channel": "push.personal.order.deal", "data": data | fields, "ts": 1700000000001}  # fmt: skip


def test_contract_maker_rebate_stays_negative_and_side_3_sells():
    (trade,) = normalize(_future_deal(), Market.FUTURE)
    assert (trade.side, trade.is_maker, trade.fee_cost, trade.client_order_id) == (
        Side.SELL, True, Decimal("-0.0012"), None,
    )  # fmt: skip
    assert trade.cost == Decimal("12.00002")  # 2 × 60000.1 × 0.0001


def test_contract_fill_without_taker_flag_has_unknown_maker_side():
    frame = _future_deal()
    del frame["data"]["isTaker"]
    assert normalize(frame, Market.FUTURE)[0].is_maker is None


def test_contract_of_unknown_size_costs_vol_times_price():
    (trade,) = normalize(_future_deal(symbol="ZZTOP_USDT", vol=3, price="1.5"), Market.FUTURE)
    assert (trade.symbol, trade.amount, trade.cost) == ("ZZTOP/USDT:USDT", Decimal("3"), Decimal("4.5"))


def test_contract_eth_fill_uses_the_builtin_size():
    (trade,) = normalize(_future_deal(symbol="ETH_USDT", vol=7, price=Decimal("3000.5")), Market.FUTURE)
    assert trade.cost == Decimal("210.035")  # 7 × 3000.5 × 0.01


@pytest.mark.parametrize("side, expected", [(1, Side.BUY), (2, Side.BUY), (3, Side.SELL), (4, Side.SELL)])
def test_contract_sides_open_long_and_close_short_buy(side, expected):
    assert normalize(_future_deal(side=side), Market.FUTURE)[0].side is expected


def test_contract_float_value_is_refused():
    with pytest.raises(NormalizeError) as caught:
        normalize(_future_deal(price=60000.1), Market.FUTURE)
    assert caught.value.raw["data"]["price"] == 60000.1


def test_contract_open_order_without_fills_is_new():
    order = _by_source("Private channels / Order sample", "order_update")["raw"]
    frame = {**order, "data": {**order["data"], "dealVol": 0}}
    (update,) = normalize(frame, Market.FUTURE)
    assert (update.status, update.filled) == (OrderStatus.NEW, Decimal("0"))


@pytest.mark.parametrize("state, expected", [(1, "new"), (3, "filled"), (4, "canceled"), (5, "rejected")])
def test_contract_order_states_map_to_order_status(state, expected):
    order = _by_source("Private channels / Order sample", "order_update")["raw"]
    (update,) = normalize({**order, "data": {**order["data"], "state": state}}, Market.FUTURE)
    assert update.status.value == expected


@pytest.mark.parametrize(
    "frame",
    [
        _future_deal(side=7),
        _future_deal(id=""),
        _future_deal(isTaker="yes"),
        _future_deal(timestamp="soon"),
        {"channel": "push.personal.order.deal", "data": None},
        {"channel": "push.personal.order", "data": {"orderId": 1}},
        {"c": "spot@private.deals.v3.api", "d": {"p": "1"}, "s": "MXUSDT"},
        b"\x92\x13\x05\x0a\x03\xff\xfe\xfd",  # privateDeals whose price is not UTF-8
        b"\x92\x13\x02\x20\x01",  # a deal with no price, ids or time
        b"\x0a\xff",  # truncated
    ],
)
def test_malformed_event_raises_normalize_error_with_the_frame(frame):
    with pytest.raises(NormalizeError) as caught:
        normalize(frame, Market.FUTURE if isinstance(frame, dict) and "channel" in frame else Market.SPOT)
    assert caught.value.raw is frame
