"""Bybit v5 public market data as ccxt.pro 4.5.90 reads it (`ccxt.pro.bybit`).

One public socket per category: spot `wss://stream.bybit.com/v5/public/spot`, linear (USDT and USDC
perpetuals) `.../v5/public/linear`; ccxt picks it from the market's type and `linear` flag. Every watch is
`{"op": "subscribe", "req_id": n, "args": [topic]}` and every un-watch `{"op": "unsubscribe", ...}`, matched to
Bybit's ack by `req_id`; a refusal (`"success": false`) rejects the watch with an ExchangeError carrying
`ret_msg`. ccxt pings (`{"req_id": n, "op": "ping"}`) every 18 s and takes `"ret_msg": "pong"` as the answer.

Topics: `tickers.<id>` (a snapshot, then on linear deltas merged into the last ticker), `publicTrade.<id>`,
`kline.<1|3|5|15|30|60|240|D…>.<id>` and `orderbook.<limit>.<id>` with limit 1, 50, 200 or 1000 (50 when none
is given). The book is a WS snapshot and then deltas; ccxt resets on every snapshot and applies every delta
as it comes. It reads neither `u` nor `seq` and Bybit sends no checksum, so a lost delta goes unnoticed
until Bybit re-sends a snapshot (as it does after a problem on its side; the simulator's "gap" fault does
the same).

`un_watch_order_book(symbol)` without `params={"limit": n}` unsubscribes `orderbook.50.<id>` on spot but
`orderbook.500.<id>` on linear, a depth Bybit took offline in 2025 (and one `watch_order_book` never asks for):
Bybit refuses it with "handler not found", ccxt raises an ExchangeError, and the linear book stays subscribed.

Linear sizes are in the base coin (ccxt's contractSize is 1), as in rest.py and normalize.py.
"""

from __future__ import annotations

from typing import Any

from exchanges.bybit.rest import BACKFILL, raw_symbol
from exchanges.listings import sim_symbols
from framework.backfill import offline_market
from framework.events import Market
from framework.venue import MarketDataRules

BOOK_LIMITS = (1, 50, 200, 1000)  # watch_order_book's accepted limits on spot and linear alike


def ccxt_market(market: Market, symbol: str) -> dict[str, Any]:
    """The ccxt market entry of a unified symbol with what ccxt.pro reads: the Bybit id (`BTCUSDT`, USDC
    perpetuals `BTCPERP`), type and `linear` flag (they pick the socket), settle coin, contract size 1."""
    entry = offline_market(market, symbol, raw_symbol(market, symbol), None)
    if market is Market.FUTURE:
        entry["contractSize"] = 1.0
    return entry


def listed(market: Market) -> list[str]:
    """What the simulator's public streams serve: its spot pairs, and on linear its USDT and USDC perpetuals
    (its inverse contracts, `BTC/USD:BTC`, would be on /v5/public/inverse, which it does not serve)."""
    return [s for s in sim_symbols("bybit", market)
            if market is Market.SPOT or s.split(":")[0].split("/")[1] == s.partition(":")[2]]


def book_limit(market: Market, depth: int) -> int:
    """The smallest book Bybit streams that holds `depth` levels a side (1000 at most)."""
    return next((limit for limit in BOOK_LIMITS if limit >= depth), BOOK_LIMITS[-1])


def book_sequence(message: Any, market: Market) -> tuple[str, int, int, bool] | None:
    """An `orderbook.<depth>.<id>` frame's (id, u, u, snapshot): `u` rises by one per delta, and ccxt.pro never
    reads it. A snapshot (or `u` = 1, Bybit's restart of the stream) starts over."""
    if not isinstance(message, dict) or not str(message.get("topic", "")).startswith("orderbook."):
        return None
    data = message.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return None
    u = data["u"]
    return str(data.get("s")), u, u, message.get("type") == "snapshot" or u == 1


MARKET_DATA = MarketDataRules(
    ccxt_id="bybit",
    options=BACKFILL.options,
    ccxt_market=ccxt_market,
    timeframes=("1m", "5m", "15m", "1h"),
    book_limit=book_limit,
    book_sequence=book_sequence,
    unwatch_book_limit=True,  # ccxt un-watches the stream params['limit'] names
    checksum=False,
    listed=listed,
)
