"""MEXC trade history for backfill, read through ccxt: spot `GET /api/v3/myTrades`, USDT-M contracts
`GET /api/v1/private/order/list/order_deals` (what ccxt's `fetch_my_trades` calls for a swap market).

Limits (MEXC docs):
- Spot "Account Trade List" (https://www.mexc.com/api-docs/spot-v3/spot-account-trade/account-trade-list):
  symbol required, startTime / endTime, `limit` "Default 100; max 100"; "Only the transaction records in the
  past 1 month can be queried". No documented span limit (users report nothing back for a `startTime` older
  than 7 days: mexcdevelop/mexc-api-sdk#56).
- Contract "Get all transaction details of the user's order" (contract_v1_en, `order/list/order_deals`):
  `start_time` "the default is to push forward 7 days, and the maximum span is 90 days", `page_num` (default 1),
  `page_size` "default 20, maximum 100"; rows newest first.
- One window is 7 days for both: the contract's default span, well inside its 90 days and the spot month.
  Nothing older than 30 days is asked for (`history_ms`, spot's month: one value serves both markets, and a
  contract gap over a month old is given up with it).

Every kind of fill the stream counts comes back: neither endpoint filters by kind (contract rows carry
`category` 1 limit, 2 liquidation take-over, 3 close, 4 ADL, and all are returned).

What ccxt 4.5 gets wrong, and the two BackfillRules hooks that put it right (`fetch_rows` replaces
`exchange.fetch_my_trades`, `fix_row` is applied to every row before `to_trade`; see their docstrings):
- Contract side: ccxt maps `side` "1" → buy, "2" → sell and leaves 3 / 4 as "3" / "4"; MEXC's codes are
  1 open long and 2 close short (buys), 3 open short and 4 close long (sells), as normalize.py reads them.
- ccxt reads a contract row as one only when it has `positionMode` (the documented row has none: then the
  amount, time and fee come out empty and ccxt's `since` filter silently drops the row). `fetch_rows` asks
  order_deals itself and `fix_row` builds every field from the row.
- ccxt sends the framework's `until` to order_deals as an unknown `until=` parameter and asks
  `end_time = since + 90 days`: a window narrower than that would page through rows outside it (newest
  first) and never reach the older ones. `fetch_rows` sends `end_time = until`.
- ccxt parses JSON numbers as floats; the stream keeps their text. `fetch_rows` re-reads the contract
  answer with exact Decimals (the numbers as MEXC wrote them).
- Contract amounts stay in contracts (ccxt and normalize.py alike); the cost is vol × price × contract size
  with normalize.py's size (`exchanges.symbols.contract_size`, BTC_USDT 0.0001).
- Client order id: ccxt never sets it; spot rows carry `clientOrderId` when MEXC sends it (ccxt's sample row
  has none), contract rows `externalOid` when MEXC sends one (the documented row has none). A row without one
  gets its order's from the Backfiller: spot `GET /api/v3/order` (`clientOrderId`, read by ccxt) and contract
  `GET /api/v1/private/order/get/{order_id}`, whose `externalOid` ccxt's parse_order leaves in `info`
  (`order_client_id` reads it). The fee coin is the row's own text (ccxt would map it through
  commonCurrencies).
"""

from __future__ import annotations

import json
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal
from typing import Any

from exchanges.mexc.normalize import _FUTURE_SIDES, EXCHANGE
from exchanges.symbols import contract_size as registered_contract_size
from framework.backfill import BackfillRules
from framework.events import Market

DAY_MS = 24 * 3600 * 1000
WINDOW_MS = 7 * DAY_MS  # contract default span (max 90 days); spot: history of the past month only
PAGE_LIMIT = 100  # spot myTrades `limit` ≤ 100; contract order_deals `page_size` ≤ 100
HISTORY_MS = 30 * DAY_MS  # spot: "Only the transaction records in the past 1 month can be queried"
FUTURE_SIDES = _FUTURE_SIDES  # normalize.py's: 1 open long, 2 close short (buys); 3 open short, 4 close long (sells)
_EXACT = Context(prec=1000, Emax=MAX_EMAX, Emin=MIN_EMIN)


def raw_symbol(market: Market, symbol: str) -> str:
    """Spot `BTC/USDT` → `BTCUSDT`; contract `BTC/USDT:USDT` → `BTC_USDT`."""
    base, quote = symbol.split(":")[0].split("/")
    return f"{base}{quote}" if market is Market.SPOT else f"{base}_{quote}"


def contract_size(market: Market, raw: str) -> Decimal | None:
    """Base units per contract, as normalize.py counts them (registered size, else 1); spot has none."""
    if market is Market.SPOT:
        return None
    return registered_contract_size(EXCHANGE, raw) or Decimal(1)


def _text(value: Any) -> str | None:
    """A number as exact text (Decimal / int / str as given; a float by its shortest repr)."""
    return None if value is None or value == "" else str(value)


def _contract_side(value: Any) -> str:
    try:
        return FUTURE_SIDES[int(value)].value
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"mexc contract deal with an unknown side {value!r}") from None


