"""MEXC public market data as ccxt.pro 4.5.90 reads it (`ccxt.pro.mexc`).

Spot: `wss://wbs-api.mexc.com/ws` (the user stream's socket without a listenKey). `{"method": "SUBSCRIPTION",
"params": [channel]}` is acked `{"id": 0, "code": 0, "msg": channel}`; the pushes are binary protobuf
`PushDataV3ApiWrapper` frames that ccxt decodes with its own copy of the schema:
`spot@public.aggre.bookTicker.v3.api.pb@100ms@BTCUSDT` (the ticker is the best bid / ask and their sizes only,
stamped with `sendTime`), `spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT`, `spot@public.kline.v3.api.pb@BTCUSDT@Min1`
and `spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT` (`fromVersion` / `toVersion` ranged deltas).
USDT-M contracts: `wss://contract.mexc.com/edge` (the private socket too), `{"method": "sub.ticker" | "sub.deal"
| "sub.depth" | "sub.kline", "param": {"symbol": "BTC_USDT"[, "interval": "Min1"]}}`, JSON-number pushes
`push.ticker`, `push.deal` (a list), `push.depth` (`version`), `push.kline`; amounts in contracts.
ccxt pings `{"method": "ping"}` every 8 s on both (spot answers `{"msg": "PONG"}`, contracts `{"channel": "pong"}`).
`un_watch_*` sends `UNSUBSCRIPTION` / `unsub.*` and forgets the topic at once (it waits for no ack).

The book: ccxt caches the first 25 deltas (option `watchOrderBook.snapshotDelay`), then fetches a REST
snapshot (`GET /api/v3/depth` → `lastUpdateId`; `GET /api/v1/contract/depth/{symbol}` → `data.version`) and
applies the cached deltas whose `fromVersion` (contracts: `version`) is at least the snapshot's. It never
checks that deltas follow each other: a lost delta leaves the book wrong, with no error, until the book is
unwatched and watched again (the venue's docs ask for `fromVersion == previous toVersion + 1`). No checksum.
`watch_order_book`'s limit changes nothing (neither the channel nor the snapshot, and the book is not cut),
so `book_limit` is None. Contract amounts (book, trades, candle volume) stay in contracts, the ticker's
`baseVolume` is `volume24` × contractSize: `contract_size` is normalize.py's (BTC_USDT 0.0001, ETH_USDT 0.01,
else 1).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from google.protobuf.message import DecodeError

from exchanges.listings import sim_symbols
from exchanges.mexc.proto import MarketPushDataV3ApiWrapper
from exchanges.mexc.rest import BACKFILL, contract_size, raw_symbol
from framework.backfill import offline_market
from framework.events import Market
from framework.venue import MarketDataRules


def ccxt_market(market: Market, symbol: str) -> dict[str, Any]:
    """The ccxt market entry of a unified symbol, with what ccxt.pro's mexc reads: the venue id (`BTCUSDT`
    spot, `BTC_USDT` contract, also how pushes are matched back), the type flags and the contract size."""
    raw = raw_symbol(market, symbol)
    size = contract_size(market, raw)
    entry = offline_market(market, symbol, raw, size)
    if size is not None:
        entry["contractSize"] = float(size)  # as ccxt's parse_market gives it (safe_number)
    return entry


def base_units(market: Market, symbol: str) -> Decimal | None:
    """Base units per contract of the amounts ccxt reports (None on spot: they are the base coin)."""
    return contract_size(market, raw_symbol(market, symbol))


def book_sequence(message: Any, market: Market) -> tuple[str, int, int, bool] | None:
    """A depth push's (symbol, first, last version, False): spot protobuf `fromVersion`..`toVersion`, contract
    `begin`..`end`. Each must start right after the last (MEXC's rule); ccxt.pro does not check it."""
    if market is Market.SPOT:
        if not isinstance(message, (bytes, bytearray)) or b"aggre.depth" not in message:
            return None
        try:
            push = MarketPushDataV3ApiWrapper.FromString(bytes(message))
        except DecodeError:
            return None  # ccxt's own reading decides what this frame is
        if push.WhichOneof("body") != "publicAggreDepths":
            return None
        depths = push.publicAggreDepths
        try:
            return push.symbol, int(depths.fromVersion), int(depths.toVersion), False
        except ValueError:
            return None
    if not isinstance(message, dict) or message.get("channel") != "push.depth":
        return None
    data = message.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("begin"), int) or not isinstance(data.get("end"), int):
        return None
    return str(message.get("symbol")), data["begin"], data["end"], False


MARKET_DATA = MarketDataRules(
    ccxt_id="mexc",
    options=BACKFILL.options,
    ccxt_market=ccxt_market,
    contract_size=base_units,
    timeframes=("1m", "5m", "15m", "1h"),
    book_limit=lambda market, depth: None,
    book_sequence=book_sequence,
    checksum=False,
    listed=lambda market: sim_symbols("mexc", market),
    ccxt_config=BACKFILL.ccxt_config,
)
