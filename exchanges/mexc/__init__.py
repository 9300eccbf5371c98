"""MEXC: spot (protobuf user data stream behind a signed listenKey) and USDT-M contracts (JSON, login on the socket);
balances and positions from the same sockets, with a REST snapshot read from MEXC's own answers at every
(re)connect; public market data through ccxt.pro; spot orders over REST (futures order entry is closed to API keys)."""

from __future__ import annotations

from exchanges.mexc.account import fetch_snapshot, normalize_account
from exchanges.mexc.market_data import MARKET_DATA
from exchanges.mexc.normalize import normalize
from exchanges.mexc.orders import ORDERS
from exchanges.mexc.rest import BACKFILL
from exchanges.mexc.stream import MexcStream, handshake
from framework.venue import AccountRules, ExchangeSpec
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
    # ccxt's fetch_balance / fetch_positions need no extra params here (the client's defaultType picks spot or
    # swap), but their contract figures are floats and leave the position margin out of used / total: the
    # snapshot re-reads MEXC's answers exactly. Records are one-way (net) positions.
    account=AccountRules(normalize=normalize_account, fetch=fetch_snapshot),
    orders=ORDERS,  # spot REST only: no WebSocket order entry, no amend; futures closed (code 1002)
)
