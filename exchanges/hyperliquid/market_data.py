"""Hyperliquid perpetuals' public market data as ccxt.pro 4.5.90 reads it (`ccxt.pro.hyperliquid`).

One socket, `wss://api.hyperliquid.xyz/ws`, for every feed (and the private ones); each subscription is
`{"method": "subscribe", "subscription": {"type": ..., "coin": "BTC"}}`, the coin being the market's `baseName`:
- `watch_order_book` → `l2Book`: every frame is a full snapshot of 20 levels a side, which ccxt resets its book
  to. There is no sequence number and no checksum: a lost frame leaves the book one snapshot behind until the
  next. ccxt sends no depth (`limit` only trims what it returns), so `book_limit` is None.
- `watch_ticker` → `activeAssetCtx`: ccxt's ticker has `close` = `last` = the book's mid (`midPx`), `bid` / `ask`
  from `impactPxs`, `previousClose` (`prevDayPx`) and `quoteVolume` (`dayNtlVlm`); no high, low or base volume.
- `watch_trades` → `trades`; `watch_ohlcv` → `candle` with the unified timeframe as the interval.
Each `un_watch_*` sends the same subscription with `"method": "unsubscribe"` and returns on the venue's
`subscriptionResponse` echo. ccxt pings with `{"method": "ping"}` every 20 s (the venue answers
`{"channel": "pong"}`). An `{"channel": "error"}` frame rejects every pending watch on the socket.

Sizes are in the coin (contract size 1). ccxt's market id is the perp's asset index (what its order actions
send as `a`), its `baseName` the coin the feeds are named by.
"""

from __future__ import annotations

from typing import Any

from exchanges.hyperliquid.rest import BACKFILL, raw_symbol
from framework.backfill import offline_market
from framework.events import Market
from framework.venue import MarketDataRules

# Mainnet perp asset indices (the `meta` universe's order) of the coins the simulator lists.
ASSET_INDEX = {"BTC": 0, "ETH": 1, "SOL": 5, "AVAX": 6, "BNB": 7, "LTC": 10, "DOGE": 12, "LINK": 18, "XRP": 25,
               "ADA": 65}


def ccxt_market(market: Market, symbol: str) -> dict[str, Any]:
    """The ccxt market entry of a perp, as `hyperliquid.parse_market` gives it: the asset index as id and baseId,
    the coin as baseName (the feeds' `coin`, and what ccxt maps their frames back by). A coin missing from the
    table keeps its name as id: the feeds never send the index."""
    coin = raw_symbol(market, symbol)
    index = str(ASSET_INDEX.get(coin, coin))
    entry = offline_market(market, symbol, index, None)
    entry.update(baseId=index, baseName=coin, info={"name": coin})
    return entry


MARKET_DATA = MarketDataRules(
    ccxt_id="hyperliquid",
    options=BACKFILL.options,
    ccxt_market=ccxt_market,
    book_limit=lambda market, depth: None,
    checksum=False,
    ccxt_config=BACKFILL.ccxt_config,
)
