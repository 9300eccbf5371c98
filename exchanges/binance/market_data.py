"""Binance public market data as ccxt.pro 4.5.90 reads it (`ccxt.pro.binance`: spot and USD-M perpetuals).

Every watch opens a stream socket of its own, `<ws base>/<stream id>` (ccxt numbers its streams 0, 1, …), and
sends `{"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 1}`; the venue answers `{"result": null,
"id": 1}` (an error `{"error": {"code", "msg"}, "id"}`). Spot streams are on `wss://stream.binance.com:9443/ws`;
USD-M ones on `wss://fstream.binance.com/public/ws` (`depth`, `trade`) or `/market/ws` (`ticker`, `kline_*`).
The venue pings with WebSocket ping frames that the socket library answers; ccxt sends no application ping.

Book: `<id>@depth@100ms` diffs, buffered until the REST snapshot (`GET /api/v3/depth`, `GET /fapi/v1/depth`,
`limit` = the watch's limit) arrives, then applied from its `lastUpdateId` on. Spot: each diff's `U` must be
the previous `u` + 1; USD-M: its `pu` must be the previous `u`. A break rejects the watch (ccxt's ChecksumError,
though Binance has no checksum) and drops the book; the next watch subscribes again and takes a new snapshot.
ccxt trims its book to the limit after every diff, so a level that leaves the top is only replaced from levels
the trimmed book still holds: `book_limit` asks for five times the wanted depth (at least 50), rounded up to a
limit USD-M accepts (5, 10, 20, 50, 100, 500, 1000).

Ticker: `watch_ticker` subscribes `<id>@ticker` (its `watchTicker` option), but `un_watch_ticker` unsubscribes the
`watchTickers` channel, `miniTicker` by default, on another socket: setting `watchTickers.name` to `ticker`
makes the un-watch undo the watch. Trades: `<id>@trade`; candles: `<id>@kline_<interval>`, Binance's interval
names being the unified timeframes. ccxt reads `lowercaseId` to name streams. USD-M quantities are in the base
coin (contract size 1), as in normalize.py.
"""

from __future__ import annotations

from typing import Any

from exchanges.binance.rest import BACKFILL, raw_symbol
from exchanges.listings import sim_symbols
from framework.backfill import offline_market
from framework.events import Market
from framework.venue import MarketDataRules

_BOOK_LIMITS = (5, 10, 20, 50, 100, 500, 1000)  # the snapshot limits USD-M accepts (spot takes any up to 5000)


def ccxt_market(market: Market, symbol: str) -> dict[str, Any]:
    """The ccxt market entry of a unified symbol, as `binance.parse_market` gives what ccxt.pro reads: the id and
    its lowercase stream name, the type flags (which pick the socket and the book's sequence rule)."""
    entry = offline_market(market, symbol, raw_symbol(market, symbol), None)
    entry["lowercaseId"] = entry["id"].lower()
    if market is Market.FUTURE:
        entry.update(contractSize=1.0, subType="linear")
    return entry


def book_limit(market: Market, depth: int) -> int:
    """The snapshot limit for a wanted depth: room below it for the levels ccxt's trimmed book needs to refill
    the top from (see the module docstring)."""
    wanted = max(5 * depth, 50)
    return next((limit for limit in _BOOK_LIMITS if limit >= wanted), _BOOK_LIMITS[-1])


MARKET_DATA = MarketDataRules(
    ccxt_id="binance",
    options={market: {**options, "watchTickers": {"name": "ticker"}} for market, options in BACKFILL.options.items()},
    ccxt_market=ccxt_market,
    contract_size=lambda market, symbol: None,
    timeframes=("1m", "3m", "5m", "15m", "30m", "1h", "4h", "1d"),
    book_limit=book_limit,
    checksum=False,
    listed=lambda market: sim_symbols("binance", market),
)
