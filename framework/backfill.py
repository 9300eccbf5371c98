"""REST backfill through ccxt: the fills since the last stored one (minus an overlap), as the same Trades.

After every (re)connect, and at start, each symbol of a key is fetched with ccxt's `fetch_my_trades`
from `last stored fill − overlap` (or `now − lookback` when nothing is stored), page by page and
window by window within the venue's limits. Each row becomes a Trade with the same dedup key the
stream gives, `source="rest"`; dedup absorbs the overlap and any replay. A row without a client order
id (Binance, Bitget and MEXC futures history have none) gets its order's, so it reaches its owner.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterable
from urllib.parse import urlsplit

import asyncio
from collections import OrderedDict

import attrs
from loguru import logger

from framework.errors import AuthError, ConfigError, ConnectionLost, RateLimited
from framework.events import ConnectionKey, Market, Source, Trade, now_ms
from framework.retry import REST_CALL
from framework.sync_log import redact_exception

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from tenacity import AsyncRetrying

    from framework.venue import AccountRules, Credentials, Endpoints


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
    # Markets whose history rows carry the client order id of every order that has one: a row without one
    # is an order placed without one, not worth a query. Elsewhere such a row's order is queried over REST.
    history_client_ids: frozenset[Market] = frozenset()
    order_client_id: Any = None  # (market, ccxt order) -> client order id | None; None: ccxt's clientOrderId


def _ccxt() -> Any:
    """ccxt's async package, imported on the first backfill: the venue packages import this module for
    BackfillRules, and a program that never backfills should not pay half a second for ccxt."""
    import ccxt.async_support

    return ccxt.async_support


def ccxt_client_order_id(market: Market, order: dict) -> str | None:
    """The client order id ccxt read from a venue's order (`fetch_order`), or None."""
    value = order.get("clientOrderId")
    return str(value) if value not in (None, "") else None


_UNKNOWN = ""  # cached: the venue does not know the order, or it has no client id


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
        "id": raw, "symbol": symbol, "base": base, "quote": quote, "settle": settle, "baseId": base, "baseName": base,
        "quoteId": quote, "settleId": settle, "type": "spot" if spot else "swap", "spot": spot, "swap": not spot,
        "future": False, "option": False, "contract": not spot, "linear": None if spot else True,
        "inverse": None if spot else False, "contractSize": None if spot else str(contract_size or 1),
        "active": True, "precision": {}, "limits": {}, "info": {},
    }


def rest_client(key: ConnectionKey, rules: BackfillRules, credentials: Credentials, live_endpoints: Endpoints,
                endpoints: Endpoints | None, symbols: Iterable[str] = ()) -> Any:
    """A ccxt (async, REST) client of one key with its credentials; numbers kept as the venue's text. Offline
    (`endpoints` given: the simulator) its URLs point there, its markets come from our symbol tables and it does
    not rate-limit itself; live, ccxt's limiter spaces the calls."""
    ccxt_async = _ccxt()
    config: dict[str, Any] = {"enableRateLimit": True, **rules.ccxt_config,
                              "options": dict(rules.options.get(key.market, {}))}
    for ccxt_name, ours in rules.credentials_map.items():
        value = getattr(credentials, ours, None)
        if value:
            config[ccxt_name] = value
    exchange = getattr(ccxt_async, rules.ccxt_id)(config)
    exchange.number = str  # keep the venue's text: our Decimals are exact
    if endpoints is not None:  # the simulator (or another override): no market download
        exchange.urls["api"] = _rewrite(
            exchange.urls["api"], live_endpoints.rest.rstrip("/"), endpoints.rest.rstrip("/"),
            getattr(exchange, "hostname", None),
        )
        offline_markets(exchange, key, rules, symbols)
        exchange.enableRateLimit = False  # the simulator has no rate limits to respect; live venues do
    return exchange


