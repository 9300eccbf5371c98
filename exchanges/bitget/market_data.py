"""Bitget (v2) public market data as ccxt.pro 4.5.90 reads it (`ccxt.pro.bitget`, classic account, not UTA).

One public socket for both markets, `wss://ws.bitget.com/v2/ws/public`; every subscription is
`{"op": "subscribe", "args": [{"instType": "SPOT" | "USDT-FUTURES", "channel": ..., "instId": "BTCUSDT"}]}`
and ccxt sends the text "ping" (Bitget answers "pong"). Channels: `ticker`, `trade`, `candle<1m|5m|15m|30m|1H|4H|1D>`
and `books` — the only incremental book: a full snapshot, then updates whose `checksum` is the signed CRC32 of
the top 25 levels as "bid1price:bid1size:ask1price:ask1size:…", written with the texts the frames carried.
ccxt checks it on every update and, on a mismatch, unsubscribes the book and rejects the watch with a
ChecksumError; the next watch subscribes again and starts from a new snapshot. It reads no sequence number,
so a lost update shows up as the next update's checksum mismatch.

`watch_order_book(symbol, limit)` with limit 1, 5, 15 or 50 takes the `books<limit>` channel instead: a snapshot
every push, no checksum (and `books50` is a UTA channel, not a v2 one). So `book_limit` is always None: the
`books` channel, all levels, which ccxt does not trim to a limit.

USDT-FUTURES sizes are in the base coin: no contract multiplier (as in rest.py and normalize.py).

Timeframes: ccxt's `un_watch_ohlcv` waits for `unsubscribe:candles:<Bitget interval>` but resolves
`unsubscribe:candles:<unified timeframe>`, so for 1h/4h/1d (Bitget "1H", "4H", "1D") it never returns. The
framework watches only timeframes whose Bitget name is the unified one.
"""

from __future__ import annotations

from typing import Any

from exchanges.bitget.rest import BACKFILL, raw_symbol
from framework.backfill import offline_market
from framework.events import Market
from framework.venue import MarketDataRules


def ccxt_market(market: Market, symbol: str) -> dict[str, Any]:
    """The ccxt market entry of a unified symbol, as `bitget.parse_market` would give it for what ccxt.pro
    reads: the venue id (`BTCUSDT` in both markets), type flags and the settle coin (USDT-FUTURES is chosen
    from it), contract size 1 (sizes in the base coin)."""
    entry = offline_market(market, symbol, raw_symbol(market, symbol), None)
    entry["stock"] = False
    if market is Market.FUTURE:
        entry["contractSize"] = 1.0
    return entry


MARKET_DATA = MarketDataRules(
    ccxt_id="bitget",
    options=BACKFILL.options,
    ccxt_market=ccxt_market,
    timeframes=("1m", "5m", "15m", "30m"),
    book_limit=lambda market, depth: None,
    checksum=True,
    ccxt_config=BACKFILL.ccxt_config,
)
