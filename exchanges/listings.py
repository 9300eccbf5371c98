"""The symbols each venue lists offline: the simulator's table, the quote and settle rules of the live venues,
and the nearest listed symbols to one that is not there."""

from __future__ import annotations

import difflib

from framework.events import Market

# Bases the simulator lists on every venue (it fills any of them in the venue's own wire format).
SIM_BASES = ("BTC", "ETH", "SOL", "XRP", "BNB", "DOGE", "ADA", "LTC", "LINK", "AVAX")

# (exchange, market) → the quote (spot) or settle (future) currencies the venue lists; a linear future settles in
# its quote. Inverse futures (`BTC/USD:BTC`) settle in their base: INVERSE lists the venues that have them.
QUOTES: dict[tuple[str, Market], tuple[str, ...]] = {
    ("binance", Market.SPOT): ("USDT", "USDC", "FDUSD", "BTC"),
    ("binance", Market.FUTURE): ("USDT", "USDC"),
    ("bybit", Market.SPOT): ("USDT", "USDC"),
    ("bybit", Market.FUTURE): ("USDT", "USDC"),
    ("mexc", Market.SPOT): ("USDT", "USDC"),
    ("mexc", Market.FUTURE): ("USDT",),
    ("gate", Market.SPOT): ("USDT",),
    ("gate", Market.FUTURE): ("USDT",),
    ("bitget", Market.SPOT): ("USDT", "USDC"),
    ("bitget", Market.FUTURE): ("USDT",),
    ("hyperliquid", Market.FUTURE): ("USDC",),  # every Hyperliquid perp is margined and settled in USDC
}
INVERSE = frozenset({("bybit", Market.FUTURE)})


def sim_symbols(exchange: str, market: Market) -> list[str]:
    """Every symbol the simulator lists for a venue's market, in the unified spelling."""
    quotes = QUOTES.get((exchange, market), ())
    if market is Market.SPOT:
        symbols = [f"{base}/{quote}" for base in SIM_BASES for quote in quotes if base != quote]
    else:
        symbols = [f"{base}/{quote}:{quote}" for base in SIM_BASES for quote in quotes]
        if (exchange, market) in INVERSE:
            symbols += [f"{base}/USD:{base}" for base in SIM_BASES]
    return symbols


def follows_rules(exchange: str, market: Market, symbol: str) -> bool:
    """Whether a symbol has the shape and quote (settle) the venue lists for that market; the base is not checked."""
    pair, colon, settle = symbol.partition(":")
    base, _, quote = pair.partition("/")
    if not base or not quote or (market is Market.SPOT) == bool(colon):
        return False
    if market is Market.FUTURE and (exchange, market) in INVERSE and settle == base and quote == "USD":
        return True
    return quote in QUOTES.get((exchange, market), ()) and (market is Market.SPOT or settle == quote)


def check_symbol(exchange: str, market: Market, symbol: str, *, live: bool) -> str | None:
    """Why `symbol` is not listed on the venue's market, with the nearest listed ones; None when it is.

    The simulator's table is complete; for the live venue there is no offline table, so only its rules are
    checked (the caller says so)."""
    if symbol in sim_symbols(exchange, market) or (live and follows_rules(exchange, market, symbol)):
        return None
    listed = sim_symbols(exchange, market)
    nearest = difflib.get_close_matches(symbol.upper(), listed, n=3, cutoff=0.5)
    if not nearest:  # the same base with the venue's quotes, else the first listed
        nearest = [s for s in listed if s.split("/")[0] == symbol.split("/")[0].upper()][:3] or listed[:3]
    where = f"{exchange} {market.value}" + ("" if live else " (simulator)")
    return f"{symbol} is not listed on {where}: nearest {', '.join(nearest)}"