def offline_markets(exchange: Any, key: ConnectionKey, rules: BackfillRules, symbols: Iterable[str]) -> None:
    """Teach an offline ccxt client the market entries of these symbols (from our symbol tables)."""
    markets = []
    for symbol in symbols:
        raw = rules.raw_symbol(key.market, symbol)
        size = rules.contract_size(key.market, raw) if rules.contract_size else None
        markets.append(offline_market(key.market, symbol, raw, size))
    exchange.set_markets(markets)


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
        # Client order ids the process already knows (the store's `orders`, recent order updates):
        # async (order_ids) -> {order_id: client_order_id}. Set by the connection; asked before any REST query.
        self.known_client_ids: Callable[[list[str]], Awaitable[dict[str, str]]] | None = None
        self.resolve_owners = True  # False: rows as the venue gives them (an audit compares fills, not owners)
        self.order_queries = 4  # REST order queries in flight at once
        self.owner_cache_size = 100_000  # order id -> client order id answers kept (a client id never changes)
        self._owners: OrderedDict[str, str] = OrderedDict()  # order id -> client id, or _UNKNOWN for good
        self._exchange: Any = None
        self._log = logger.bind(key=str(key))

    def _client(self, symbols: Iterable[str]) -> Any:
        if self._exchange is not None:
            known = self._exchange.markets or {}
            missing = [s for s in symbols if s not in known]
            if missing and self.endpoints is not None:  # offline markets: a symbol asked later joins them
                offline_markets(self._exchange, self.key, self.rules, [*known, *missing])
            return self._exchange
        self._exchange = rest_client(self.key, self.rules, self.credentials, self.live_endpoints, self.endpoints,
                                     symbols)
        return self._exchange

    async def account_snapshot(self, rules: AccountRules, symbols: Iterable[str] = ()) -> list[Any]:
        """The account as the venue's REST says now: BalanceUpdate / PositionUpdate with `source="rest"`, read by
        the venue (`rules.fetch`), or by it from ccxt's `fetch_balance` / `fetch_positions` answers
        (`rules.snapshot`). ccxt's unified figures are never taken as they are: on every venue here some of them
        differ from ours (totals with unrealized PnL, margin left out, floats, times in seconds)."""
        key = self.key
        exchange = self._client(symbols)
        if rules.fetch is not None:  # the venue reads its account itself
            events = await rules.fetch(exchange, key.market, now_ms())
            return [e if e.account == key.account else attrs.evolve(e, account=key.account) for e in events]
        balance = await exchange.fetch_balance(dict(rules.balance_params(key.market)))
        stamp = int(balance.get("timestamp") or now_ms())
        positions = (await exchange.fetch_positions(None, dict(rules.positions_params(key.market)))
                     if key.market in rules.positions else [])
        events = rules.snapshot(key.market, balance, positions, stamp)  # the venue reads ccxt's answers
        return [e if e.account == key.account else attrs.evolve(e, account=key.account) for e in events]

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
                yield await self.with_owners(page) if self.resolve_owners else page
            start = end + 1

    # owners ----------------------------------------------------------------------------------------------
    async def with_owners(self, page: list[Trade]) -> list[Trade]:
        """`page` with every fill's client order id: from the row, else from `known_client_ids`, else from
        the venue (its order queried over REST). A fill whose owner cannot be known is marked
        `owner_unknown=True` (it goes by symbol). Never raises for a failed lookup: it is logged.
        """
        orders = {t.order_id: t.symbol for t in page if not t.client_order_id}
        if not orders:
            return page
        found = await self._client_ids(orders)
        return [
            t if t.client_order_id else
            attrs.evolve(t, client_order_id=found[t.order_id]) if found.get(t.order_id) else
            attrs.evolve(t, owner_unknown=True)
            for t in page
        ]

    async def _client_ids(self, orders: dict[str, str]) -> dict[str, str]:
        found = {o: self._owners[o] for o in orders if self._owners.get(o)}
        wanted = [o for o in orders if o not in found]
        if wanted and self.known_client_ids is not None:
            try:
                known = await self.known_client_ids(wanted)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the lookup is a shortcut: the venue can still say
                self._log.bind(error=repr(redact_exception(exc))).warning("known client ids lookup failed")
                known = {}
            for order_id, client_id in (known or {}).items():
                if order_id in orders and client_id:
                    found[order_id] = self._remember(order_id, str(client_id))
            wanted = [o for o in wanted if o not in found]
        if self.key.market in self.rules.history_client_ids:
            return found
        wanted = [o for o in wanted if o not in self._owners]  # the venue said already: no owner
        if wanted:
            exchange = self._client(sorted({orders[o] for o in wanted}))
            limit = asyncio.Semaphore(self.order_queries)

            async def query(order_id: str) -> None:
                async with limit:
                    client_id = await self._query_client_id(exchange, order_id, orders[order_id])
                if client_id:
                    found[order_id] = client_id

            async with asyncio.TaskGroup() as tasks:
                for order_id in wanted:
                    tasks.create_task(query(order_id), name=f"order-owner-{self.key}-{order_id}")
        return found

    def _remember(self, order_id: str, client_id: str) -> str:
        self._owners[order_id] = client_id
        self._owners.move_to_end(order_id)
        while len(self._owners) > self.owner_cache_size:
            self._owners.popitem(last=False)
        return client_id

    async def _query_client_id(self, exchange: Any, order_id: str, symbol: str) -> str | None:
        """The order's client id as the venue reports it (ccxt `fetch_order`); None when it cannot be known.

        A definitive answer (the order, or the venue saying it does not know it) is cached; a failure to ask
        (network, rate limit, refused credentials, after the retry policy) is logged and asked again next time.
        """
        ccxt_async = _ccxt()
        read = self.rules.order_client_id or ccxt_client_order_id
        log = self._log.bind(order_id=order_id, symbol=symbol)
        try:
            async for attempt in self.retry_policy.copy():
                with attempt:
                    try:
                        order = await exchange.fetch_order(order_id, symbol)
                    except ccxt_async.RateLimitExceeded as exc:
                        raise RateLimited(self.key.exchange, f"order query: {redact_exception(exc)}") from exc
                    except ccxt_async.OperationFailed as exc:  # network, 5xx: may succeed if retried
                        raise ConnectionLost(self.key.exchange, f"order query: {redact_exception(exc)}") from exc
        except asyncio.CancelledError:
            raise
        except ccxt_async.AuthenticationError as exc:
            log.bind(error=repr(redact_exception(exc))).error("order query refused: owner unknown")
            return None
        except ccxt_async.BaseError as exc:  # OrderNotFound, BadRequest…: the venue's definitive answer
            log.bind(error=repr(redact_exception(exc))).warning("order unknown to the venue: owner unknown")
            self._remember(order_id, _UNKNOWN)
            return None
        except Exception as exc:  # noqa: BLE001 - a failed query never fails the backfill
            log.bind(error=repr(redact_exception(exc))).warning("order query failed: owner unknown")
            return None
        client_id = read(self.key.market, order) if isinstance(order, dict) else None
        return self._remember(order_id, client_id or _UNKNOWN) or None

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
        ccxt_async = _ccxt()
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
                # ccxt's texts carry the signed URL: each is redacted in place (also for tracebacks).
                except ccxt_async.AuthenticationError as exc:
                    raise AuthError(self.key.exchange, f"trade history refused: {redact_exception(exc)}") from exc
                except ccxt_async.RateLimitExceeded as exc:
                    raise RateLimited(self.key.exchange, str(redact_exception(exc))) from exc
                except ccxt_async.OperationFailed as exc:  # ccxt's "may succeed if retried" (network, 5xx)
                    raise ConnectionLost(self.key.exchange, f"trade history: {redact_exception(exc)}") from exc
                except ccxt_async.ArgumentsRequired as exc:
                    raise ConfigError(
                        f"{self.key.exchange} trade history needs a symbol: {redact_exception(exc)}") from exc
                except ccxt_async.BaseError as exc:  # any other venue answer: its text is redacted all the same
                    redact_exception(exc)
                    raise
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

