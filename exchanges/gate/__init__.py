"""Gate.io APIv4 private streams and public market data: spot and USDT-settled perpetual futures."""

from exchanges.gate.market_data import MARKET_DATA
from exchanges.gate.normalize import EXCHANGE, normalize
from exchanges.gate.rest import BACKFILL
from exchanges.gate.stream import GateStream, handshake
from framework.venue import ExchangeSpec
from framework.events import Market

SPEC = ExchangeSpec(
    name=EXCHANGE,
    markets=frozenset({Market.SPOT, Market.FUTURE}),
    credentials_required=("api_key", "secret"),
    handshake=handshake,
    normalize=normalize,
    stream=GateStream(),
    backfill=BACKFILL,
    market_data=MARKET_DATA,
)
