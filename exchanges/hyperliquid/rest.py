"""Hyperliquid fill history for backfill, read through ccxt: `POST /info` `userFillsByTime` by wallet address.

Docs (info-endpoint, "Retrieve a user's fills by time"): startTime and endTime inclusive, "at most 2000
fills per response and only the 10000 most recent fills are available"; no span limit is documented.
The request is unsigned: ccxt sends `user` = its `walletAddress` (our `Credentials.wallet_address`).
Rows are the stream's WsFill (same `tid`, `oid`, `px`, `sz`, `fee`, `cloid`), for every coin of the
account (there is no coin filter): ccxt keeps the asked symbol's rows, which also drops spot (`@107`)
and HIP-3 (`dex:COIN`) fills, as the stream's normalize does. `aggregateByTime` stays off (ccxt does
not send it), so each row is one fill with the stream's trade id.
"""

from __future__ import annotations

import json
from typing import Any

from exchanges.hyperliquid.normalize import SETTLE
from framework.backfill import BackfillRules
from framework.events import Market

PAGE_ROWS = 2000  # "Returns at most 2000 fills per response"
WINDOW_MS = 24 * 3600 * 1000  # none documented: one request per day of gap (see below)


def raw_symbol(market: Market, symbol: str) -> str:
    """`BTC/USDC:USDC` → `BTC`, the coin the stream and the info rows name (the Trade's `symbol_raw`)."""
    return symbol.split("/")[0]


def fix_row(market: Market, row: dict) -> dict:
    """A ccxt trade made equal to the stream's: the fee as the venue reports it, the cloid, USDC by default.

    ccxt's parse_trade adds `builderFee` to `fee`, but `fee` already includes it (the stream's Trade
    takes `fee` alone); it leaves the cloid in `info` only; it sets no fee currency when an older row has
    no `feeToken`, where normalize says USDC. Meant for a `BackfillRules` row hook (not wired yet).
    """
    info = row.get("info") or {}
    fixed = dict(row)
    fee = dict(row.get("fee") or {})
    if info.get("fee") is not None:
        fee["cost"] = str(info["fee"])
    fee["currency"] = info.get("feeToken") or SETTLE
    fixed["fee"] = fee
    fixed["clientOrderId"] = info.get("cloid") or None
    return fixed


def venue_rows(exchange: Any, rows: list) -> int:
    """How many rows the venue returned for the last call, before ccxt kept only the asked symbol's.

    A page is full when the venue sent `PAGE_ROWS` rows of any coin: judging by the symbol's rows alone
    would stop early on an account that trades several coins.
    """
    response = getattr(exchange, "last_json_response", None)  # kept only with enableLastJsonResponse
    if response is None:
        text = getattr(exchange, "last_http_response", None)  # ccxt keeps the body text by default
        try:
            response = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            response = None
    return len(response) if isinstance(response, list) else len(rows)


BACKFILL = BackfillRules(
    ccxt_id="hyperliquid",
    # Fill rows carry `cloid` when the order had one (nktkas SDK UserFillsResponse: `cloid` optional).
    history_client_ids=frozenset({Market.FUTURE}),
    options={Market.FUTURE: {"defaultType": "swap"}},
    # No extra params: userFillsByTime returns every kind of fill the stream counts (liquidations, ADL,
    # TWAP slices); ccxt maps `until` to endTime.
    params={Market.FUTURE: {}},
    window_ms=WINDOW_MS,
    page_limit=PAGE_ROWS,
    # One request returns every coin, but through ccxt a symbol is what keeps spot and HIP-3 rows out and
    # gives the Trade its market; the framework fetches each known symbol.
    needs_symbol=True,
    raw_symbol=raw_symbol,
    fix_row=fix_row,
    page_rows=venue_rows,
)
