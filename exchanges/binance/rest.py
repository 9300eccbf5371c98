"""Binance trade history for backfill, read through ccxt: spot `GET /api/v3/myTrades`, USD-M `GET /fapi/v1/userTrades`.

Spot requests span at most 24 h (startTime..endTime) and USD-M at most 7 days; both return up to 1000 rows
and need the symbol. The rows carry the same trade id (`id` = stream `t`) and order id as the stream, but no
client order id: the Backfiller asks each order's (ccxt `fetch_order`: spot `GET /api/v3/order`, USD-M
`GET /fapi/v1/order`, "Query Order", whose answer has `clientOrderId`).
"""

from __future__ import annotations

from framework.backfill import BackfillRules
from framework.events import Market


def raw_symbol(market: Market, symbol: str) -> str:
    """`BTC/USDT` or `BTC/USDT:USDT` → `BTCUSDT`."""
    base, quote = symbol.split(":")[0].split("/")
    return f"{base}{quote}"


BACKFILL = BackfillRules(
    ccxt_id="binance",
    options={Market.SPOT: {"defaultType": "spot"}, Market.FUTURE: {"defaultType": "future"}},
    window_ms=24 * 3600 * 1000,
    page_limit=1000,
    raw_symbol=raw_symbol,
)
