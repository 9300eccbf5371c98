"""Bybit v5 trade history for backfill, read through ccxt: `GET /v5/execution/list` (spot = category spot,
future = category linear).

Docs: https://bybit-exchange.github.io/docs/v5/order/execution and .../v5/enum#exectype

- One request spans at most 7 days ("If both are passed, the rule is endTime - startTime <= 7 days") and
  returns at most 100 rows ("limit [1, 100]. Default: 50"), newest first (sorted by execTime descending);
  the symbol is optional, but asked per symbol here like every venue.
- Linear quantities are in the base coin (USDT and USDC perpetuals and dated futures alike): a contract
  is one coin, as normalize.py reads `execQty`.
- ccxt's `fetch_my_trades` always sends `execType=Trade` (ccxt PR #21801), which leaves out the other
  fills the stream counts: AdlTrade, BustTrade (liquidation), BlockTrade, MovePosition, FutureSpread and
  UNKNOWN. `execType` takes one value, so the backfill asks with NO execType filter (`fetch_rows`,
  below: ccxt's request without that default) and drops what is not a fill — Funding, Settle, Delivery —
  row by row in `fix_row`, AFTER the page was counted (a page full of funding rows is still a full page).
- `fix_row` also gives the ccxt trade what the stream's Trade has and ccxt's differs in: the client
  order id (`orderLinkId`, which ccxt leaves in `info`) and the fee coin (`feeCurrency` when the row has
  one, else Bybit's spot fee currency instruction exactly as normalize.py applies it; ccxt guesses from
  the fee's sign alone and calls a zero taker fee on a spot buy a quote-coin fee).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from loguru import logger

from exchanges.bybit.normalize import _FILL_EXEC_TYPES, _NON_FILL_EXEC_TYPES, _fee_currency
from framework.backfill import BackfillRules
from framework.events import Market, Side

WINDOW_MS = 7 * 24 * 3600 * 1000  # v5/order/execution: endTime - startTime <= 7 days
PAGE_LIMIT = 100  # v5/order/execution: limit [1, 100]
CATEGORIES = {Market.SPOT: "spot", Market.FUTURE: "linear"}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def raw_symbol(market: Market, symbol: str) -> str:
    """Bybit's symbol for a unified one (the inverse of normalize.py's reading).

    Spot `BTC/USDT` → `BTCUSDT`; linear `BTC/USDT:USDT` → `BTCUSDT`, USDC perpetuals `BTC/USDC:USDC` →
    `BTCPERP`, dated futures `BTC/USDT:USDT-250221` → `BTCUSDT-21FEB25` and `BTC/USDC:USDC-250221` → `BTC-21FEB25`.
    """
    pair, _, contract = symbol.partition(":")
    base, quote = pair.split("/")
    if market is Market.SPOT:
        return f"{base}{quote}"
    _, _, expiry = contract.partition("-")
    if expiry:
        stem = f"{base}USDT" if quote == "USDT" else base
        return f"{stem}-{int(expiry[4:6])}{_MONTHS[int(expiry[2:4]) - 1]}{expiry[:2]}"
    return f"{base}PERP" if quote == "USDC" else f"{base}{quote}"


def contract_size(market: Market, raw: str) -> Decimal | None:
    """Linear `execQty` is in the base coin (one contract = one coin); spot has no contracts."""
    return None if market is Market.SPOT else Decimal(1)


async def fetch_rows(exchange: Any, symbol: str | None, since: int | None, limit: int | None,
                     params: dict) -> list[dict]:
    """ccxt's bybit `fetch_my_trades` without its `execType=Trade` default: every execution row, parsed.

    The same request ccxt builds (category from the market, `symbol` id, `limit`, `startTime`, `until` →
    `endTime`), the same signed call and the same `parse_trades`; only `execType` is left out unless the
    caller's params give one. Non-fill rows stay in (the caller counts the page, then `fix_row` drops them).
    """
    if exchange.markets is None:
        await exchange.load_markets()
    market = exchange.market(symbol) if symbol is not None else None
    category, rest = exchange.get_bybit_type("fetchMyTrades", market, dict(params))
    request: dict[str, Any] = {"category": category}
    if market is not None:
        request["symbol"] = market["id"]
    if limit is not None:
        request["limit"] = limit
    if since is not None:
        request["startTime"] = since
    request, rest = exchange.handle_until_option("endTime", request, rest)
    response = await exchange.privateGetV5ExecutionList(exchange.extend(request, rest))
    rows = exchange.add_pagination_cursor_to_result(response)
    return exchange.parse_trades(rows, market, since, limit)


def fix_row(market: Market, row: dict) -> dict | None:
    """A ccxt trade of /v5/execution/list made to read as the stream's Trade; None for a non-fill row.

    Funding / Settle / Delivery give None (normalize.py gives [] for them); an execType normalize.py does
    not know is logged and gives None too (the stream dead-letters such a frame). Empty or missing
    execType (classic spot rows do not carry one) counts as a Trade.
    """
    info = row.get("info") or {}
    exec_type = info.get("execType") or "Trade"
    if exec_type in _NON_FILL_EXEC_TYPES:
        return None
    if exec_type not in _FILL_EXEC_TYPES:
        logger.bind(exec_type=exec_type, row=info).warning("bybit history row of an unknown execType skipped")
        return None
    fixed = dict(row)
    fixed["clientOrderId"] = info.get("orderLinkId") or None
    fee = row.get("fee") or {}
    if fee.get("cost") is not None:
        coin = info.get("feeCurrency") or _fee_currency(
            row["symbol"], market, Side.parse(row["side"]), Decimal(str(fee["cost"])), info.get("isMaker"))
        fixed["fee"] = {**fee, "currency": coin}
    return fixed


BACKFILL = BackfillRules(
    ccxt_id="bybit",
    history_client_ids=frozenset(CATEGORIES),  # every execution row carries orderLinkId ("" for none)
    options={
        # fetchMarkets.types: load_markets (live) reads only the category this key trades.
        Market.SPOT: {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}},
        Market.FUTURE: {"defaultType": "swap", "defaultSubType": "linear", "fetchMarkets": {"types": ["linear"]}},
    },
    window_ms=WINDOW_MS,
    page_limit=PAGE_LIMIT,
    raw_symbol=raw_symbol,
    contract_size=contract_size,
    fetch_rows=fetch_rows,
    fix_row=fix_row,
)
