"""PostgreSQL trade store (psycopg 3 async pool): numeric columns, idempotent inserts across processes."""

from __future__ import annotations

import asyncio
import re
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Mapping, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from framework.account import BalanceUpdate, PositionUpdate
from framework.errors import ConfigError, LifecycleError, StoreError
from framework.events import ConnectionKey, OrderUpdate, Trade, now_ms
from framework.store import (
    BALANCE_COLUMNS,
    CONVERSION_ERRORS,
    DEAD_LETTER_COLUMNS,
    ORDER_COLUMNS,
    ORDER_REQUEST_COLUMNS,
    POSITION_COLUMNS,
    TRADE_COLUMNS,
    balance_from_row,
    balance_row,
    key_filter_groups,
    one_line,
    order_from_row,
    order_request_row,
    order_row,
    position_from_row,
    position_row,
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
    # 3: a store-wide sequence number per fill (existing rows numbered in the order they were stored),
    #    per-symbol coverage marks and durable delivery positions
    """
    ALTER TABLE trades ADD COLUMN seq bigint;
    UPDATE trades SET seq = numbered.n FROM (
        SELECT exchange, market, account, symbol, trade_id, order_id, row_number() OVER (
            ORDER BY stored_at, timestamp, trade_id, exchange, market, account, symbol, order_id) AS n
        FROM trades
    ) AS numbered
    WHERE trades.exchange = numbered.exchange AND trades.market = numbered.market
        AND trades.account = numbered.account AND trades.symbol = numbered.symbol
        AND trades.trade_id = numbered.trade_id AND trades.order_id = numbered.order_id;
    CREATE SEQUENCE trades_seq OWNED BY trades.seq;
    SELECT setval('trades_seq', COALESCE(MAX(seq), 0) + 1, false) FROM trades;
    ALTER TABLE trades ALTER COLUMN seq SET DEFAULT nextval('trades_seq'), ALTER COLUMN seq SET NOT NULL;
    CREATE UNIQUE INDEX trades_by_seq ON trades (seq);
    CREATE TABLE coverage (
        exchange text NOT NULL, market text NOT NULL, account text NOT NULL, symbol text NOT NULL,
        complete_until bigint NOT NULL,
        PRIMARY KEY (exchange, market, account, symbol)
    );
    CREATE TABLE deliveries (
        strategy_id text PRIMARY KEY, position bigint NOT NULL, running boolean NOT NULL, prefix text,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    """,
    # 4: dead letters per consumer (NULL: refused by the pipeline itself) and replay requests; the running
    #    pipeline polls the requested ones through a partial index that holds only those
    """
    ALTER TABLE dead_letters ADD COLUMN consumer text;
    ALTER TABLE dead_letters ADD COLUMN replay_requested_at bigint;
    CREATE INDEX dead_letters_requested ON dead_letters (consumer, id)
        WHERE replay_requested_at IS NOT NULL AND replayed_at IS NULL;
    """,
    # 5: order states by venue time per key, for a strategy reading back the latest states (orders_since), in
    #    orders_since's order: a page is read off the index with no sort, whatever the planner thinks of the limit
    """
    CREATE INDEX orders_by_time
        ON orders (exchange, market, account, timestamp, order_id COLLATE "C", symbol COLLATE "C");
    """,
    # 6: account state: the latest balance per asset and position per symbol (and hedge leg), and their history
    """
    CREATE TABLE balances (
        exchange text NOT NULL, market text NOT NULL, account text NOT NULL, asset text NOT NULL,
        free numeric, locked numeric, total numeric, delta numeric, reason text, timestamp bigint NOT NULL,
        received_at bigint NOT NULL, source text NOT NULL, raw text,
        PRIMARY KEY (exchange, market, account, asset)
    );
    CREATE TABLE balance_history (
        id bigserial PRIMARY KEY,
        exchange text NOT NULL, market text NOT NULL, account text NOT NULL, asset text NOT NULL,
        free numeric, locked numeric, total numeric, delta numeric, reason text, timestamp bigint NOT NULL,
        received_at bigint NOT NULL, source text NOT NULL, raw text
    );
    CREATE TABLE positions (
        exchange text NOT NULL, market text NOT NULL, account text NOT NULL, symbol text NOT NULL,
        position_side text NOT NULL, symbol_raw text NOT NULL, direction text NOT NULL, size numeric NOT NULL,
        contracts numeric, entry_price numeric, mark_price numeric, unrealized_pnl numeric, realized_pnl numeric,
        leverage numeric, liquidation_price numeric, margin_mode text, timestamp bigint NOT NULL,
        received_at bigint NOT NULL, source text NOT NULL, raw text,
        PRIMARY KEY (exchange, market, account, symbol, position_side)
    );
    CREATE TABLE position_history (
        id bigserial PRIMARY KEY,
        exchange text NOT NULL, market text NOT NULL, account text NOT NULL, symbol text NOT NULL,
        position_side text NOT NULL, symbol_raw text NOT NULL, direction text NOT NULL, size numeric NOT NULL,
        contracts numeric, entry_price numeric, mark_price numeric, unrealized_pnl numeric, realized_pnl numeric,
        leverage numeric, liquidation_price numeric, margin_mode text, timestamp bigint NOT NULL,
        received_at bigint NOT NULL, source text NOT NULL, raw text
    );
    """,
    # 7: order entry: every request's path, attempts and latency (also on the orders row once placed)
    """
    ALTER TABLE orders ADD COLUMN request_path text;
    ALTER TABLE orders ADD COLUMN attempts integer;
    ALTER TABLE orders ADD COLUMN ack_latency_ms double precision;
    CREATE TABLE order_requests (
        exchange text NOT NULL, market text NOT NULL, account text NOT NULL, client_order_id text NOT NULL,
        strategy_id text NOT NULL, symbol text NOT NULL, side text NOT NULL, order_type text NOT NULL,
        amount numeric NOT NULL, price numeric, state text NOT NULL, order_id text, filled numeric NOT NULL,
        request_path text, attempts integer NOT NULL, ack_latency_ms double precision, reason text, parent text,
        kind text NOT NULL, created bigint NOT NULL, updated bigint NOT NULL,
        PRIMARY KEY (exchange, market, account, client_order_id)
    );
    """,
)


