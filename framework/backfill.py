"""REST backfill through ccxt: the fills since the last stored one (minus an overlap), as the same Trades.

After every (re)connect, and at start, each symbol of a key is fetched with ccxt's `fetch_my_trades`
from `last stored fill − overlap` (or `now − lookback` when nothing is stored), page by page and
window by window within the venue's limits. Each row becomes a Trade with the same dedup key the
stream gives, `source="rest"`; dedup absorbs the overlap and any replay.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterable
from urllib.parse import urlsplit

import attrs
import ccxt.async_support as ccxt_async
from loguru import logger

from framework.errors import AuthError, ConfigError, ConnectionLost, RateLimited
from framework.events import ConnectionKey, Market, Source, Trade, now_ms
from framework.retry import REST_CALL

if TYPE_CHECKING:
    from tenacity import AsyncRetrying

    from exchanges.connector import Credentials
    from exchanges.spec import Endpoints


@attrs.frozen(kw_only=True)
class BackfillRules:
    """How one venue's trade history is read through ccxt."""

    ccxt_id: str
    options: dict[Market, dict] = attrs.field(factory=dict)  # ccxt options per market (defaultType…)
    params: dict[Market, dict] = attrs.field(factory=dict)  # extra fetch_my_trades params per market
    window_ms: int = 24 * 3600 * 1000  # longest [start, end] one request may span
    page_limit: int = 100
    needs_symbol: bool = True  # False: one call returns every symbol (symbol=None)
    raw_symbol: Any = None  # (market, unified) -> venue symbol, for offline market tables
    contract_size: Any = None  # (market, raw) -> Decimal | None, for offline market tables
    history_ms: int | None = None  # how far back the venue keeps fills (older requests are refused)
    ccxt_config: dict = attrs.field(factory=dict)  # extra ccxt constructor settings (e.g. commonCurrencies)
    fetch_rows: Any = None  # async (exchange, symbol, since, limit, params) -> ccxt trades; None: fetch_my_trades
    fix_row: Any = None  # (market, ccxt trade) -> ccxt trade, or None for a row that is not a fill
    page_rows: Any = None  # (exchange, rows) -> rows the venue sent (when ccxt filtered some out)
    credentials_map: dict[str, str] = attrs.field(
        factory=lambda: {"apiKey": "api_key", "secret": "secret", "password": "passphrase",
                         "walletAddress": "wallet_address"}
    )


def _rewrite(value: Any, live_rest: str, target: str, hostname: str | None) -> Any:
    """Point ccxt's API URLs at `target`: the venue's live REST base → target, else scheme+host → target."""
    if isinstance(value, dict):
        return {k: _rewrite(v, live_rest, target, hostname) for k, v in value.items()}
    if not isinstance(value, str):
        return value
    url = value.replace("{hostname}", hostname) if hostname else value
    if url.startswith(live_rest):
        return target + url[len(live_rest):]
    parts = urlsplit(url)
    return target + parts.path if parts.scheme in ("http", "https") else url


def offline_market(market: Market, symbol: str, raw: str, contract_size: Decimal | None) -> dict:
    """A ccxt market entry built from our own symbol tables (no load_markets call)."""
    base, quote = symbol.split(":")[0].split("/")
    settle = symbol.split(":")[1].split("-")[0] if ":" in symbol else None
    spot = market is Market.SPOT
    return {
        "id": raw, "symbol": symbol, "base": base, "quote": quote, "settle": settle, "baseId": base,
        "quoteId": quote, "settleId": settle, "type": "spot" if spot else "swap", "spot": spot, "swap": not spot,
        "future": False, "option": False, "contract": not spot, "linear": None if spot else True,
        "inverse": None if spot else False, "contractSize": None if spot else str(contract_size or 1),
        "active": True, "precision": {}, "limits": {}, "info": {},
    }


