"""Gate.io APIv4 private streams (orders, fills, balances, positions), public market data and order entry (WebSocket
API on the private socket, REST fallback): spot and USDT-settled perpetual futures."""

from exchanges.gate.account import normalize_account, snapshot
from exchanges.gate.market_data import MARKET_DATA
from exchanges.gate.normalize import EXCHANGE, normalize
from exchanges.gate.orders import ORDERS
from exchanges.gate.rest import BACKFILL
from exchanges.gate.stream import GateStream, handshake
from framework.venue import AccountRules, ExchangeSpec
from framework.events import Market

# ccxt's fetch_balance / fetch_positions take the market from the client's defaultType (exchanges.gate.rest); futures
# name the settle coin of the socket the account channels come from (ccxt's default for swaps too, said outright).
_SETTLE = {Market.FUTURE: {"settle": "usdt"}}

SPEC = ExchangeSpec(
    name=EXCHANGE,
    markets=frozenset({Market.SPOT, Market.FUTURE}),
    credentials_required=("api_key", "secret"),
    handshake=handshake,
    normalize=normalize,
    stream=GateStream(),
    backfill=BACKFILL,
    market_data=MARKET_DATA,
    account=AccountRules(
        normalize=normalize_account,
        balance_params=lambda market: _SETTLE.get(market, {}),
        positions_params=lambda market: _SETTLE.get(market, {}),
        snapshot=snapshot,
    ),
    orders=ORDERS,
)
