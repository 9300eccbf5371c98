"""Binance: spot through the WebSocket-API user data subscription, USD-M futures through a listenKey stream;
public market data of both through ccxt.pro (market_data.py); balances and positions from the same user stream,
and over REST at every (re)connect through ccxt (account.py); orders over the WebSocket API (spot on the user
stream's socket, USD-M on ws-fapi) with REST through ccxt as the fallback (orders.py)."""

from __future__ import annotations

from exchanges.binance.account import normalize_account, snapshot_events
from exchanges.binance.market_data import MARKET_DATA
from exchanges.binance.normalize import EXCHANGE, normalize
from exchanges.binance.orders import ORDERS
from exchanges.binance.rest import BACKFILL
from exchanges.binance.stream import BinanceStream, handshake
from framework.events import Market
from framework.venue import AccountRules, ExchangeSpec

# ccxt's defaults fit both markets (the client's defaultType picks spot `GET /api/v3/account`, USD-M
# `GET /fapi/v3/account` and `GET /fapi/v3/positionRisk`), so no extra params. Spot's `omitZeroBalances` is left
# off on purpose: a coin sold to zero while the socket was down must come back at zero, not be left out.
ACCOUNT = AccountRules(normalize=normalize_account, snapshot=snapshot_events)

SPEC = ExchangeSpec(
    name=EXCHANGE,
    markets=frozenset({Market.SPOT, Market.FUTURE}),
    credentials_required=("api_key", "secret"),
    handshake=handshake,
    normalize=normalize,
    stream=BinanceStream(),
    backfill=BACKFILL,
    market_data=MARKET_DATA,
    account=ACCOUNT,
    orders=ORDERS,
)