class Backfiller:
    """Fetches one key's fill history through ccxt and hands it to the pool as `source="rest"` Trades."""

    def __init__(
        self,
        key: ConnectionKey,
        rules: BackfillRules,
        credentials: Credentials,
        live_endpoints: Endpoints,
        endpoints: Endpoints | None,
        *,
        retry_policy: AsyncRetrying | None = None,
        overlap_ms: int = 60_000,
        lookback_ms: int = 24 * 3600 * 1000,
    ) -> None:
        self.key = key
        self.rules = rules
        self.credentials = credentials
        self.live_endpoints = live_endpoints
        self.endpoints = endpoints  # None: the live venue
        self.retry_policy = retry_policy or REST_CALL
        self.overlap_ms = overlap_ms
        self.lookback_ms = lookback_ms
        self._exchange: Any = None
        self._log = logger.bind(key=str(key))

    def _client(self, symbols: Iterable[str]) -> Any:
        if self._exchange is not None:
            return self._exchange
        config: dict[str, Any] = {"enableRateLimit": True, **self.rules.ccxt_config,
                                  "options": dict(self.rules.options.get(self.key.market, {}))}
        for ccxt_name, ours in self.rules.credentials_map.items():
            value = getattr(self.credentials, ours, None)
            if value:
                config[ccxt_name] = value
        exchange = getattr(ccxt_async, self.rules.ccxt_id)(config)
        exchange.number = str  # keep the venue's text: our Decimals are exact
        if self.endpoints is not None:  # the simulator (or another override): no market download
            exchange.urls["api"] = _rewrite(
                exchange.urls["api"], self.live_endpoints.rest.rstrip("/"), self.endpoints.rest.rstrip("/"),
                getattr(exchange, "hostname", None),
            )
            self._offline_markets(exchange, symbols)
            exchange.enableRateLimit = False  # the simulator has no rate limits to respect; live venues do
        self._exchange = exchange
        return exchange

    def _offline_markets(self, exchange: Any, symbols: Iterable[str]) -> None:
        markets = []
        for symbol in symbols:
            raw = self.rules.raw_symbol(self.key.market, symbol)
            size = self.rules.contract_size(self.key.market, raw) if self.rules.contract_size else None
            markets.append(offline_market(self.key.market, symbol, raw, size))
        exchange.set_markets(markets)

    async def close(self) -> None:
        exchange, self._exchange = self._exchange, None
        if exchange is not None:
            await exchange.close()

    async def fetch(self, symbol: str | None, since: int, until: int | None = None) -> list[Trade]:
        """Every fill of `symbol` in [since, until], once each, oldest first (see `pages`)."""
        found: dict[tuple, Trade] = {}
        async for page in self.pages(symbol, since, until):
            for trade in page:
                found.setdefault(trade.dedup_key, trade)
        return sorted(found.values(), key=lambda t: (t.timestamp, t.trade_id))

    async def pages(self, symbol: str | None, since: int, until: int | None = None) -> AsyncIterator[list[Trade]]:
        """The fills of `symbol` in [since, until], a page at a time (memory stays small however long
        the gap). The range is cut into the venue's longest windows; after a full page the window is
        read on from the page's edges, or split in halves when the page spans it all. Rows at the
        edges may come twice: dedup downstream keeps one.
        """
        exchange = self._client([symbol] if symbol else [])
        until = until or now_ms()
        if self.rules.history_ms is not None:  # the venue refuses to look further back than it keeps
            since = max(since, until - self.rules.history_ms + 60_000)
        span = self.rules.window_ms - 2  # room for the 1 ms margins `_call` adds on each side
        start = since
        while start <= until:
            end = min(start + span - 1, until)
            async for page in self._window(exchange, symbol, start, end):
                yield page
            start = end + 1

    async def _window(self, exchange: Any, symbol: str | None, start: int, end: int) -> AsyncIterator[list[Trade]]:
        rows = await self._call(exchange, symbol, start, end)
        fix = self.rules.fix_row
        fixed = rows if fix is None else [fix(self.key.market, r) for r in rows]
        page = [t for t in (self.to_trade(r) for r in fixed if r is not None) if start <= t.timestamp <= end]
        if page:
            yield page
        sent = len(rows) if self.rules.page_rows is None else self.rules.page_rows(exchange, rows)
        if sent < self.rules.page_limit:  # every row the venue sent counts, fill or not
            return
        # A full page covered [first, last]: the rest lies before `first` (a newest-first venue) or
        # after `last` (oldest-first); edge milliseconds are read again. Every window read on is
        # strictly smaller than this one, so this ends.
        first, last = (min(t.timestamp for t in page), max(t.timestamp for t in page)) if page else (start, end)
        if start < first or last < end:
            if start < first:
                async for more in self._window(exchange, symbol, start, first if first < end else end - 1):
                    yield more
            if last < end:
                async for more in self._window(exchange, symbol, last if last > start else start + 1, end):
                    yield more
            return
        if end <= start:  # more fills in one millisecond than a page holds: the venue cannot say more
            self._log.bind(start=start, rows=len(rows)).warning("a full page within one millisecond")
            return
        middle = (start + end) // 2
        async for more in self._window(exchange, symbol, start, middle):
            yield more
        async for more in self._window(exchange, symbol, middle + 1, end):
            yield more

    async def _call(self, exchange: Any, symbol: str | None, start: int, end: int) -> list[dict]:
        # One millisecond of margin each side: some venues read startTime/endTime as open bounds;
        # rows outside [start, end] are dropped by the caller.
        params = dict(self.rules.params.get(self.key.market, {}))
        params.setdefault("until", end + 1)
        since, limit = max(start - 1, 0), self.rules.page_limit
        async for attempt in self.retry_policy.copy():
            with attempt:
                try:
                    if self.rules.fetch_rows is not None:
                        return await self.rules.fetch_rows(exchange, symbol, since, limit, params)
                    return await exchange.fetch_my_trades(symbol, since=since, limit=limit, params=params)
                except ccxt_async.AuthenticationError as exc:
                    raise AuthError(self.key.exchange, f"trade history refused: {exc}") from exc
                except ccxt_async.RateLimitExceeded as exc:
                    raise RateLimited(self.key.exchange, str(exc)) from exc
                except ccxt_async.OperationFailed as exc:  # ccxt's "may succeed if retried" (network, 5xx)
                    raise ConnectionLost(self.key.exchange, f"trade history: {exc}") from exc
                except ccxt_async.ArgumentsRequired as exc:
                    raise ConfigError(f"{self.key.exchange} trade history needs a symbol: {exc}") from exc
        raise AssertionError("unreachable")

    def to_trade(self, row: dict) -> Trade:
        """A ccxt trade (numbers as text) → our Trade, with the stream's dedup key."""
        fee = row.get("fee") or {}
        market = self._exchange.market(row["symbol"]) if self._exchange is not None else {}
        info = row.get("info") or {}
        amount, price = Decimal(str(row["amount"])), Decimal(str(row["price"]))
        cost = row.get("cost")
        return Trade(
            exchange=self.key.exchange,
            market=self.key.market,
            account=self.key.account,
            symbol=row["symbol"],
            symbol_raw=(self.rules.raw_symbol(self.key.market, row["symbol"]) if self.rules.raw_symbol
                        else market.get("id") or row["symbol"]),
            trade_id=str(row["id"]),
            order_id=str(row["order"]),
            client_order_id=row.get("clientOrderId") or None,
            side=row["side"],
            amount=amount,
            price=price,
            cost=Decimal(str(cost)) if cost is not None else amount * price,
            fee_cost=None if fee.get("cost") is None else Decimal(str(fee["cost"])),
            fee_currency=fee.get("currency"),
            is_maker=None if row.get("takerOrMaker") is None else row["takerOrMaker"] == "maker",
            timestamp=int(row["timestamp"]),
            source=Source.REST,
            raw=info,
        )

