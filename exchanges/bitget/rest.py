"""Bitget (v2) trade history for backfill, read through ccxt's `fetch_my_trades`.

Endpoints (what ccxt calls for a classic, non-UTA account, which is what the v2 stream serves):
  spot     GET /api/v2/spot/trade/fills       https://www.bitget.com/api-doc/spot/trade/Get-Fills
  futures  GET /api/v2/mix/order/fills        https://www.bitget.com/api-doc/contract/trade/Get-Order-Fills
           (productType=USDT-FUTURES; rows in `data.fillList`)

Limits (docs, Request Parameters): `limit` "Default: 100, max 100" on both. Spot: "The interval between
startTime and endTime must not exceed 90 days" and "It only supports to get the data within 90 days";
futures: "The maximum time span supported is three months". Rows come newest first (`idLessThan` pages to
older rows); the framework does not use that cursor, it halves a window whose page comes back full.
ccxt sends `since` → startTime and `until` → endTime (`handle_until_option('endTime', …)`).

What ccxt makes of a row (bitget.parse_trade), against what normalize.py gives for the same fill:
- id = tradeId, order = orderId, side, price = priceAvg (spot) / price (futures), amount = size / baseVolume
  (base coin on USDT-FUTURES too: no contract multiplier), cost = amount / quoteVolume, timestamp = cTime,
  takerOrMaker = tradeScope as sent: all as the stream's `fill` channel.
- fee: totalFee is negative when paid (docs samples: spot "-0.0000007", futures "-0.02161596"; a BGB-deducted
  futures fill "-0.017118519726"); ccxt (Python, 4.5) negates it whatever `deduction` says, since its
  `deduction` test never holds, so fee.cost is positive when paid, as ours. `fix_row` recomputes it from
  `info` anyway (−totalFee, the raw feeCoin), so a ccxt that honours `deduction`, or renames a coin through
  commonCurrencies (TONCOIN → TON), cannot make the backfilled Trade differ from the streamed one.
- clientOrderId: ccxt never sets it and neither history endpoint returns a clientOid; `fix_row` takes it from
  `info` should Bitget add it. Until then the Backfiller asks each order's (ccxt `fetch_order`: spot
  `GET /api/v2/spot/trade/orderInfo`, futures `GET /api/v2/mix/order/detail`; both answer `clientOid`).
- tradeScope: the spot Fill-Channel docs spell maker "marker"; `fix_row` maps it as normalize.py does.

Options: `uta: False`, so ccxt does not probe `/api/v3/account/settings` before its first call (and pick the
v3 UTA endpoint for a unified account: such an account is not served by the v2 stream either).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from exchanges.bitget.normalize import _IS_MAKER
from framework.backfill import BackfillRules
from framework.events import Market

DAY_MS = 24 * 3600 * 1000
WINDOW_MS = 90 * DAY_MS  # spot: startTime..endTime ≤ 90 days; futures: ≤ three months; history kept 90 days
PAGE_LIMIT = 100  # both endpoints: default 100, max 100
PRODUCT_TYPE = {Market.FUTURE: "USDT-FUTURES"}


def raw_symbol(market: Market, symbol: str) -> str:
    """`BTC/USDT` or `BTC/USDT:USDT` → `BTCUSDT` (spot and USDT-FUTURES alike)."""
    base, quote = symbol.split(":")[0].split("/")
    return f"{base}{quote}"


def fix_row(market: Market, row: dict) -> dict:
    """A ccxt trade made to say what the stream says of the same fill (fee, fee coin, client id, maker flag).

    Meant to run on every ccxt row before `Backfiller.to_trade`; returns a new dict, `row` is not changed.
    """
    info = row.get("info") or {}
    fixed = dict(row)
    detail = info.get("feeDetail")
    if isinstance(detail, list):  # futures rows: a list (one entry per fee coin; the stream reads the first)
        detail = detail[0] if detail else None
    if isinstance(detail, dict):
        total, coin = detail.get("totalFee"), detail.get("feeCoin")
        try:
            cost = None if total is None or total == "" else str(Decimal(str(total)).copy_negate())
        except InvalidOperation:
            cost = (row.get("fee") or {}).get("cost")
        fixed["fee"] = {"cost": cost, "currency": coin or None}
    if not fixed.get("clientOrderId"):
        client = info.get("clientOid") or info.get("clientOId")
        if client:
            fixed["clientOrderId"] = str(client)
    scope = info.get("tradeScope")
    if scope in _IS_MAKER:
        fixed["takerOrMaker"] = "maker" if _IS_MAKER[scope] else "taker"
    return fixed


def contract_size(market: Market, raw: str) -> Decimal | None:
    """USDT-FUTURES sizes are in the base coin (normalize.py applies no multiplier): none here either."""
    return None


def _params(market: Market) -> dict[str, Any]:
    return {"productType": PRODUCT_TYPE[market]} if market in PRODUCT_TYPE else {}


BACKFILL = BackfillRules(
    ccxt_id="bitget",
    options={
        Market.SPOT: {"defaultType": "spot", "uta": False},
        Market.FUTURE: {"defaultType": "swap", "defaultSubType": "linear", "uta": False},
    },
    params={Market.FUTURE: _params(Market.FUTURE)},
    window_ms=WINDOW_MS,
    page_limit=PAGE_LIMIT,
    raw_symbol=raw_symbol,
    contract_size=contract_size,
    fix_row=fix_row,
    history_ms=WINDOW_MS,
    # ccxt renames some Bitget coins (TONCOIN → TON…); our symbols keep the venue's names.
    ccxt_config={"commonCurrencies": {}},
)