START_TIMEOUT = 5.0  # seconds start() may wait for an unreachable server before it reports it
WRITE_CONNECT_WAIT = 1.0  # seconds a write batch waits for a pooled connection before it counts as unreachable
# What a server says no to at connect, by SQLSTATE, else by libpq's text (psycopg has no SQLSTATE for a failed
# connect): waiting cannot help, the URL must change.
_REFUSALS = (
    ("3D000", re.compile(r'database ".*" does not exist'), "create it (createdb) or fix the database in the URL"),
    ("28P01", re.compile(r"password authentication failed"), "fix the user or password in the URL"),
    ("28000", re.compile(r'role ".*" does not exist|no pg_hba\.conf entry'), "fix the user in the URL"),
)

_TRADE_TYPES = (
    "text", "text", "text", "text", "text", "text", "text", "text", "text", "numeric", "numeric", "numeric",
    "numeric", "text", "boolean", "bigint", "bigint", "text", "text",
)
_ORDER_TYPES = (
    "text", "text", "text", "text", "text", "text", "text", "text", "text", "text", "text", "numeric",
    "numeric", "numeric", "bigint", "bigint", "text", "smallint",
)
_BALANCE_TYPES = ("text", "text", "text", "text", "numeric", "numeric", "numeric", "numeric", "text", "bigint",
                  "bigint", "text", "text")
_POSITION_TYPES = ("text", "text", "text", "text", "text", "text", "text", "numeric", "numeric", "numeric", "numeric",
                   "numeric", "numeric", "numeric", "numeric", "text", "bigint", "bigint", "text", "text")
_KEY_COLUMNS = ("exchange", "market", "account", "symbol", "trade_id", "order_id")


def _unnest(columns: Sequence[str], types: Sequence[str]) -> sql.Composed:
    """Rows from one typed array per column, sent in binary (`%b`: no text-array quoting on our side)."""
    arrays = sql.SQL(", ").join(sql.SQL("%b::{}[]").format(sql.SQL(t)) for t in types)
    return sql.SQL("SELECT * FROM unnest({}) AS t({})").format(
        arrays, sql.SQL(", ").join(map(sql.Identifier, columns))
    )


_TRADE_COLS = sql.SQL(", ").join(map(sql.Identifier, TRADE_COLUMNS))
_KEY_COLS = sql.SQL(", ").join(map(sql.Identifier, _KEY_COLUMNS))


def _sets(columns: Sequence[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c)) for c in columns)


