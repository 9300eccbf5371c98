"""MEXC spot push schema (`PushDataV3ApiWrapper` and its bodies), built in code.

Written from the published schema facts (github.com/mexcdevelop/websocket-proto, see
shared/exchanges/mexc.md) as a FileDescriptorProto loaded into a private DescriptorPool: no protoc,
no generated module, no clash with other copies of the same names (ccxt ships its own). Only the
wire matters here: proto3 `optional` markers are left out (they change presence tracking, not the
bytes).

Three views of the one wire wrapper: `PushDataV3ApiWrapper` declares only the private order/deal bodies
the user stream reads (public bodies and privateAccount 307 parse as unknown fields and leave
`WhichOneof("body")` at None, so normalize.py passes account pushes by), `AccountPushDataV3ApiWrapper` declares
only privateAccount 307 (account.py reads it; order and deal bodies are unknown to it), and
`MarketPushDataV3ApiWrapper` declares the public market bodies the simulator writes: publicSpotKline 308,
publicAggreDepths 313, publicAggreDeals 314, publicAggreBookTicker 315.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_STRING, _INT32, _INT64, _BOOL = _F.TYPE_STRING, _F.TYPE_INT32, _F.TYPE_INT64, _F.TYPE_BOOL
_PACKAGE = "tradesync.mexc"

_DEALS = (
    ("price", 1, _STRING), ("quantity", 2, _STRING), ("amount", 3, _STRING), ("tradeType", 4, _INT32),
    ("isMaker", 5, _BOOL), ("isSelfTrade", 6, _BOOL), ("tradeId", 7, _STRING), ("clientOrderId", 8, _STRING),
    ("orderId", 9, _STRING), ("feeAmount", 10, _STRING), ("feeCurrency", 11, _STRING), ("time", 12, _INT64),
)  # fmt: skip
_ORDERS = (
    ("id", 1, _STRING), ("clientId", 2, _STRING), ("price", 3, _STRING), ("quantity", 4, _STRING),
    ("amount", 5, _STRING), ("avgPrice", 6, _STRING), ("orderType", 7, _INT32), ("tradeType", 8, _INT32),
    ("isMaker", 9, _BOOL), ("remainAmount", 10, _STRING), ("remainQuantity", 11, _STRING),
    ("lastDealQuantity", 12, _STRING), ("cumulativeQuantity", 13, _STRING), ("cumulativeAmount", 14, _STRING),
    ("status", 15, _INT32), ("createTime", 16, _INT64), ("market", 17, _STRING), ("triggerType", 18, _INT32),
    ("triggerPrice", 19, _STRING), ("state", 20, _INT32), ("ocoId", 21, _STRING), ("routeFactor", 22, _STRING),
    ("symbolId", 23, _STRING), ("marketId", 24, _STRING), ("marketCurrencyId", 25, _STRING),
    ("currencyId", 26, _STRING),
)  # fmt: skip
_ACCOUNT = (
    ("vcoinName", 1, _STRING), ("coinId", 2, _STRING), ("balanceAmount", 3, _STRING),
    ("balanceAmountChange", 4, _STRING), ("frozenAmount", 5, _STRING), ("frozenAmountChange", 6, _STRING),
    ("type", 7, _STRING), ("time", 8, _INT64),
)  # fmt: skip
_WRAPPER = (
    ("channel", 1, _STRING), ("symbol", 3, _STRING), ("symbolId", 4, _STRING),
    ("createTime", 5, _INT64), ("sendTime", 6, _INT64),
)  # fmt: skip
_BODIES = (("privateOrders", 304, "PrivateOrdersV3Api"), ("privateDeals", 306, "PrivateDealsV3Api"))
_ACCOUNT_BODIES = (("privateAccount", 307, "PrivateAccountV3Api"),)
# Public market bodies; a str kind names a message, "+" before it marks a repeated field.
_KLINE = (
    ("interval", 1, _STRING), ("windowStart", 2, _INT64), ("openingPrice", 3, _STRING),
    ("closingPrice", 4, _STRING), ("highestPrice", 5, _STRING), ("lowestPrice", 6, _STRING),
    ("volume", 7, _STRING), ("amount", 8, _STRING), ("windowEnd", 9, _INT64),
)  # fmt: skip
_DEPTH_ITEM = (("price", 1, _STRING), ("quantity", 2, _STRING))
_DEPTHS = (
    ("asks", 1, "+PublicAggreDepthV3ApiItem"), ("bids", 2, "+PublicAggreDepthV3ApiItem"), ("eventType", 3, _STRING),
    ("fromVersion", 4, _STRING), ("toVersion", 5, _STRING), ("lastOrderCreateTime", 6, _INT64),
)  # fmt: skip
_DEAL_ITEM = (
    ("price", 1, _STRING), ("quantity", 2, _STRING), ("tradeType", 3, _INT32), ("time", 4, _INT64),
    ("tradeId", 5, _STRING),
)  # fmt: skip
_AGGRE_DEALS = (("deals", 1, "+PublicAggreDealsV3ApiItem"), ("eventType", 2, _STRING))
_BOOK_TICKER = (
    ("bidPrice", 1, _STRING), ("bidQuantity", 2, _STRING), ("askPrice", 3, _STRING), ("askQuantity", 4, _STRING),
    ("version", 5, _STRING), ("lastOrderCreateTime", 6, _INT64),
)  # fmt: skip
_MARKET_BODIES = (
    ("publicSpotKline", 308, "PublicSpotKlineV3Api"), ("publicAggreDepths", 313, "PublicAggreDepthsV3Api"),
    ("publicAggreDeals", 314, "PublicAggreDealsV3Api"), ("publicAggreBookTicker", 315, "PublicAggreBookTickerV3Api"),
)  # fmt: skip


def _message(name: str, fields: tuple) -> descriptor_pb2.DescriptorProto:
    message = descriptor_pb2.DescriptorProto(name=name)
    for field_name, number, kind in fields:
        if isinstance(kind, str):
            label = _F.LABEL_REPEATED if kind.startswith("+") else _F.LABEL_OPTIONAL
            message.field.add(name=field_name, number=number, type=_F.TYPE_MESSAGE, label=label,
                              type_name=f".{_PACKAGE}.{kind.lstrip('+')}")
        else:
            message.field.add(name=field_name, number=number, type=kind, label=_F.LABEL_OPTIONAL)
    return message


def _wrapper(name: str, bodies: tuple) -> descriptor_pb2.DescriptorProto:
    wrapper = _message(name, _WRAPPER)
    wrapper.oneof_decl.add(name="body")
    for body, number, type_name in bodies:
        wrapper.field.add(
            name=body,
            number=number,
            type=_F.TYPE_MESSAGE,
            label=_F.LABEL_OPTIONAL,
            type_name=f".{_PACKAGE}.{type_name}",
            oneof_index=0,
        )
    return wrapper


def _schema() -> descriptor_pb2.FileDescriptorProto:
    schema = descriptor_pb2.FileDescriptorProto(name="tradesync/mexc/push.proto", package=_PACKAGE, syntax="proto3")
    schema.message_type.extend([
        _message("PrivateDealsV3Api", _DEALS), _message("PrivateOrdersV3Api", _ORDERS),
        _wrapper("PushDataV3ApiWrapper", _BODIES),
        _message("PrivateAccountV3Api", _ACCOUNT), _wrapper("AccountPushDataV3ApiWrapper", _ACCOUNT_BODIES),
        _message("PublicSpotKlineV3Api", _KLINE), _message("PublicAggreDepthV3ApiItem", _DEPTH_ITEM),
        _message("PublicAggreDepthsV3Api", _DEPTHS), _message("PublicAggreDealsV3ApiItem", _DEAL_ITEM),
        _message("PublicAggreDealsV3Api", _AGGRE_DEALS), _message("PublicAggreBookTickerV3Api", _BOOK_TICKER),
        _wrapper("MarketPushDataV3ApiWrapper", _MARKET_BODIES),
    ])  # fmt: skip
    return schema


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_schema())


def _message_class(name: str) -> type:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.{name}"))


PushDataV3ApiWrapper = _message_class("PushDataV3ApiWrapper")
PrivateDealsV3Api = _message_class("PrivateDealsV3Api")
PrivateOrdersV3Api = _message_class("PrivateOrdersV3Api")
AccountPushDataV3ApiWrapper = _message_class("AccountPushDataV3ApiWrapper")
PrivateAccountV3Api = _message_class("PrivateAccountV3Api")
MarketPushDataV3ApiWrapper = _message_class("MarketPushDataV3ApiWrapper")
PublicSpotKlineV3Api = _message_class("PublicSpotKlineV3Api")
PublicAggreDepthsV3Api = _message_class("PublicAggreDepthsV3Api")
PublicAggreDepthV3ApiItem = _message_class("PublicAggreDepthV3ApiItem")
PublicAggreDealsV3Api = _message_class("PublicAggreDealsV3Api")
PublicAggreDealsV3ApiItem = _message_class("PublicAggreDealsV3ApiItem")
PublicAggreBookTickerV3Api = _message_class("PublicAggreBookTickerV3Api")
