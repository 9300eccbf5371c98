"""Gate trade history for backfill, read through ccxt: spot `GET /spot/my_trades`, USDT perpetuals
`GET /futures/usdt/my_trades_timerange` (what ccxt's `fetch_my_trades` calls for a swap market).

Limits (Gate APIv4 docs, "Pagination" and "Query personal trading records"):

- Every list takes `limit` up to 1000 rows (default 100) and answers newest first.
- `from` / `to` are whole seconds. Spot: the range may not exceed 30 days (one bound only → 7 days from it; none →
  the last 7 days; ccxt always sends both, `floor(since / 1000)` and `floor(until / 1000)`); more rows by `page`
  (from 1). Futures `my_trades_timerange`: no documented maximum span (30 days, as spot, keeps one request inside
  anything Gate may enforce); more rows by `offset` (from 0).

Gate filters by whole seconds, so the Backfiller halving a full window by the millisecond gets the same answer
again once the window is inside a second or two. `fetch_rows` therefore reads such a narrow request (at most
`PAGED_SECONDS` seconds asked) to its end, page after page (`page_params`), and returns only the rows inside the
asked milliseconds: a result shorter than a page then tells the Backfiller the window is complete.

Where ccxt's Gate trade differs from the stream's (`exchanges/gate/normalize.py`), `fix_row` takes normalize's
reading of the row Gate sent: ccxt has no clientOrderId (the user text is `info["text"]`, `t-` prefixed); it reads
the futures `create_time` with float arithmetic (`int(float × 1000)`) where the text is exact; a fee paid in GT or
points makes ccxt list two `fees` and leave `fee` empty ("GATEPOINT" where the stream says "POINT"); and its futures
cost uses the market's contract size where the stream uses normalize's.

Not covered: ccxt always sends `account` (spot, or `unified` for a unified account), so a classic account's margin
fills on a spot pair are not fetched; and the spot docs say `from` / `to` are "processed according to the order end
time", so a fill whose order ends after a window's `to` may be missing from that window's answer.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from exchanges.gate.normalize import FALLBACK_CONTRACT_SIZES, normalize
from exchanges.symbols import contract_size as registered_contract_size
from framework.backfill import BackfillRules
from framework.events import Market, Trade

DAY_MS = 24 * 3600 * 1000
PAGE_LIMIT = 1000  # docs "Pagination": limit defaults to 100, at most 1000
WINDOW_MS = 30 * DAY_MS  # spot docs: "The range not allowed to exceed 30 days"; futures: no documented maximum
PAGED_SECONDS = 3  # a request asking at most this many whole seconds is read page by page (see fetch_rows)
_CHANNELS = {Market.SPOT: "spot.usertrades", Market.FUTURE: "futures.usertrades"}


def raw_symbol(market: Market, symbol: str) -> str:
    """`BTC/USDT` or `BTC/USDT:USDT` → `BTC_USDT` (spot pair and USDT contract alike)."""
    base, quote = symbol.split(":")[0].split("/")
    return f"{base}_{quote}"


def contract_size(market: Market, raw: str) -> Decimal | None:
    """Base units per contract, as normalize counts them: registered metadata, else Gate's known sizes, else 1."""
    if market is Market.SPOT:
        return None
    return registered_contract_size("gate", raw) or FALLBACK_CONTRACT_SIZES.get(raw, Decimal(1))


def _millis(row: dict) -> Any:
    """The fill time in ms as exact text: `create_time_ms` when given, else `create_time` seconds × 1000.

    The futures `create_time` is a JSON number (`1514764800.123`): the parsed float's shortest text (`str`) is the
    number Gate wrote (up to 15 significant digits), so × 1000 in Decimal is exact by construction (ccxt multiplies
    the float and truncates).
    """
    if row.get("create_time_ms") not in (None, ""):
        return str(row["create_time_ms"])
    return Decimal(str(row["create_time"])).scaleb(3)


def stream_row(market: Market, info: dict) -> dict:
    """A REST history row as the stream's `*.usertrades` row, so normalize reads it as it reads the stream."""
    row = dict(info)
    if row.get("id") is None:  # futures `my_trades_timerange` names it `trade_id`
        row["id"] = row.get("trade_id")
    row["create_time_ms"] = _millis(row)
    return row