_BALANCE_COLS = sql.SQL(", ").join(map(sql.Identifier, BALANCE_COLUMNS))
_POSITION_COLS = sql.SQL(", ").join(map(sql.Identifier, POSITION_COLUMNS))
# One statement per table per batch, rows as typed arrays (as the fills); the latest-state upserts get at most one
# row per state (account_statements keeps the newest), as ON CONFLICT cannot touch a row twice in one statement.
_UPSERT_BALANCES = sql.SQL(
    "INSERT INTO balances ({cols}) {rows} ON CONFLICT (exchange, market, account, asset) "
    "DO UPDATE SET {sets} WHERE excluded.timestamp >= balances.timestamp"
).format(cols=_BALANCE_COLS, rows=_unnest(BALANCE_COLUMNS, _BALANCE_TYPES), sets=_sets(BALANCE_COLUMNS[4:]))
_UPSERT_POSITIONS = sql.SQL(
    "INSERT INTO positions ({cols}) {rows} ON CONFLICT (exchange, market, account, symbol, position_side) "
    "DO UPDATE SET {sets} WHERE excluded.timestamp >= positions.timestamp"
).format(cols=_POSITION_COLS, rows=_unnest(POSITION_COLUMNS, _POSITION_TYPES), sets=_sets(POSITION_COLUMNS[5:]))
_ADD_BALANCES = sql.SQL("INSERT INTO balance_history ({}) {}").format(
    _BALANCE_COLS, _unnest(BALANCE_COLUMNS, _BALANCE_TYPES))
_ADD_POSITIONS = sql.SQL("INSERT INTO position_history ({}) {}").format(
    _POSITION_COLS, _unnest(POSITION_COLUMNS, _POSITION_TYPES))


def account_statements(balances: Sequence[BalanceUpdate], positions: Sequence[PositionUpdate]) -> list[tuple]:
    """(query, array params) of the account part of a batch: the history rows, then the newest state of each."""
    statements: list[tuple] = []
    for rows, add, upsert, events in ((list(map(balance_row, balances)), _ADD_BALANCES, _UPSERT_BALANCES, balances),
                                      (list(map(position_row, positions)), _ADD_POSITIONS, _UPSERT_POSITIONS,
                                       positions)):
        if not rows:
            continue
        statements.append((add, [list(c) for c in zip(*rows)]))
        newest: dict[tuple, tuple] = {}
        for row, event in zip(rows, events):
            if getattr(event, "is_delta", False):
                continue
            held = newest.get(event.state_key)
            if held is None or event.timestamp >= held[0]:
                newest[event.state_key] = (event.timestamp, row)
        if newest:
            statements.append((upsert, [list(c) for c in zip(*(row for _, row in newest.values()))]))
    return statements
# Live fills arrive in batches: one statement (its own transaction, one round trip) inserts them from binary
# arrays in the order given, so `seq` (the column's default, taken after the sort) increases in that order.
# The transaction lock (one per schema) is taken in the same statement before any row is produced (the sort
# reads all input first): writers of every process take seqs one batch at a time, so seqs become visible in
# increasing order: a reader that has seen seq n never sees a smaller one appear later.
_INSERT_TRADES = sql.SQL(
    "INSERT INTO trades ({cols}) SELECT {picked} FROM "
    "(SELECT pg_advisory_xact_lock(hashtext('tradesync.trades.seq.' || current_schema()))) AS seq_lock, "
    "unnest({arrays}) WITH ORDINALITY AS t({cols}, ord) ORDER BY t.ord "
    "ON CONFLICT ({keys}) DO NOTHING RETURNING seq, {keys}"
).format(
    cols=_TRADE_COLS,
    picked=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in TRADE_COLUMNS),
    arrays=sql.SQL(", ").join(sql.SQL("%b::{}[]").format(sql.SQL(t)) for t in _TRADE_TYPES),
    keys=_KEY_COLS,
)
_COMPLETE_FEES = sql.SQL(
    "UPDATE trades SET fee_cost = f.fee_cost, fee_currency = f.fee_currency FROM ({rows}) AS f "
    "WHERE {match} AND trades.fee_cost IS NULL RETURNING {keys}"
).format(
    rows=_unnest(("fee_cost", "fee_currency", *_KEY_COLUMNS), ("numeric", "text", *["text"] * len(_KEY_COLUMNS))),
    match=sql.SQL(" AND ").join(sql.SQL("trades.{0} = f.{0}").format(sql.Identifier(c)) for c in _KEY_COLUMNS),
    keys=sql.SQL(", ").join(sql.SQL("trades.{}").format(sql.Identifier(c)) for c in _KEY_COLUMNS),
)
_ADVANCE_COVERAGE = (
    "INSERT INTO coverage (exchange, market, account, symbol, complete_until) "
    "SELECT %s, %s, %s, * FROM unnest(%s::text[], %s::bigint[]) "
    "ON CONFLICT (exchange, market, account, symbol) DO UPDATE SET "
    "complete_until = GREATEST(coverage.complete_until, EXCLUDED.complete_until)"
)
_SET_DELIVERY = (
    "INSERT INTO deliveries (strategy_id, position, running, prefix) VALUES (%s, %s, %s, %s) "
    "ON CONFLICT (strategy_id) DO UPDATE SET position = GREATEST(deliveries.position, EXCLUDED.position), "
    "running = EXCLUDED.running, prefix = EXCLUDED.prefix, updated_at = now()"
)
_INSERT_DEAD_LETTERS = sql.SQL(
    "INSERT INTO dead_letters (connection_key, raw, error, received_at, consumer) {rows}"
).format(rows=_unnest(("connection_key", "raw", "error", "received_at", "consumer"),
                      ("text", "text", "text", "bigint", "text")))
