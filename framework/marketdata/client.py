"""The ccxt.pro client of one public connection: built from the venue's MarketDataRules, pointed at the
simulator (or any endpoint override) with offline markets, else at the live venue."""

from __future__ import annotations

from typing import Any, Iterable
from urllib.parse import urlsplit

from framework.events import ConnectionKey
from framework.venue import Endpoints, MarketDataRules


def ccxt_pro() -> Any:
    """ccxt's WebSocket package, imported on the first public connection (it takes a good part of a second)."""
    import ccxt.pro

    return ccxt.pro


def point_urls(value: Any, endpoints: Endpoints, hostname: str | None) -> Any:
    """Every ccxt URL (nested dicts of them) moved onto `endpoints`, keeping its path: `wss://host/x` →
    `<endpoints.ws>/x`, `https://host/x` → `<endpoints.rest>/x`."""
    if isinstance(value, dict):
        return {k: point_urls(v, endpoints, hostname) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    url = value.replace("{hostname}", hostname) if hostname else value
    parts = urlsplit(url)
    path = parts.path.rstrip("/") if parts.path != "/" else ""
    if parts.scheme in ("ws", "wss"):
        return endpoints.ws.rstrip("/") + path + ("/" if value.endswith("/") and path else "")
    if parts.scheme in ("http", "https"):
        return endpoints.rest.rstrip("/") + path
    return value


def ccxt_client(key: ConnectionKey, rules: MarketDataRules, endpoints: Endpoints | None,
                symbols: Iterable[str] = ()) -> Any:
    """A ccxt.pro exchange for one (venue, market). Offline (endpoints given) its URLs point there and its
    markets are `rules.ccxt_market` of `symbols` (add more later with `add_markets`): nothing is downloaded."""
    pro = ccxt_pro()
    config: dict[str, Any] = {"enableRateLimit": endpoints is None, **rules.ccxt_config,
                              "options": dict(rules.options.get(key.market, {}))}
    exchange = getattr(pro, rules.ccxt_id)(config)
    if endpoints is not None:
        exchange.urls["api"] = point_urls(exchange.urls["api"], endpoints, getattr(exchange, "hostname", None))
        add_markets(exchange, key, rules, symbols)
    return exchange


def add_markets(exchange: Any, key: ConnectionKey, rules: MarketDataRules, symbols: Iterable[str]) -> None:
    """Teach an offline client the ccxt market entries of more symbols (those it has stay)."""
    known = dict(exchange.markets or {})
    wanted = [s for s in symbols if s not in known]
    if not wanted and known:
        return
    entries = [*known.values(), *(rules.ccxt_market(key.market, symbol) for symbol in wanted)]
    exchange.set_markets(entries)
