"""Bitget (v2): spot and USDT-margined futures fills and order updates (private WebSocket), public market data
through ccxt.pro."""

from __future__ import annotations

from exchanges.bitget.market_data import MARKET_DATA
from exchanges.bitget.normalize import normalize
from exchanges.bitget.rest import BACKFILL
from exchanges.bitget.stream import BitgetStream, handshake
from framework.venue import ExchangeSpec
from framework.events import Market

SPEC = ExchangeSpec(
    name="bitget",
    markets=frozenset({Market.SPOT, Market.FUTURE}),
    credentials_required=("api_key", "secret", "passphrase"),
    handshake=handshake,
    normalize=normalize,
    stream=BitgetStream(),
    backfill=BACKFILL,
    market_data=MARKET_DATA,
)
