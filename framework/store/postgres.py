"""PostgreSQL trade store (psycopg 3 async pool): numeric columns, idempotent inserts across processes."""

from __future__ import annotations

from typing import Any, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from framework.errors import ConfigError, LifecycleError, StoreError
from framework.events import ConnectionKey, OrderUpdate, Trade
from framework.store import (
    DEAD_LETTER_COLUMNS,
    ORDER_COLUMNS,
    TRADE_COLUMNS,
    order_from_row,
    order_row,
    raw_to_text,
    redact_url,
    trade_from_row,
    trade_row,
)

MIGRATIONS: tuple[str, ...] = (
    # 1: trades, orders, dead letters
    """
    CREATE TABLE trades (
        exchange text NOT NULL, market text NOT NULL, account text NOT NULL, symbol text NOT NULL,
        symbol_raw text NOT NULL, trade_id text NOT NULL, order_id text NOT NULL, client_order_id text,
        side text NOT NULL, amount numeric NOT NULL, price numeric NOT NULL, cost numeric NOT NULL,
        fee_cost numeric, fee_currency text, is_maker boolean, timestamp bigint NOT NULL,
        received_at bigint NOT NULL, source text NOT NULL, raw text,
        stored_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (exchange, market, account, symbol, trade_id, order_id)
    );
    CREATE INDEX trades_by_time ON trades (exchange, market, account, symbol, timestamp);
    CREATE TABLE orders (
        exchange text NOT NULL, market text NOT NULL, account text NOT NULL, symbol text NOT NULL,
        symbol_raw text NOT NULL, order_id text NOT NULL, client_order_id text, side text NOT NULL,
        order_type text NOT NULL, status text NOT NULL, status_raw text NOT NULL, amount numeric NOT NULL,
        price numeric, filled numeric NOT NULL, timestamp bigint NOT NULL, received_at bigint NOT NULL,
        raw text, status_rank smallint NOT NULL,
        PRIMARY KEY (exchange, market, account, symbol, order_id)
    );
    CREATE TABLE dead_letters (
        id bigserial PRIMARY KEY, connection_key text NOT NULL, raw text, error text NOT NULL,
        received_at bigint NOT NULL
    );
    """,
    # 2: dead letters remember their replay
    """
    ALTER TABLE dead_letters ADD COLUMN replayed_at bigint;
    ALTER TABLE dead_letters ADD COLUMN replay_result text;
    """,
)

_TRADE_TYPES = (
    "text", "text", "text", "text", "text", "text", "text", "text", "text", "numeric", "numeric", "numeric",
    "numeric", "text", "boolean", "bigint", "bigint", "text", "text",
)
_ORDER_TYPES = (
    "text", "text", "text", "text", "text", "text", "text", "text", "text", "text", "text", "numeric",
    "numeric", "numeric", "bigint", "bigint", "text", "smallint",
)
_KEY_COLUMNS = ("exchange", "market", "account", "symbol", "trade_id", "order_id")


def _unnest(columns: Sequence[str], types: Sequence[str]) -> sql.Composed:
    arrays = sql.SQL(", ").join(sql.SQL("%s::{}[]").format(sql.SQL(t)) for t in types)
    return sql.SQL("SELECT * FROM unnest({}) AS t({})").format(
        arrays, sql.SQL(", ").join(map(sql.Identifier, columns))
    )


_TRADE_COLS = sql.SQL(", ").join(map(sql.Identifier, TRADE_COLUMNS))
# Live fills arrive in batches: COPY (binary) into a per-session staging table, then one INSERT.
_CREATE_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS trades_staging (LIKE trades INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_COPY_STAGING = sql.SQL("COPY trades_staging ({}) FROM STDIN (FORMAT BINARY)").format(_TRADE_COLS)
_INSERT_FROM_STAGING = sql.SQL(
    "INSERT INTO trades ({cols}) SELECT {cols} FROM trades_staging ON CONFLICT DO NOTHING RETURNING {keys}"
).format(cols=_TRADE_COLS, keys=sql.SQL(", ").join(map(sql.Identifier, _KEY_COLUMNS)))
_ORDER_ALL = ORDER_COLUMNS + ("status_rank",)
_UPSERT_ORDERS = sql.SQL(
    "INSERT INTO orders ({cols}) {rows} ON CONFLICT (exchange, market, account, symbol, order_id) "
    "DO UPDATE SET {sets} WHERE (EXCLUDED.filled, EXCLUDED.status_rank, EXCLUDED.timestamp) "
    "> (orders.filled, orders.status_rank, orders.timestamp)"
).format(
    cols=sql.SQL(", ").join(map(sql.Identifier, _ORDER_ALL)),
    rows=_unnest(_ORDER_ALL, _ORDER_TYPES),
    sets=sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in _ORDER_ALL[4:]
    ),
)


