"""Bybit v5 (spot and linear perpetuals/futures) private stream and market data: the venue's one frozen SPEC.
Balances and positions come from the private stream's `wallet` / `position` topics, and over REST at every
(re)connect through ccxt (account.py). Orders go over the /v5/trade socket, with REST as the fallback (orders.py)."""

from exchanges.bybit.account import fetch_snapshot, normalize_account
from exchanges.bybit.market_data import MARKET_DATA
from exchanges.bybit.normalize import EXCHANGE, normalize
from exchanges.bybit.orders import ORDERS
from exchanges.bybit.rest import BACKFILL
from exchanges.bybit.stream import BybitStream, handshake
from framework.venue import AccountRules, ExchangeSpec
from framework.events import Market

# The REST snapshot is read by the venue (fetch): ccxt's fetch_positions lists one settle coin a call, and its
# unified figures are not ours (a flat position's entry price and side are None, realizedPnl is the holding's
# only), so the venue's rows in its answers are read as the stream's are.
ACCOUNT = AccountRules(normalize=normalize_account, fetch=fetch_snapshot)

SPEC = ExchangeSpec(
    name=EXCHANGE,
    markets=frozenset({Market.SPOT, Market.FUTURE}),
    credentials_required=("api_key", "secret"),
    handshake=handshake,
    normalize=normalize,
    stream=BybitStream(),
    backfill=BACKFILL,
    market_data=MARKET_DATA,
    account=ACCOUNT,
    orders=ORDERS,
)