_ORDER_ALL = ORDER_COLUMNS + ("status_rank",)
_DEAD_LETTER_COLS = sql.SQL(", ").join(map(sql.Identifier, DEAD_LETTER_COLUMNS))
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

# orders_since: per key group its first states since the time, read in order off orders_by_time (no sort, at most
# `limit` rows each), merged. Ids compare bytewise (COLLATE "C", as in the index), as SQLite's do: both stores give
# one order whatever the database's collation.
# The store writer's statements as plain text, rendered once: psycopg renders a composed query again at every
# execute (about 2 ms of CPU a batch here), while a text query is parsed once and cached.
_INSERT_TRADES, _COMPLETE_FEES, _UPSERT_ORDERS, _INSERT_DEAD_LETTERS = (
    q.as_string(None) for q in (_INSERT_TRADES, _COMPLETE_FEES, _UPSERT_ORDERS, _INSERT_DEAD_LETTERS))
_UPSERT_BALANCES, _UPSERT_POSITIONS, _ADD_BALANCES, _ADD_POSITIONS = (
    q.as_string(None) for q in (_UPSERT_BALANCES, _UPSERT_POSITIONS, _ADD_BALANCES, _ADD_POSITIONS))
_ORDER_COLS = sql.SQL(", ").join(map(sql.Identifier, ORDER_COLUMNS))
_ORDER_BY_TIME = sql.SQL('ORDER BY timestamp, order_id COLLATE "C", symbol COLLATE "C"')
_ORDERS_SINCE_ONE = sql.SQL(
    "(SELECT {cols} FROM orders WHERE exchange = %s AND market = %s AND account = %s AND timestamp >= %s "
    "{order} LIMIT %s)"
).format(cols=_ORDER_COLS, order=_ORDER_BY_TIME)


def orders_since_query(groups: int) -> sql.Composed:
    """orders_since for `groups` key groups. Parameters: per group (exchange, market, account, since_ms, limit),
    then limit."""
    return sql.SQL("SELECT {cols} FROM ({parts}) AS since {order} LIMIT %s").format(
        cols=_ORDER_COLS, parts=sql.SQL(" UNION ALL ").join([_ORDERS_SINCE_ONE] * groups), order=_ORDER_BY_TIME
    )


def _store_error(url: str, exc: psycopg.Error) -> StoreError:
    """Connection trouble is transient; refused data (bad value, constraint) is not."""
    transient = isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
    return StoreError(f"PostgreSQL {url}: {one_line(exc)}", transient=transient)


@asynccontextmanager
async def _errors(url: str) -> AsyncIterator[None]:
    """Every failure of a store call as a StoreError: the server unreachable (transient) or a value refused
    by the driver or the server (not transient)."""
    try:
        yield
    except psycopg.Error as exc:
        raise _store_error(url, exc) from exc
    except TimeoutError as exc:  # the pool could not hand out a connection
        raise StoreError(f"PostgreSQL {url}: no connection ({one_line(exc)})") from exc
    except CONVERSION_ERRORS as exc:  # e.g. an int beyond 64 bits in a bigint column
        raise StoreError(f"PostgreSQL {url}: value refused: {one_line(exc)}", transient=False) from exc


def split_schema(url: str) -> tuple[str, str | None]:
    """Take our own `?schema=name` out of a PostgreSQL URL; psycopg gets the rest."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


def _refusal(exc: BaseException) -> str | None:
    """The server's refusal of a connect (no such database, user or password refused) and what to do, else None."""
    if not isinstance(exc, psycopg.OperationalError):
        return None
    text = str(exc)
    for sqlstate, pattern, advice in _REFUSALS:
        if exc.sqlstate == sqlstate or (exc.sqlstate is None and pattern.search(text)):
            said = text.partition("FATAL:")[2].strip().splitlines() or [one_line(exc)]
            return f"{said[0]}: {advice}"
    return None


