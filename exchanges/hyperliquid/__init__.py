"""Hyperliquid perpetuals: fills, order updates and the perp account state streamed by wallet address (no API key,
no signature), public market data through ccxt.pro, and order entry (EIP-712 signed actions posted on the private
socket, REST through ccxt as the fallback)."""

from exchanges.hyperliquid.account import normalize_account, rest_snapshot
from exchanges.hyperliquid.market_data import MARKET_DATA
from exchanges.hyperliquid.normalize import EXCHANGE, normalize
from exchanges.hyperliquid.orders import ORDERS
from exchanges.hyperliquid.rest import BACKFILL
from exchanges.hyperliquid.stream import HyperliquidStream, handshake
from framework.venue import AccountRules, ExchangeSpec
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
    account=AccountRules(
        normalize=normalize_account,
        positions_in_full=True,  # every push lists all open positions: one left out was closed
        fetch=rest_snapshot,  # the clearinghouse state the stream pushes, read the same way
    ),
    orders=ORDERS,
)