def fix_row(market: Market, row: dict) -> dict:
    """A ccxt trade of MEXC's history made to read as the stream's Trade (idempotent: it reads `info` only).

    Contract: every field from the row as normalize.py reads the push (`id`, `orderId`, `side` 1/2 buy and
    3/4 sell, `vol` contracts, `price`, cost = vol × price × size, `fee` / `feeCurrency` as sent, `isTaker`
    (or ccxt's `taker`), `timestamp`, `externalOid`). Spot: ccxt's reading plus `clientOrderId` and the raw
    `commissionAsset`.
    """
    info = row.get("info") or {}
    fixed = dict(row)
    if market is Market.SPOT:
        fixed["clientOrderId"] = info.get("clientOrderId") or None
        if info.get("commissionAsset") not in (None, ""):
            fixed["fee"] = {**(row.get("fee") or {}), "cost": _text(info.get("commission")),
                            "currency": info["commissionAsset"]}
        return fixed
    amount, price = Decimal(_text(info["vol"])), Decimal(_text(info["price"]))
    size = contract_size(market, str(info.get("symbol") or "")) or Decimal(1)
    taker = info.get("isTaker", info.get("taker"))
    fee = _text(info.get("fee"))
    fixed.update(
        id=str(info["id"]),
        order=str(info["orderId"]),
        clientOrderId=info.get("externalOid") or None,
        side=_contract_side(info.get("side")),
        amount=str(amount),
        price=str(price),
        cost=str(_EXACT.multiply(_EXACT.multiply(amount, price), size)),
        fee={"cost": fee, "currency": info.get("feeCurrency") or None},
        takerOrMaker=None if taker is None else ("taker" if taker in (True, "true", 1, "1") else "maker"),
        timestamp=int(info["timestamp"]),
    )
    return fixed


def order_client_id(market: Market, order: dict) -> str | None:
    """The client id of a ccxt `fetch_order` answer: spot `clientOrderId`, contract `externalOid` (from `info`)."""
    info = order.get("info") or {}
    value = order.get("clientOrderId") if market is Market.SPOT else info.get("externalOid")
    return str(value) if value not in (None, "") else None


def _exact_rows(exchange: Any, rows: list) -> list:
    """The contract rows re-read from ccxt's last HTTP answer with exact Decimals (else the float rows)."""
    text = getattr(exchange, "last_http_response", None)
    try:
        exact = json.loads(text, parse_float=Decimal)["data"] if isinstance(text, str) else None
    except (ValueError, TypeError, KeyError):
        exact = None
    if not isinstance(exact, list) or len(exact) != len(rows):
        return rows
    same = all(isinstance(a, dict) and isinstance(b, dict) and a.get("id") == b.get("id") for a, b in zip(exact, rows))
    return exact if same else rows


async def fetch_rows(exchange: Any, symbol: str | None, since: int | None, limit: int | None,
                     params: dict) -> list[dict]:
    """One page of fills as ccxt trades, every row the venue sent (the caller counts them to judge a full page).

    Spot: ccxt's `fetch_my_trades` as it is (`since` → startTime, `until` → endTime, `limit`). Contract: the
    request ccxt builds (`symbol` id, `start_time`, `page_size`) with `end_time` = `until` instead of
    `since + 90 days`, `page_num` 1, then each row, re-read with exact numbers, parsed by ccxt as a contract
    row whether or not it has `positionMode` (nothing dropped: the window filter is the caller's; `fix_row`
    then gives the side and the rest).
    """
    if exchange.markets is None:
        await exchange.load_markets()
    market = exchange.market(symbol)
    if market.get("spot"):
        return await exchange.fetch_my_trades(symbol, since, limit, params)
    rest = dict(params)
    until = rest.pop("until", None)
    request: dict[str, Any] = {"symbol": market["id"], "page_num": 1}
    if since is not None:
        request["start_time"] = since
    if until is not None:
        request["end_time"] = until
    if limit is not None:
        request["page_size"] = limit
    response = await exchange.contractPrivateGetOrderListOrderDeals(exchange.extend(request, rest))
    rows = _exact_rows(exchange, exchange.safe_list(response, "data", []))
    trades = []
    for row in rows:
        parsed = exchange.parse_trade({"positionMode": None, **row}, market)  # ccxt's contract branch
        parsed["info"] = row  # fix_row reads it
        trades.append(parsed)
    return trades


_RULES: dict[str, Any] = {
    "ccxt_id": "mexc",
    "options": {Market.SPOT: {"defaultType": "spot"}, Market.FUTURE: {"defaultType": "swap"}},
    # `page_num` is "mandatory" in the contract docs (default 1); spot needs nothing beyond ccxt's request.
    "params": {Market.SPOT: {}, Market.FUTURE: {"page_num": 1}},
    "window_ms": WINDOW_MS,
    "page_limit": PAGE_LIMIT,
    "history_ms": HISTORY_MS,
    "raw_symbol": raw_symbol,
    "contract_size": contract_size,
    "fetch_rows": fetch_rows,
    "fix_row": fix_row,
    "order_client_id": order_client_id,
}
BACKFILL = BackfillRules(**_RULES)