class PostgresTradeStore:
    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 4) -> None:
        self.url = redact_url(url)
        self._conninfo, self.schema = split_schema(url)
        if self.schema is not None and not self.schema.isidentifier():
            raise ConfigError(f"schema={self.schema!r} in the store URL is not a plain identifier")
        self._pool: AsyncConnectionPool | None = None
        self._min_size, self._max_size = min_size, max_size

    async def start(self) -> None:
        """Connect, migrate (one process at a time) and open the pool. An unreachable server raises
        StoreError(transient=True) within START_TIMEOUT; start() may be called again once it is back."""
        if self._pool is not None:
            return
        kwargs: dict[str, Any] = {"autocommit": True}
        if self.schema:
            kwargs["options"] = f"-c search_path={self.schema}"
        try:
            async with asyncio.timeout(START_TIMEOUT):
                conn = await psycopg.AsyncConnection.connect(
                    self._conninfo, connect_timeout=max(2, int(START_TIMEOUT)), **kwargs
                )
        except (psycopg.Error, OSError) as exc:  # TimeoutError is an OSError
            refusal = _refusal(exc)
            if refusal is not None:  # the server answered no: waiting cannot help
                raise StoreError(f"PostgreSQL store {self.url}: {refusal}", transient=False) from exc
            raise StoreError(f"cannot open PostgreSQL store {self.url}: {one_line(exc)}", transient=True) from exc
        try:
            async with conn:
                await self._migrate(conn)
        except psycopg.Error as exc:
            raise StoreError(f"cannot migrate PostgreSQL store {self.url}: {one_line(exc)}",
                             transient=isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))) from exc
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
            await pool.open(wait=True, timeout=START_TIMEOUT)
        except BaseException as exc:
            await pool.close()
            if isinstance(exc, (psycopg.Error, OSError)):
                raise StoreError(f"cannot open PostgreSQL store {self.url}: {one_line(exc)}") from exc
            raise
        self._pool = pool

    async def stop(self) -> None:
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        await pool.close(timeout=10)

    async def _migrate(self, conn: psycopg.AsyncConnection) -> None:
        """Bring the schema to the latest version. The lock comes first and needs no schema, so
        processes starting at once on a fresh `?schema=` take turns: the first creates, the others see it."""
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"tradesync.schema.{self.schema}",))
            if self.schema:
                await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            (current,) = await cur.fetchone()
            if current > len(MIGRATIONS):
                raise StoreError(
                    f"{self.url} has schema version {current}, newer than this tradesync ({len(MIGRATIONS)}): upgrade",
                    transient=False,
                )
            for version in range(current + 1, len(MIGRATIONS) + 1):
                await conn.execute(MIGRATIONS[version - 1])
                await conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))

    def _require_pool(self) -> AsyncConnectionPool:
        if self._pool is None:
            raise LifecycleError("the PostgreSQL store is not started")
        return self._pool

    async def _execute(self, query: Any, params: Sequence[Any] = (), fetch: bool = True) -> list[tuple]:
        async with _errors(self.url), self._require_pool().connection() as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall() if fetch and cur.description else []

    async def insert_trades(self, trades: Sequence[Trade]) -> list[int | None]:
        """One INSERT … SELECT FROM unnest(binary arrays) … ON CONFLICT DO NOTHING RETURNING seq (one commit)."""
        if not trades:
            return []
        async with _errors(self.url), self._require_pool().connection() as conn:
            columns = [list(c) for c in zip(*map(trade_row, trades))]
            cur = await conn.execute(_INSERT_TRADES, columns)
            new = {tuple(row[1:]): row[0] for row in await cur.fetchall()}
        return [new.pop(t.dedup_key, None) for t in trades]

    async def complete_fees(self, trades: Sequence[Trade]) -> list[tuple]:
        rows = [(t.fee_cost, t.fee_currency, *t.dedup_key) for t in trades if t.fee_cost is not None]
        if not rows:
            return []
        async with _errors(self.url), self._require_pool().connection() as conn:
            cur = await conn.execute(_COMPLETE_FEES, [list(c) for c in zip(*rows)])
            return [tuple(r) for r in await cur.fetchall()]

    async def write_batch(
        self, trades: Sequence[Trade], fee_copies: Sequence[Trade], orders: Sequence[OrderUpdate],
        dead_rows: Sequence[tuple], balances: Sequence[BalanceUpdate] = (), positions: Sequence[PositionUpdate] = (),
    ) -> tuple[list[int | None], list[tuple]]:
        """One transaction on one connection, its statements pipelined (one round trip, one WAL flush): the
        fills, then the fees, the order states, the dead letters and the account states. Rows are built before
        anything is sent, so a value the driver cannot convert is refused with nothing begun."""
        fee_rows = [(t.fee_cost, t.fee_currency, *t.dedup_key) for t in fee_copies if t.fee_cost is not None]
        if not (trades or fee_rows or orders or dead_rows or balances or positions):
            return [], []
        async with _errors(self.url):
            statements = []
            if trades:
                statements.append((_INSERT_TRADES, [list(c) for c in zip(*map(trade_row, trades))]))
            if fee_rows:
                statements.append((_COMPLETE_FEES, [list(c) for c in zip(*fee_rows)]))
            if orders:
                statements.append((_UPSERT_ORDERS, [list(c) for c in zip(*map(order_row, orders))]))
            if dead_rows:
                statements.append((_INSERT_DEAD_LETTERS, [list(c) for c in zip(*map(_letter_row, dead_rows))]))
            statements += account_statements(balances, positions)
            # A batch waits at most WRITE_CONNECT_WAIT for a connection: with the server unreachable, the writer
            # must hear it at once and spool what waits in memory (a kill then loses nothing), not wait 10 s.
            async with self._require_pool().connection(timeout=WRITE_CONNECT_WAIT) as conn:
                async with conn.pipeline() as pipeline:
                    async with conn.transaction():
                        cursors = [await conn.execute(query, params) for query, params in statements]
                        await pipeline.sync()  # a refusal comes out here, inside the transaction: rolled back
                results = iter(cursors)
                new = {tuple(row[1:]): row[0] for row in await next(results).fetchall()} if trades else {}
                completed = [tuple(r) for r in await next(results).fetchall()] if fee_rows else []
        return [new.pop(t.dedup_key, None) for t in trades], completed

    async def max_seq(self) -> int:
        return (await self._execute("SELECT COALESCE(MAX(seq), 0) FROM trades"))[0][0]

    async def trades_after(
        self, keys: Sequence[ConnectionKey], after_seq: int, limit: int
    ) -> list[tuple[int, Trade]]:
        groups = key_filter_groups(keys)
        if not groups or limit <= 0:
            return []
        match = sql.SQL(" OR ").join([sql.SQL("(exchange = %s AND market = %s AND account = %s)")] * len(groups))
        query = sql.SQL("SELECT seq, {} FROM trades WHERE seq > %s AND ({}) ORDER BY seq LIMIT %s").format(
            _TRADE_COLS, match
        )
        rows = await self._execute(query, (after_seq, *(v for g in groups for v in g), limit))
        return [(r[0], trade_from_row(r[1:], seq=r[0])) for r in rows]

    async def get_coverage(self, key: ConnectionKey) -> dict[str, int]:
        where, params = _key_filter(key, None)
        query = sql.SQL("SELECT symbol, complete_until FROM coverage {}").format(where)
        return dict(await self._execute(query, params))

    async def advance_coverage(self, key: ConnectionKey, marks: Mapping[str, int]) -> None:
        if marks:
            async with _errors(self.url):
                params = (key.exchange, key.market.value, key.account, list(marks), [int(ms) for ms in marks.values()])
            await self._execute(_ADVANCE_COVERAGE, params, fetch=False)

    async def get_delivery(self, strategy_id: str) -> tuple[int, bool] | None:
        rows = await self._execute("SELECT position, running FROM deliveries WHERE strategy_id = %s", (strategy_id,))
        return (rows[0][0], rows[0][1]) if rows else None

    async def set_delivery(self, strategy_id: str, position: int, running: bool, prefix: str | None) -> None:
        async with _errors(self.url):
            params = (strategy_id, int(position), bool(running), prefix)
        await self._execute(_SET_DELIVERY, params, fetch=False)

    async def delivery_prefixes(self) -> dict[str, str]:
        return dict(await self._execute("SELECT strategy_id, prefix FROM deliveries WHERE prefix IS NOT NULL"))

    async def client_order_ids(self, key: ConnectionKey, order_ids: Sequence[str]) -> dict[str, str]:
        if not order_ids:
            return {}
        where, params = _key_filter(key, None)
        query = sql.SQL(
            "SELECT order_id, client_order_id FROM orders {} AND client_order_id IS NOT NULL AND order_id = ANY(%s)"
        ).format(where)
        return dict(await self._execute(query, (*params, list(dict.fromkeys(map(str, order_ids))))))

    async def fee_missing_keys(self, key: ConnectionKey, since_ms: int, limit: int) -> list[tuple]:
        where, params = _key_filter(key, None)
        query = sql.SQL(
            "SELECT exchange, market, account, symbol, trade_id, order_id FROM trades {} "
            "AND fee_cost IS NULL AND timestamp >= %s ORDER BY timestamp DESC LIMIT %s"
        ).format(where)
        return [tuple(r) for r in await self._execute(query, (*params, since_ms, limit))]

    async def upsert_orders(self, updates: Sequence[OrderUpdate]) -> int:
        if not updates:
            return 0
        async with _errors(self.url), self._require_pool().connection() as conn:
            columns = list(zip(*(order_row(o) for o in updates)))
            cur = await conn.execute(_UPSERT_ORDERS, [list(c) for c in columns])
            return cur.rowcount

    async def orders_since(self, keys: Sequence[ConnectionKey], since_ms: int, limit: int) -> list[OrderUpdate]:
        groups = key_filter_groups(keys)
        if not groups or limit <= 0:
            return []
        params = (*(v for g in groups for v in (*g, since_ms, limit)), limit)
        return [order_from_row(r) for r in await self._execute(orders_since_query(len(groups)), params)]

    async def add_dead_letter(
        self, key: str, raw: Any, error: str, received_at: int, consumer: str | None = None
    ) -> None:
        async with _errors(self.url):
            row = (key, raw_to_text(raw), error, received_at, consumer)
        await self._execute(
            "INSERT INTO dead_letters (connection_key, raw, error, received_at, consumer) "
            "VALUES (%s, %s, %s, %s, %s)",
            row,
            fetch=False,
        )

    async def fetch_trades(self, key: ConnectionKey | None = None, symbol: str | None = None) -> list[Trade]:
        where, params = _key_filter(key, symbol)
        query = sql.SQL("SELECT seq, {} FROM trades {} ORDER BY timestamp, trade_id").format(_TRADE_COLS, where)
        return [trade_from_row(r[1:], seq=r[0]) for r in await self._execute(query, params)]

    async def fetch_orders(self, key: ConnectionKey | None = None) -> list[OrderUpdate]:
        where, params = _key_filter(key, None)
        query = sql.SQL("SELECT {} FROM orders {}").format(sql.SQL(", ").join(map(sql.Identifier, ORDER_COLUMNS)), where)
        return [order_from_row(r) for r in await self._execute(query, params)]

    async def write_account(self, balances: Sequence[BalanceUpdate], positions: Sequence[PositionUpdate]) -> None:
        if not (balances or positions):
            return
        async with _errors(self.url):
            statements = account_statements(balances, positions)
            async with self._require_pool().connection() as conn, conn.transaction():
                for query, params in statements:
                    await conn.execute(query, params)

    async def record_order_requests(self, requests: Sequence[Any]) -> None:
        if not requests:
            return
        rows = [order_request_row(r) for r in requests]
        columns = sql.SQL(", ").join(map(sql.Identifier, ORDER_REQUEST_COLUMNS))
        upsert = sql.SQL(
            "INSERT INTO order_requests ({}) VALUES ({}) ON CONFLICT (exchange, market, account, client_order_id) "
            "DO UPDATE SET {} WHERE excluded.updated >= order_requests.updated"
        ).format(columns, sql.SQL(", ").join(sql.Placeholder() * len(ORDER_REQUEST_COLUMNS)),
                 sql.SQL(", ").join(sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c))
                                    for c in ORDER_REQUEST_COLUMNS[4:]))
        update = ("UPDATE orders SET request_path = r.request_path, attempts = r.attempts, "
                  "ack_latency_ms = r.ack_latency_ms FROM order_requests AS r "
                  "WHERE r.exchange = %s AND r.market = %s AND r.account = %s AND r.client_order_id = %s "
                  "AND orders.exchange = r.exchange AND orders.market = r.market AND orders.account = r.account "
                  "AND orders.symbol = r.symbol AND orders.order_id = r.order_id")
        async with _errors(self.url):
            async with self._require_pool().connection() as conn, conn.transaction():
                async with conn.cursor() as cur:
                    await cur.executemany(upsert, list(rows))
                    await cur.executemany(update, sorted({(r[0], r[1], r[2], r[3]) for r in rows}))

    async def fetch_order_requests(self, key: ConnectionKey | None = None) -> list[dict]:
        where, params = _key_filter(key, None)
        query = sql.SQL("SELECT {} FROM order_requests {} ORDER BY created, client_order_id").format(
            sql.SQL(", ").join(map(sql.Identifier, ORDER_REQUEST_COLUMNS)), where)
        return [dict(zip(ORDER_REQUEST_COLUMNS, row)) for row in await self._execute(query, params)]

    async def fetch_balances(self, key: ConnectionKey | None = None) -> list[BalanceUpdate]:
        where, params = _key_filter(key, None)
        query = sql.SQL("SELECT {} FROM balances {} ORDER BY exchange, market, account, asset").format(
            _BALANCE_COLS, where)
        return [balance_from_row(r) for r in await self._execute(query, params)]

    async def fetch_positions(self, key: ConnectionKey | None = None) -> list[PositionUpdate]:
        where, params = _key_filter(key, None)
        query = sql.SQL("SELECT {} FROM positions {} ORDER BY exchange, market, account, symbol, position_side"
                        ).format(_POSITION_COLS, where)
        return [position_from_row(r) for r in await self._execute(query, params)]

    async def account_history(
        self, key: ConnectionKey | None = None
    ) -> tuple[list[BalanceUpdate], list[PositionUpdate]]:
        where, params = _key_filter(key, None)
        balances = await self._execute(sql.SQL("SELECT {} FROM balance_history {} ORDER BY id").format(
            _BALANCE_COLS, where), params)
        positions = await self._execute(sql.SQL("SELECT {} FROM position_history {} ORDER BY id").format(
            _POSITION_COLS, where), params)
        return [balance_from_row(r) for r in balances], [position_from_row(r) for r in positions]

    async def fetch_dead_letters(self, pending_only: bool = False, consumer: str | None = None) -> list[dict]:
        clauses = [sql.SQL("TRUE")]
        if pending_only:
            clauses.append(sql.SQL("replayed_at IS NULL"))
        if consumer is not None:
            clauses.append(sql.SQL("consumer = %s"))
        query = sql.SQL("SELECT {} FROM dead_letters WHERE {} ORDER BY id").format(
            _DEAD_LETTER_COLS, sql.SQL(" AND ").join(clauses)
        )
        params = (consumer,) if consumer is not None else ()
        return [dict(zip(DEAD_LETTER_COLUMNS, r)) for r in await self._execute(query, params)]

    async def request_replay(self, consumer: str) -> int:
        async with _errors(self.url), self._require_pool().connection() as conn:
            cur = await conn.execute(
                "UPDATE dead_letters SET replay_requested_at = COALESCE(replay_requested_at, %s) "
                "WHERE consumer = %s AND replayed_at IS NULL",
                (now_ms(), consumer),
            )
            return cur.rowcount

    async def requested_letters(self, consumers: Sequence[str], limit: int) -> list[dict]:
        names = list(dict.fromkeys(consumers))
        if not names or limit <= 0:
            return []
        query = sql.SQL(
            "SELECT {} FROM dead_letters WHERE replay_requested_at IS NOT NULL AND replayed_at IS NULL "
            "AND consumer = ANY(%s) ORDER BY id LIMIT %s"
        ).format(_DEAD_LETTER_COLS)
        return [dict(zip(DEAD_LETTER_COLUMNS, r)) for r in await self._execute(query, (names, limit))]

    async def mark_dead_letter(self, letter_id: int, replayed_at: int | None, result: str) -> None:
        await self._execute("UPDATE dead_letters SET replayed_at = %s, replay_result = %s WHERE id = %s",
                            (replayed_at, result, letter_id), fetch=False)

    async def recent_trade_keys(self, key: ConnectionKey, since_ms: int, limit: int) -> list[tuple]:
        where, params = _key_filter(key, None)
        query = sql.SQL(
            "SELECT exchange, market, account, symbol, trade_id, order_id FROM trades {} "
            "AND timestamp >= %s ORDER BY timestamp DESC LIMIT %s"
        ).format(where)
        return [tuple(r) for r in await self._execute(query, (*params, since_ms, limit))]

    async def symbols(self, key: ConnectionKey) -> list[str]:
        where, params = _key_filter(key, None)
        rows = await self._execute(sql.SQL("SELECT DISTINCT symbol FROM trades {}").format(where), params)
        return [r[0] for r in rows]


def _letter_row(row: tuple) -> tuple:
    """A dead letter (key, raw, error, received_at[, consumer]) as a row of _INSERT_DEAD_LETTERS."""
    key, raw, error, received_at, *consumer = row
    return (key, raw_to_text(raw), error, received_at, consumer[0] if consumer else None)


def _key_filter(key: ConnectionKey | None, symbol: str | None) -> tuple[sql.Composable, tuple]:
    clauses, params = [sql.SQL("TRUE")], []
    if key is not None:
        clauses += [sql.SQL("exchange = %s"), sql.SQL("market = %s"), sql.SQL("account = %s")]
        params += [key.exchange, key.market.value, key.account]
    if symbol is not None:
        clauses.append(sql.SQL("symbol = %s"))
        params.append(symbol)
    return sql.SQL("WHERE ") + sql.SQL(" AND ").join(clauses), tuple(params)
