"""Bybit v5 (spot and linear perpetuals/futures) private stream and market data: the venue's one frozen SPEC."""

from exchanges.bybit.market_data import MARKET_DATA
from exchanges.bybit.normalize import EXCHANGE, normalize
from exchanges.bybit.rest import BACKFILL
from exchanges.bybit.stream import BybitStream, handshake
from framework.venue import ExchangeSpec
from framework.events import Market

SPEC = ExchangeSpec(
    name=EXCHANGE,
    markets=frozenset({Market.SPOT, Market.FUTURE}),
    credentials_required=("api_key", "secret"),
    handshake=handshake,
    normalize=normalize,
    stream=BybitStream(),
    backfill=BACKFILL,
    market_data=MARKET_DATA,
)
