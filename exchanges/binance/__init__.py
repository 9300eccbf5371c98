"""Binance: spot through the WebSocket-API user data subscription, USD-M futures through a listenKey stream;
public market data of both through ccxt.pro (market_data.py)."""

from __future__ import annotations

from exchanges.binance.market_data import MARKET_DATA
from exchanges.binance.normalize import EXCHANGE, normalize
from exchanges.binance.rest import BACKFILL
from exchanges.binance.stream import BinanceStream, handshake
from framework.venue import ExchangeSpec
from framework.events import Market

SPEC = ExchangeSpec(
    name=EXCHANGE,
    markets=frozenset({Market.SPOT, Market.FUTURE}),
    credentials_required=("api_key", "secret"),
    handshake=handshake,
    normalize=normalize,
    stream=BinanceStream(),
    backfill=BACKFILL,
    market_data=MARKET_DATA,
)
