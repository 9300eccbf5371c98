"""Unified symbols (`BTC/USDT`, `BTC/USDT:USDT`) from venue symbols: market metadata first, then a fixed offline rule.

Also the contract sizes `Trade.contract_size` / `base_amount` read (market metadata, kept out of the store).
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal

from framework.events import Market
from framework.instruments import contract_size, register_contract_sizes  # noqa: F401 - re-exported

# Longest first, so "FDUSD" wins over "USD" and "USDT" over "USD".
QUOTE_CURRENCIES = tuple(
    sorted(
        (
            "USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USDE", "DAI", "USD1", "RLUSD", "PYUSD",
            "BTC", "ETH", "BNB", "EUR", "TRY", "BRL", "JPY", "GBP", "AUD", "MXN", "ARS", "UAH",
            "ZAR", "PLN", "RON", "IDR", "COP", "CZK", "USD",
        ),
        key=len,
        reverse=True,
    )
)

_SEPARATORS = re.compile(r"[_\-/]")
_metadata: dict[tuple[str, Market], dict[str, str]] = {}


def register_markets(exchange: str, market: Market, mapping: dict[str, str]) -> None:
    """Teach the unifier a venue's own symbol table (e.g. from ccxt `load_markets`)."""
    _metadata.setdefault((exchange, market), {}).update(mapping)
    unify.cache_clear()


def split_raw(raw: str) -> tuple[str, str]:
    """`BTCUSDT` / `BTC_USDT` / `BTC-USDT` → (`BTC`, `USDT`); raises ValueError when no quote is known."""
    text = raw.strip().upper()
    parts = [p for p in _SEPARATORS.split(text) if p]
    if len(parts) >= 2:
        return parts[0], parts[1]
    for quote in QUOTE_CURRENCIES:
        if text.endswith(quote) and len(text) > len(quote):
            return text[: -len(quote)], quote
    raise ValueError(f"cannot tell base from quote in symbol {raw!r}")


@functools.lru_cache(maxsize=65536)
def unify(exchange: str, market: Market, raw: str, settle: str | None = None) -> str:
    """The unified symbol of a venue symbol; linear futures settle in their quote unless `settle` says otherwise."""
    known = _metadata.get((exchange, market), {}).get(raw)
    if known is not None:
        return known
    base, quote = split_raw(raw)
    if market is Market.SPOT:
        return f"{base}/{quote}"
    return f"{base}/{quote}:{(settle or quote).upper()}"
