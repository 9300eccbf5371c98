"""Hyperliquid perpetuals: fills and order updates streamed by wallet address (no API key, no signature), public
market data through ccxt.pro."""

from exchanges.hyperliquid.market_data import MARKET_DATA
from exchanges.hyperliquid.normalize import EXCHANGE, normalize
from exchanges.hyperliquid.rest import BACKFILL
from exchanges.hyperliquid.stream import HyperliquidStream, handshake
from framework.venue import ExchangeSpec
from framework.events import Market

SPEC = ExchangeSpec(
    name=EXCHANGE,
    markets=frozenset({Market.FUTURE}),
    credentials_required=("wallet_address",),
    handshake=handshake,
    normalize=normalize,
    stream=HyperliquidStream(),
    backfill=BACKFILL,
    market_data=MARKET_DATA,
)
