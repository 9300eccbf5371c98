"""Bitget (v2): spot and USDT-margined futures fills and order updates (private WebSocket), public market data
through ccxt.pro, balances and positions from the private `account` / `positions` channels and over REST at every
(re)connect through the ccxt client (account.py), order entry over REST and (granted per account) the private
socket's trade op (orders.py)."""

from __future__ import annotations

from exchanges.bitget.account import fetch_snapshot, normalize_account
from exchanges.bitget.market_data import MARKET_DATA
from exchanges.bitget.normalize import normalize
from exchanges.bitget.orders import ORDERS
from exchanges.bitget.rest import BACKFILL
from exchanges.bitget.stream import BitgetStream, handshake
from framework.venue import AccountRules, ExchangeSpec
from framework.events import Market

ACCOUNT = AccountRules(
    normalize=normalize_account,
    positions_in_full=True,  # every `positions` push lists all open positions: a closed one is left out
    # The REST snapshot reads Bitget's rows with their requestTime (ccxt's fetch_balance drops it, and its unified
    # futures total counts unrealized PnL): fetch_balance / fetch_positions params would go unused.
    fetch=fetch_snapshot,
)

SPEC = ExchangeSpec(
    name="bitget",
    markets=frozenset({Market.SPOT, Market.FUTURE}),
    credentials_required=("api_key", "secret", "passphrase"),
    handshake=handshake,
    normalize=normalize,
    stream=BitgetStream(),
    backfill=BACKFILL,
    market_data=MARKET_DATA,
    account=ACCOUNT,
    orders=ORDERS,  # REST through ccxt; WebSocket trading (op trade on the private socket) when granted
)
