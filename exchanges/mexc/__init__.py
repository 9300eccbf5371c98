"""MEXC: spot (protobuf user data stream behind a signed listenKey) and USDT-M contracts (JSON, login on the socket);
public market data through ccxt.pro."""

from __future__ import annotations

from exchanges.mexc.market_data import MARKET_DATA
from exchanges.mexc.normalize import normalize
from exchanges.mexc.rest import BACKFILL
from exchanges.mexc.stream import MexcStream, handshake
from framework.venue import ExchangeSpec
from framework.events import Market

SPEC = ExchangeSpec(
    name="mexc",
    markets=frozenset({Market.SPOT, Market.FUTURE}),
    credentials_required=("api_key", "secret"),
    handshake=handshake,
    normalize=normalize,
    stream=MexcStream(),
    backfill=BACKFILL,
    market_data=MARKET_DATA,
)