def as_trade(market: Market, info: dict) -> Trade:
    """The Trade the stream gives for the fill this REST history row (`ccxt_trade["info"]`) reports."""
    [trade] = normalize({"channel": _CHANNELS[market], "event": "update", "result": [stream_row(market, info)]}, market)
    return trade


def fix_row(market: Market, ccxt_trade: dict) -> dict:
    """ccxt's Gate trade with the stream's values where ccxt's differ or are missing.

    Each field `Backfiller.to_trade` reads is taken from normalize's reading of the row Gate sent (`info`): the
    client order id (`t-` text stripped; "apiv4" / "api" / "web" are Gate's marks, not ids → None), the exact
    millisecond, the fee actually charged (GT / POINT when the quote fee is zero), and the cost. The symbol stays
    ccxt's (it names ccxt's market entry).
    """
    trade = as_trade(market, ccxt_trade["info"])
    fixed = dict(ccxt_trade)
    fixed.update(
        id=trade.trade_id, order=trade.order_id, clientOrderId=trade.client_order_id, side=trade.side.value,
        amount=str(trade.amount), price=str(trade.price), cost=str(trade.cost), timestamp=trade.timestamp,
        takerOrMaker=None if trade.is_maker is None else ("maker" if trade.is_maker else "taker"),
        fee={"cost": None if trade.fee_cost is None else str(trade.fee_cost), "currency": trade.fee_currency},
    )
    return fixed


def page_params(market: Market, page: int, limit: int) -> dict:
    """The request parameters of page `page` (from 0) of one request: spot `page` from 1, futures row `offset`."""
    return {"page": page + 1} if market is Market.SPOT else {"offset": page * limit}


def _market(exchange: Any, symbol: str | None) -> Market:
    if symbol is not None:
        return Market.SPOT if exchange.market(symbol)["spot"] else Market.FUTURE
    return Market.SPOT if exchange.options.get("defaultType", "spot") == "spot" else Market.FUTURE


def _exact_ms(row: dict) -> int:
    return int(Decimal(_millis(row["info"])))


async def fetch_rows(exchange: Any, symbol: str | None, since: int | None, limit: int | None,
                     params: dict) -> list[dict]:
    """ccxt's `fetch_my_trades`, read to the end when the request is too narrow for Gate's whole-second filter.

    A wide request, or one whose first page is not full, is answered as ccxt answers it (the Backfiller halves a
    full window). One asking at most `PAGED_SECONDS` whole seconds whose first page is full is read on by `page` /
    `offset` until a page comes back short (newest first: once ccxt drops a page's rows before `since`, every later
    page is older still), and only the rows in [since, until] ms are returned, each once.
    """
    rows = await exchange.fetch_my_trades(symbol, since=since, limit=limit, params=params)
    until = params.get("until")
    if limit is None or since is None or until is None or len(rows) < limit:
        return rows
    if until // 1000 - since // 1000 >= PAGED_SECONDS:
        return rows
    market, batch, page = _market(exchange, symbol), rows, 1
    while len(batch) >= limit:
        batch = await exchange.fetch_my_trades(symbol, since=since, limit=limit,
                                               params={**params, **page_params(market, page, limit)})
        rows = rows + batch
        page += 1
    inside = {row["id"]: row for row in rows if since <= _exact_ms(row) <= until}
    return list(inside.values())


BACKFILL = BackfillRules(
    ccxt_id="gate",
    history_client_ids=frozenset({Market.SPOT, Market.FUTURE}),  # every trade row carries the order's `text`
    # `type` picks ccxt's endpoint (spot → /spot/my_trades, swap → /futures/{settle}/my_trades_timerange).
    options={Market.SPOT: {"defaultType": "spot"}, Market.FUTURE: {"defaultType": "swap"}},
    # `settle` is the futures path parameter: Gate's id is lower case, the offline market's settleId is "USDT".
    params={Market.FUTURE: {"settle": "usdt"}},
    window_ms=WINDOW_MS,
    page_limit=PAGE_LIMIT,
    raw_symbol=raw_symbol,
    contract_size=contract_size,
    fetch_rows=fetch_rows,
    fix_row=fix_row,
)
