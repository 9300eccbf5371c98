"""Gate public market data as ccxt.pro 4.5.90 reads it (`ccxt.pro.gate`: spot and USDT perpetuals).

Sockets: spot `wss://api.gateio.ws/ws/v4/`, USDT perpetuals `wss://fx-ws.gateio.ws/v4/ws/usdt` (ccxt picks the
URL from the market's type and `linear` flag), both opened with the header `X-Gate-Size-Decimal: 1` so futures
sizes come as decimal strings. Every watch sends `{"id": n, "time": s, "channel", "event": "subscribe",
"payload"}`; Gate acks with the same `id` and `"result": {"status": "success"}`, or refuses with `"error":
{"code": 2, "message": "unknown currency pair: X"}` (futures `"unknown contract X"`), which ccxt raises as
BadRequest. ccxt sends no application ping (`spot.ping` exists); the WebSocket ping frames keep the socket.

Channels: `<spot|futures>.tickers` [pair], `.trades` [pair], `.candlesticks` [interval, pair]. Books differ:

- spot: `spot.obu` with payload `ob.<pair>.50` (`ob.<pair>.400` only for limit 400). The first push is the full
  book (`full: true`, `u`); deltas carry `U`..`u`. ccxt resets on every full push and applies every delta whose
  `u` is past its nonce: it does not check `U` = nonce + 1 (Gate's rule), so a lost delta goes unnoticed until
  Gate resends a full push (as the simulator does after its "gap" fault). No checksum.
- futures: `futures.order_book_update` with `[contract, "100ms", "<limit>"]` (100 by default). ccxt caches the
  deltas, fetches `GET /api/v4/futures/usdt/order_book?contract=…&limit=…&with_id=true` and applies the deltas
  after its `id`; a delta whose `U` > nonce + 1 rejects the watch (ChecksumError, though Gate has no checksum) and
  the next watch subscribes again and takes a new snapshot. Level N streams only the top N levels' changes, so
  the book limit is always 100 (Gate's deepest; the snapshot asks as many).

un_watch: `un_watch_order_book` and `un_watch_trades` send `"event": "unsubscribe"` (futures books with ccxt's
default level "100", whatever the watch used); ccxt has no `un_watch_ticker` / `un_watch_ohlcv` for Gate.

Amounts: futures books and trades count contracts (BTC_USDT 0.0001 BTC, ETH_USDT 0.01 ETH: normalize.py's sizes),
futures candles too (`v`); tickers give coins (`volume_24h_base`). Spot candles: ccxt reads `v`, Gate's quote
volume ("total volume"), as the candle's volume, not `a` (the base amount). The futures ticker has no best bid or
ask, so ccxt's has none.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from exchanges.gate.rest import BACKFILL, contract_size as raw_contract_size, raw_symbol
from exchanges.listings import sim_symbols
from framework.backfill import offline_market
from framework.events import Market
from framework.venue import MarketDataRules

SPOT_BOOK_LEVELS = (50, 400)  # spot.obu streams ccxt subscribes: 400 only when asked for exactly 400
FUTURES_BOOK_LIMIT = 100  # futures.order_book_update's deepest level


def contract_size(market: Market, symbol: str) -> Decimal | None:
    """Base units per contract of a futures symbol (normalize.py's sizes); spot amounts are coins."""
    return raw_contract_size(market, raw_symbol(market, symbol))


def ccxt_market(market: Market, symbol: str) -> dict[str, Any]:
    """The ccxt market entry of a unified symbol, as `gate.fetch_markets` gives what ccxt.pro reads: the id
    `BTC_USDT`, the type flags (socket and channel), `margin`, and for a perpetual the lower-case `settleId`
    (the `/futures/usdt/` path of the book snapshot) and the contract size."""
    size = contract_size(market, symbol)
    entry = offline_market(market, symbol, raw_symbol(market, symbol), size)
    entry["margin"] = False
    if market is Market.FUTURE:
        entry.update(settleId=entry["settleId"].lower(), contractSize=float(size), subType="linear")
    return entry


def book_limit(market: Market, depth: int) -> int:
    """Spot: the 50-level stream, or the 400-level one beyond 50; futures: always the 100-level stream (see the
    module docstring: a shallower one leaves levels that come into its top unknown)."""
    if market is Market.FUTURE:
        return FUTURES_BOOK_LIMIT
    return SPOT_BOOK_LEVELS[0] if depth <= SPOT_BOOK_LEVELS[0] else SPOT_BOOK_LEVELS[1]


def book_sequence(message: Any, market: Market) -> tuple[str, int, int, bool] | None:
    """A spot.obu push's (pair, U, u, full): each delta must start right after the last (Gate's rule; ccxt.pro
    reads only `u`). Futures books ccxt checks itself."""
    if market is not Market.SPOT or not isinstance(message, dict) or message.get("channel") != "spot.obu":
        return None
    result = message.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("u"), int):
        return None
    pair = str(result.get("s", "")).split(".")[1:2]
    last = result["u"]
    full = bool(result.get("full"))
    first = last if full else result.get("U")
    if not pair or not isinstance(first, int):
        return None
    return pair[0], first, last, full


MARKET_DATA = MarketDataRules(
    ccxt_id="gate",
    options=BACKFILL.options,
    ccxt_market=ccxt_market,
    contract_size=contract_size,
    timeframes=("1m", "5m", "15m", "1h"),
    book_limit=book_limit,
    book_sequence=book_sequence,
    unwatch_book_limit=True,  # ccxt un-watches the stream params['limit'] names
    checksum=False,
    quote_candle_volume=frozenset({Market.SPOT}),  # ccxt's spot candle volume is Gate's `v`, the quote volume
    listed=lambda market: sim_symbols("gate", market),
)