def _store_error(url: str, exc: psycopg.Error) -> StoreError:
    """Connection trouble is transient; refused data (bad value, constraint) is not."""
    transient = isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
    return StoreError(f"PostgreSQL {url}: {exc}", transient=transient)


def split_schema(url: str) -> tuple[str, str | None]:
    """Take our own `?schema=name` out of a PostgreSQL URL; psycopg gets the rest."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


class PostgresTradeStore:
    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 4) -> None:
        self.url = redact_url(url)
        self._conninfo, self.schema = split_schema(url)
        if self.schema is not None and not self.schema.isidentifier():
            raise ConfigError(f"schema={self.schema!r} in the store URL is not a plain identifier")
        self._pool: AsyncConnectionPool | None = None
        self._min_size, self._max_size = min_size, max_size

    async def start(self) -> None:
        if self._pool is not None:
            return
        kwargs: dict[str, Any] = {"autocommit": True}
        if self.schema:
            kwargs["options"] = f"-c search_path={self.schema}"
        pool = AsyncConnectionPool(
            self._conninfo,
            min_size=self._min_size,
            max_size=self._max_size,
            kwargs=kwargs,
            open=False,
            name="tradesync-store",
            timeout=10,
        )
        try:
            await pool.open(wait=True, timeout=10)
            await self._migrate(pool)
        except (psycopg.Error, TimeoutError, Exception) as exc:
            await pool.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"cannot open PostgreSQL store {self.url}: {exc}") from exc
        self._pool = pool

    async def stop(self) -> None:
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        await pool.close(timeout=10)

    async def _migrate(self, pool: AsyncConnectionPool) -> None:
        async with pool.connection() as conn, conn.transaction():
            if self.schema:
                await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            # One migrator at a time across processes.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('tradesync.schema'))")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            (current,) = await cur.fetchone()
            if current > len(MIGRATIONS):
                raise StoreError(
                    f"{self.url} has schema version {current}, newer than this tradesync ({len(MIGRATIONS)}): upgrade"
                )
            for version in range(current + 1, len(MIGRATIONS) + 1):
                await conn.execute(MIGRATIONS[version - 1])
                await conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))

    def _require_pool(self) -> AsyncConnectionPool:
        if self._pool is None:
            raise LifecycleError("the PostgreSQL store is not started")
        return self._pool

    async def _execute(self, query: Any, params: Sequence[Any] = (), fetch: bool = True) -> list[tuple]:
        try:
            async with self._require_pool().connection() as conn:
                cur = await conn.execute(query, params)
                return await cur.fetchall() if fetch and cur.description else []
        except psycopg.Error as exc:
            raise _store_error(self.url, exc) from exc
        except TimeoutError as exc:  # pool could not hand out a connection
            raise StoreError(f"PostgreSQL {self.url}: no connection ({exc})") from exc

    async def insert_trades(self, trades: Sequence[Trade]) -> list[bool]:
        """COPY the batch into a session temp table, then one INSERT … ON CONFLICT DO NOTHING RETURNING."""
        if not trades:
            return []
        try:
            async with self._require_pool().connection() as conn, conn.transaction():
                await conn.execute(_CREATE_STAGING)
                async with conn.cursor().copy(_COPY_STAGING) as copy:
                    copy.set_types(_TRADE_TYPES)
                    for trade in trades:
                        await copy.write_row(trade_row(trade))
                cur = await conn.execute(_INSERT_FROM_STAGING)
                new = set(await cur.fetchall())
        except psycopg.Error as exc:
            raise _store_error(self.url, exc) from exc
        except TimeoutError as exc:
            raise StoreError(f"PostgreSQL {self.url}: no connection ({exc})") from exc
        return [t.dedup_key in new for t in trades]

    async def complete_fees(self, trades: Sequence[Trade]) -> int:
        try:
            async with self._require_pool().connection() as conn, conn.transaction():
                cur = conn.cursor()
                await cur.executemany(
                    "UPDATE trades SET fee_cost = %s, fee_currency = %s WHERE exchange = %s AND market = %s "
                    "AND account = %s AND symbol = %s AND trade_id = %s AND order_id = %s AND fee_cost IS NULL",
                    [(t.fee_cost, t.fee_currency, *t.dedup_key) for t in trades],
                )
                return cur.rowcount
        except psycopg.Error as exc:
            raise _store_error(self.url, exc) from exc

    async def upsert_orders(self, updates: Sequence[OrderUpdate]) -> int:
        if not updates:
            return 0
        columns = list(zip(*(order_row(o) for o in updates)))
        try:
            async with self._require_pool().connection() as conn:
                cur = await conn.execute(_UPSERT_ORDERS, [list(c) for c in columns])
                return cur.rowcount
        except psycopg.Error as exc:
            raise _store_error(self.url, exc) from exc

    async def add_dead_letter(self, key: str, raw: Any, error: str, received_at: int) -> None:
        await self._execute(
            "INSERT INTO dead_letters (connection_key, raw, error, received_at) VALUES (%s, %s, %s, %s)",
            (key, raw_to_text(raw), error, received_at),
            fetch=False,
        )

    async def fetch_trades(self, key: ConnectionKey | None = None, symbol: str | None = None) -> list[Trade]:
        where, params = _key_filter(key, symbol)
        query = sql.SQL("SELECT {} FROM trades {} ORDER BY timestamp, trade_id").format(
            sql.SQL(", ").join(map(sql.Identifier, TRADE_COLUMNS)), where
        )
        return [trade_from_row(r) for r in await self._execute(query, params)]

    async def fetch_orders(self, key: ConnectionKey | None = None) -> list[OrderUpdate]:
        where, params = _key_filter(key, None)
        query = sql.SQL("SELECT {} FROM orders {}").format(sql.SQL(", ").join(map(sql.Identifier, ORDER_COLUMNS)), where)
        return [order_from_row(r) for r in await self._execute(query, params)]

    async def fetch_dead_letters(self, pending_only: bool = False) -> list[dict]:
        query = sql.SQL("SELECT {} FROM dead_letters {} ORDER BY id").format(
            sql.SQL(", ").join(map(sql.Identifier, DEAD_LETTER_COLUMNS)),
            sql.SQL("WHERE replayed_at IS NULL" if pending_only else ""),
        )
        return [dict(zip(DEAD_LETTER_COLUMNS, r)) for r in await self._execute(query)]

    async def mark_dead_letter(self, letter_id: int, replayed_at: int | None, result: str) -> None:
        await self._execute("UPDATE dead_letters SET replayed_at = %s, replay_result = %s WHERE id = %s",
                            (replayed_at, result, letter_id), fetch=False)

    async def recent_trade_keys(self, key: ConnectionKey, since_ms: int, limit: int) -> list[tuple]:
        where, params = _key_filter(key, None)
        query = sql.SQL(
            "SELECT exchange, market, account, symbol, trade_id, order_id FROM trades {} "
            "AND timestamp >= %s ORDER BY timestamp DESC LIMIT %s"
        ).format(where)
        return await self._execute(query, (*params, since_ms, limit))

    async def symbols(self, key: ConnectionKey) -> list[str]:
        where, params = _key_filter(key, None)
        rows = await self._execute(sql.SQL("SELECT DISTINCT symbol FROM trades {}").format(where), params)
        return [r[0] for r in rows]

    async def last_trade_timestamp(self, key: ConnectionKey, symbol: str | None = None) -> int | None:
        where, params = _key_filter(key, symbol)
        rows = await self._execute(sql.SQL("SELECT MAX(timestamp) FROM trades {}").format(where), params)
        return rows[0][0]


def _key_filter(key: ConnectionKey | None, symbol: str | None) -> tuple[sql.Composable, tuple]:
    clauses, params = [sql.SQL("TRUE")], []
    if key is not None:
        clauses += [sql.SQL("exchange = %s"), sql.SQL("market = %s"), sql.SQL("account = %s")]
        params += [key.exchange, key.market.value, key.account]
    if symbol is not None:
        clauses.append(sql.SQL("symbol = %s"))
        params.append(symbol)
    return sql.SQL("WHERE ") + sql.SQL(" AND ").join(clauses), tuple(params)
