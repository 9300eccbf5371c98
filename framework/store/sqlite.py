"""SQLite trade store: one file, one writer thread, decimals kept as exact text."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

from framework.account import BalanceUpdate, PositionUpdate
from framework.errors import ConfigError, LifecycleError, StoreError
from framework.events import ConnectionKey, OrderUpdate, Trade
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
    trade_from_row,
    trade_row,
)

T = TypeVar("T")

MIGRATIONS: tuple[str, ...] = (
    # 1: trades, orders, dead letters
    """
    CREATE TABLE trades (
        exchange TEXT NOT NULL, market TEXT NOT NULL, account TEXT NOT NULL, symbol TEXT NOT NULL,
        symbol_raw TEXT NOT NULL, trade_id TEXT NOT NULL, order_id TEXT NOT NULL, client_order_id TEXT,
        side TEXT NOT NULL, amount TEXT NOT NULL, price TEXT NOT NULL, cost TEXT NOT NULL,
        fee_cost TEXT, fee_currency TEXT, is_maker INTEGER, timestamp INTEGER NOT NULL,
        received_at INTEGER NOT NULL, source TEXT NOT NULL, raw TEXT,
        stored_at INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
        PRIMARY KEY (exchange, market, account, symbol, trade_id, order_id)
    ) WITHOUT ROWID;
    CREATE INDEX trades_by_time ON trades (exchange, market, account, symbol, timestamp);
    CREATE TABLE orders (
        exchange TEXT NOT NULL, market TEXT NOT NULL, account TEXT NOT NULL, symbol TEXT NOT NULL,
        symbol_raw TEXT NOT NULL, order_id TEXT NOT NULL, client_order_id TEXT, side TEXT NOT NULL,
        order_type TEXT NOT NULL, status TEXT NOT NULL, status_raw TEXT NOT NULL, amount TEXT NOT NULL,
        price TEXT, filled TEXT NOT NULL, timestamp INTEGER NOT NULL, received_at INTEGER NOT NULL,
        raw TEXT, status_rank INTEGER NOT NULL,
        PRIMARY KEY (exchange, market, account, symbol, order_id)
    ) WITHOUT ROWID;
    CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY AUTOINCREMENT, connection_key TEXT NOT NULL, raw TEXT,
        error TEXT NOT NULL, received_at INTEGER NOT NULL
    );
    """,
    # 2: dead letters remember their replay
    """
    ALTER TABLE dead_letters ADD COLUMN replayed_at INTEGER;
    ALTER TABLE dead_letters ADD COLUMN replay_result TEXT
    """,
    # 3: a store-wide sequence number per fill (existing rows numbered in the order they were stored),
    #    per-symbol coverage marks and durable delivery positions. `seq` is the rowid: a new row takes
    #    MAX(seq) + 1 and costs an append, not a third index (fills are never deleted, so a seq never returns;
    #    AUTOINCREMENT would cost ~9% of ingest for nothing); the dedup key becomes a UNIQUE index.
    """
    CREATE TABLE trades_v3 (
        seq INTEGER PRIMARY KEY,
        exchange TEXT NOT NULL, market TEXT NOT NULL, account TEXT NOT NULL, symbol TEXT NOT NULL,
        symbol_raw TEXT NOT NULL, trade_id TEXT NOT NULL, order_id TEXT NOT NULL, client_order_id TEXT,
        side TEXT NOT NULL, amount TEXT NOT NULL, price TEXT NOT NULL, cost TEXT NOT NULL,
        fee_cost TEXT, fee_currency TEXT, is_maker INTEGER, timestamp INTEGER NOT NULL,
        received_at INTEGER NOT NULL, source TEXT NOT NULL, raw TEXT,
        stored_at INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
        UNIQUE (exchange, market, account, symbol, trade_id, order_id)
    );
    INSERT INTO trades_v3 (
        seq, exchange, market, account, symbol, symbol_raw, trade_id, order_id, client_order_id, side, amount,
        price, cost, fee_cost, fee_currency, is_maker, timestamp, received_at, source, raw, stored_at
    )
    SELECT row_number() OVER (
            ORDER BY stored_at, timestamp, trade_id, exchange, market, account, symbol, order_id),
        exchange, market, account, symbol, symbol_raw, trade_id, order_id, client_order_id, side, amount,
        price, cost, fee_cost, fee_currency, is_maker, timestamp, received_at, source, raw, stored_at
    FROM trades;
    DROP TABLE trades;
    ALTER TABLE trades_v3 RENAME TO trades;
    CREATE INDEX trades_by_time ON trades (exchange, market, account, symbol, timestamp);
    CREATE TABLE coverage (
        exchange TEXT NOT NULL, market TEXT NOT NULL, account TEXT NOT NULL, symbol TEXT NOT NULL,
        complete_until INTEGER NOT NULL,
        PRIMARY KEY (exchange, market, account, symbol)
    ) WITHOUT ROWID;
    CREATE TABLE deliveries (
        strategy_id TEXT PRIMARY KEY, position INTEGER NOT NULL, running INTEGER NOT NULL, prefix TEXT,
        updated_at INTEGER NOT NULL
    )
    """,
    # 4: dead letters per consumer (NULL: refused by the pipeline itself) and replay requests; the running
    #    pipeline polls the requested ones through a partial index that holds only those
    """
    ALTER TABLE dead_letters ADD COLUMN consumer TEXT;
    ALTER TABLE dead_letters ADD COLUMN replay_requested_at INTEGER;
    CREATE INDEX dead_letters_requested ON dead_letters (consumer, id)
        WHERE replay_requested_at IS NOT NULL AND replayed_at IS NULL
    """,
    # 5: order states by venue time per key, for a strategy reading back the latest states (orders_since), in
    #    orders_since's order: no sort (order_id and symbol cost nothing here, an index row carries the key anyway)
    """
    CREATE INDEX orders_by_time ON orders (exchange, market, account, timestamp, order_id, symbol)
    """,
    # 6: account state: the latest balance per asset and position per symbol (and hedge leg), and their history
    """
    CREATE TABLE balances (
        exchange TEXT NOT NULL, market TEXT NOT NULL, account TEXT NOT NULL, asset TEXT NOT NULL,
        free TEXT, locked TEXT, total TEXT, delta TEXT, reason TEXT, timestamp INTEGER NOT NULL,
        received_at INTEGER NOT NULL, source TEXT NOT NULL, raw TEXT,
        PRIMARY KEY (exchange, market, account, asset)
    ) WITHOUT ROWID;
    CREATE TABLE balance_history (
        id INTEGER PRIMARY KEY,
        exchange TEXT NOT NULL, market TEXT NOT NULL, account TEXT NOT NULL, asset TEXT NOT NULL,
        free TEXT, locked TEXT, total TEXT, delta TEXT, reason TEXT, timestamp INTEGER NOT NULL,
        received_at INTEGER NOT NULL, source TEXT NOT NULL, raw TEXT
    );
    CREATE TABLE positions (
        exchange TEXT NOT NULL, market TEXT NOT NULL, account TEXT NOT NULL, symbol TEXT NOT NULL,
        position_side TEXT NOT NULL, symbol_raw TEXT NOT NULL, direction TEXT NOT NULL, size TEXT NOT NULL,
        contracts TEXT, entry_price TEXT, mark_price TEXT, unrealized_pnl TEXT, realized_pnl TEXT, leverage TEXT,
        liquidation_price TEXT, margin_mode TEXT, timestamp INTEGER NOT NULL, received_at INTEGER NOT NULL,
        source TEXT NOT NULL, raw TEXT,
        PRIMARY KEY (exchange, market, account, symbol, position_side)
    ) WITHOUT ROWID;
    CREATE TABLE position_history (
        id INTEGER PRIMARY KEY,
        exchange TEXT NOT NULL, market TEXT NOT NULL, account TEXT NOT NULL, symbol TEXT NOT NULL,
        position_side TEXT NOT NULL, symbol_raw TEXT NOT NULL, direction TEXT NOT NULL, size TEXT NOT NULL,
        contracts TEXT, entry_price TEXT, mark_price TEXT, unrealized_pnl TEXT, realized_pnl TEXT, leverage TEXT,
        liquidation_price TEXT, margin_mode TEXT, timestamp INTEGER NOT NULL, received_at INTEGER NOT NULL,
        source TEXT NOT NULL, raw TEXT
    )
    """,
    # 7: order entry: every request's path, attempts and latency (also on the orders row once placed)
    """
    ALTER TABLE orders ADD COLUMN request_path TEXT;
    ALTER TABLE orders ADD COLUMN attempts INTEGER;
    ALTER TABLE orders ADD COLUMN ack_latency_ms REAL;
    CREATE TABLE order_requests (
        exchange TEXT NOT NULL, market TEXT NOT NULL, account TEXT NOT NULL, client_order_id TEXT NOT NULL,
        strategy_id TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL, order_type TEXT NOT NULL,
        amount TEXT NOT NULL, price TEXT, state TEXT NOT NULL, order_id TEXT, filled TEXT NOT NULL,
        request_path TEXT, attempts INTEGER NOT NULL, ack_latency_ms REAL, reason TEXT, parent TEXT,
        kind TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL,
        PRIMARY KEY (exchange, market, account, client_order_id)
    ) WITHOUT ROWID
    """,
)

_UPSERT_BALANCE = (
    f"INSERT INTO balances ({', '.join(BALANCE_COLUMNS)}) VALUES ({', '.join('?' * len(BALANCE_COLUMNS))}) "
    "ON CONFLICT (exchange, market, account, asset) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in BALANCE_COLUMNS[4:])
    + " WHERE excluded.timestamp >= balances.timestamp"
)
_UPSERT_POSITION = (
    f"INSERT INTO positions ({', '.join(POSITION_COLUMNS)}) VALUES ({', '.join('?' * len(POSITION_COLUMNS))}) "
    "ON CONFLICT (exchange, market, account, symbol, position_side) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in POSITION_COLUMNS[5:])
    + " WHERE excluded.timestamp >= positions.timestamp"
)
_ADD_BALANCE = (f"INSERT INTO balance_history ({', '.join(BALANCE_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(BALANCE_COLUMNS))})")
_ADD_POSITION = (f"INSERT INTO position_history ({', '.join(POSITION_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * len(POSITION_COLUMNS))})")

_UPSERT_REQUEST = (
    f"INSERT INTO order_requests ({', '.join(ORDER_REQUEST_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(ORDER_REQUEST_COLUMNS))}) "
    "ON CONFLICT (exchange, market, account, client_order_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in ORDER_REQUEST_COLUMNS[4:])
    + " WHERE excluded.updated >= order_requests.updated"
)

# A placed order's row takes its request's path, attempts and latency from the request as stored (the newest).
_REQUEST_ON_ORDER = (
    "UPDATE orders SET request_path = r.request_path, attempts = r.attempts, ack_latency_ms = r.ack_latency_ms "
    "FROM order_requests AS r WHERE r.exchange = ? AND r.market = ? AND r.account = ? AND r.client_order_id = ? "
    "AND orders.exchange = r.exchange AND orders.market = r.market AND orders.account = r.account "
    "AND orders.symbol = r.symbol AND orders.order_id = r.order_id"
)

_INSERT_TRADE = (
    f"INSERT INTO trades ({', '.join(TRADE_COLUMNS)}) VALUES ({', '.join('?' * len(TRADE_COLUMNS))}) "
    "ON CONFLICT (exchange, market, account, symbol, trade_id, order_id) DO NOTHING"
)
_UPSERT_ORDER = (
    f"INSERT INTO orders ({', '.join(ORDER_COLUMNS)}, status_rank) "
    f"VALUES ({', '.join('?' * (len(ORDER_COLUMNS) + 1))}) "
    "ON CONFLICT (exchange, market, account, symbol, order_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in ORDER_COLUMNS[4:] + ("status_rank",))
    + " WHERE order_is_newer(excluded.filled, excluded.status_rank, excluded.timestamp,"
    " orders.filled, orders.status_rank, orders.timestamp)"
)
_COMPLETE_FEE = (
    "UPDATE trades SET fee_cost = ?, fee_currency = ? WHERE exchange = ? AND market = ? AND account = ? "
    "AND symbol = ? AND trade_id = ? AND order_id = ? AND fee_cost IS NULL"
)
_ADVANCE_COVERAGE = (
    "INSERT INTO coverage (exchange, market, account, symbol, complete_until) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (exchange, market, account, symbol) DO UPDATE SET "
    "complete_until = MAX(coverage.complete_until, excluded.complete_until)"
)
_SET_DELIVERY = (
    "INSERT INTO deliveries (strategy_id, position, running, prefix, updated_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (strategy_id) DO UPDATE SET position = MAX(deliveries.position, excluded.position), "
    "running = excluded.running, prefix = excluded.prefix, updated_at = excluded.updated_at"
)
_ADD_DEAD_LETTER = "INSERT INTO dead_letters (connection_key, raw, error, received_at, consumer) VALUES (?, ?, ?, ?, ?)"
_CHUNK = 500  # ids per `IN (...)`: well under SQLite's bound on parameters
_ORDER_BY_TIME = "ORDER BY timestamp, order_id, symbol"
_GROUPS = 100  # key groups per orders_since statement


def orders_since_sql(groups: int) -> str:
    """orders_since for `groups` key groups: each group's first states since the time, read in order through
    orders_by_time (no sort, at most `limit` rows each), then merged. Parameters: per group (exchange, market,
    account, since_ms, limit), then limit again when there are several groups."""
    one = (
        f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders WHERE exchange = ? AND market = ? AND account = ? "
        f"AND timestamp >= ? {_ORDER_BY_TIME} LIMIT ?"
    )
    if groups == 1:
        return one
    return " UNION ALL ".join([f"SELECT * FROM ({one})"] * groups) + f" {_ORDER_BY_TIME} LIMIT ?"


def _order_is_newer(f1: str, r1: int, t1: int, f2: str, r2: int, t2: int) -> int:
    return int((Decimal(f1), r1, t1) > (Decimal(f2), r2, t2))


def _path_of(url: str) -> Path:
    path = url.removeprefix("sqlite://")
    if path.startswith("/"):
        path = path[1:]  # sqlite:///relative/path ; sqlite:////absolute/path
    if not path:
        raise ConfigError("sqlite store URL needs a file path: sqlite:///data/trades.sqlite")
    return Path(path)


class SQLiteTradeStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.path = _path_of(url)
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        if self._conn is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        try:
            self._conn = await self._run(self._open)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    async def stop(self) -> None:
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)
        self._executor = None

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.create_function("order_is_newer", 6, _order_is_newer, deterministic=True)
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at INTEGER NOT NULL)")
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
            if current > len(MIGRATIONS):
                raise StoreError(
                    f"{self.path} has schema version {current}, newer than this tradesync ({len(MIGRATIONS)}): upgrade"
                )
            for version in range(current + 1, len(MIGRATIONS) + 1):
                for statement in MIGRATIONS[version - 1].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (?, ?)", (version, int(time.time() * 1000)))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
            raise
        return conn

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise LifecycleError("the SQLite store is not started")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except sqlite3.Error as exc:
            transient = isinstance(exc, sqlite3.OperationalError)  # locked, disk I/O, unreachable file
            raise StoreError(f"sqlite {self.path}: {one_line(exc)}", transient=transient) from exc
        except CONVERSION_ERRORS as exc:  # e.g. an int beyond 64 bits: sqlite3 cannot bind it
            raise StoreError(f"sqlite {self.path}: value refused: {one_line(exc)}", transient=False) from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LifecycleError("the SQLite store is not started")
        return self._conn

    # Rows are built in the store's thread too, inside _run: a value that cannot be converted is a StoreError.

    async def insert_trades(self, trades: Sequence[Trade]) -> list[int | None]:
        return (await self._run(self._write_batch, trades, (), (), ()))[0] if trades else []

    async def write_batch(
        self, trades: Sequence[Trade], fee_copies: Sequence[Trade], orders: Sequence[OrderUpdate],
        dead_rows: Sequence[tuple], balances: Sequence[BalanceUpdate] = (), positions: Sequence[PositionUpdate] = (),
    ) -> tuple[list[int | None], list[tuple]]:
        if not (trades or fee_copies or orders or dead_rows or balances or positions):
            return [], []
        return await self._run(self._write_batch, trades, fee_copies, orders, dead_rows, balances, positions)

    def _write_batch(
        self, trades: Sequence[Trade], fee_copies: Sequence[Trade], orders: Sequence[OrderUpdate],
        dead_rows: Sequence[tuple], balances: Sequence[BalanceUpdate] = (), positions: Sequence[PositionUpdate] = (),
    ) -> tuple[list[int | None], list[tuple]]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT, one sync), taken before the first row: fills, fees,
        order states, dead letters, account states. No other writer can take seqs in between, so new fills get
        increasing seqs (their rowid) in the order given; a refused row rolls back the whole batch."""
        trade_rows = [trade_row(t, str) for t in trades]
        fee_rows = _fee_rows(fee_copies)
        order_rows = [order_row(o, str) for o in orders]
        letter_rows = [_letter_row(row) for row in dead_rows]
        conn = self._connection()
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            inserted: list[int | None] = []
            for row in trade_rows:
                cur.execute(_INSERT_TRADE, row)
                inserted.append(cur.lastrowid if cur.rowcount == 1 else None)
            completed = [tuple(row[2:]) for row in fee_rows if cur.execute(_COMPLETE_FEE, row).rowcount == 1]
            if order_rows:
                cur.executemany(_UPSERT_ORDER, order_rows)
            if letter_rows:
                cur.executemany(_ADD_DEAD_LETTER, letter_rows)
            self._account_rows(cur, balances, positions)
            cur.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                cur.execute("ROLLBACK")
            raise
        return inserted, completed

    async def complete_fees(self, trades: Sequence[Trade]) -> list[tuple]:
        return await self._run(self._complete_fees, trades) if trades else []

    def _complete_fees(self, trades: Sequence[Trade]) -> list[tuple]:
        rows = _fee_rows(trades)
        conn = self._connection()
        completed = []
        with conn:
            conn.execute("BEGIN")
            for row in rows:
                if conn.execute(_COMPLETE_FEE, row).rowcount == 1:
                    completed.append(tuple(row[2:]))
        return completed

    async def max_seq(self) -> int:
        return (await self._run(self._select, "SELECT COALESCE(MAX(seq), 0) FROM trades", ()))[0][0]

    async def trades_after(
        self, keys: Sequence[ConnectionKey], after_seq: int, limit: int
    ) -> list[tuple[int, Trade]]:
        groups = key_filter_groups(keys)
        if not groups or limit <= 0:
            return []
        match = " OR ".join(["(exchange = ? AND market = ? AND account = ?)"] * len(groups))
        rows = await self._run(
            self._select,
            f"SELECT seq, {', '.join(TRADE_COLUMNS)} FROM trades WHERE seq > ? AND ({match}) ORDER BY seq LIMIT ?",
            (after_seq, *(v for g in groups for v in g), limit),
        )
        return [(r[0], trade_from_row(r[1:], seq=r[0])) for r in rows]

    async def get_coverage(self, key: ConnectionKey) -> dict[str, int]:
        where, params = _key_filter(key, None)
        rows = await self._run(self._select, f"SELECT symbol, complete_until FROM coverage{where}", params)
        return dict(rows)

    async def advance_coverage(self, key: ConnectionKey, marks: Mapping[str, int]) -> None:
        if marks:
            await self._run(self._advance_coverage, key, dict(marks))

    def _advance_coverage(self, key: ConnectionKey, marks: dict[str, int]) -> None:
        rows = [(key.exchange, key.market.value, key.account, symbol, int(ms)) for symbol, ms in marks.items()]
        self._execute_many(_ADVANCE_COVERAGE, rows)

    async def get_delivery(self, strategy_id: str) -> tuple[int, bool] | None:
        rows = await self._run(
            self._select, "SELECT position, running FROM deliveries WHERE strategy_id = ?", (strategy_id,)
        )
        return (rows[0][0], bool(rows[0][1])) if rows else None

    async def set_delivery(self, strategy_id: str, position: int, running: bool, prefix: str | None) -> None:
        await self._run(
            lambda: self._execute(_SET_DELIVERY, (strategy_id, int(position), int(bool(running)), prefix, _now_ms()))
        )

    async def delivery_prefixes(self) -> dict[str, str]:
        rows = await self._run(
            self._select, "SELECT strategy_id, prefix FROM deliveries WHERE prefix IS NOT NULL", ()
        )
        return dict(rows)

    async def client_order_ids(self, key: ConnectionKey, order_ids: Sequence[str]) -> dict[str, str]:
        where, params = _key_filter(key, None)
        wanted = list(dict.fromkeys(map(str, order_ids)))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start:start + _CHUNK]
            rows = await self._run(
                self._select,
                f"SELECT order_id, client_order_id FROM orders{where} AND client_order_id IS NOT NULL "
                f"AND order_id IN ({', '.join('?' * len(chunk))})",
                (*params, *chunk),
            )
            found.update(rows)
        return found

    async def fee_missing_keys(self, key: ConnectionKey, since_ms: int, limit: int) -> list[tuple]:
        where, params = _key_filter(key, None)
        rows = await self._run(
            self._select,
            f"SELECT symbol, trade_id, order_id FROM trades{where} AND fee_cost IS NULL AND timestamp >= ? "
            "ORDER BY timestamp DESC LIMIT ?",
            (*params, since_ms, limit),
        )
        return [(key.exchange, key.market.value, key.account, *r) for r in rows]

    async def upsert_orders(self, updates: Sequence[OrderUpdate]) -> int:
        return await self._run(self._upsert_orders, updates)

    def _upsert_orders(self, updates: Sequence[OrderUpdate]) -> int:
        rows = [order_row(o, str) for o in updates]
        conn = self._connection()
        before = conn.total_changes
        with conn:
            conn.execute("BEGIN")
            conn.executemany(_UPSERT_ORDER, rows)
        return conn.total_changes - before

    async def orders_since(self, keys: Sequence[ConnectionKey], since_ms: int, limit: int) -> list[OrderUpdate]:
        groups = key_filter_groups(keys)
        if not groups or limit <= 0:
            return []
        rows = []
        for start in range(0, len(groups), _GROUPS):  # SQLite takes at most 500 terms in one UNION ALL
            chunk = groups[start:start + _GROUPS]
            params = (*(v for g in chunk for v in (*g, since_ms, limit)), *([limit] if len(chunk) > 1 else []))
            rows += await self._run(self._select, orders_since_sql(len(chunk)), params)
        states = [order_from_row(r) for r in rows]
        if len(groups) > _GROUPS:  # chunks merged as SQLite orders them (str order is BINARY's)
            states.sort(key=lambda o: (o.timestamp, o.order_id, o.symbol))
        return states[:limit]

    async def add_dead_letter(
        self, key: str, raw: Any, error: str, received_at: int, consumer: str | None = None
    ) -> None:
        await self._run(self._add_dead_letter, key, raw, error, received_at, consumer)

    def _add_dead_letter(self, key: str, raw: Any, error: str, received_at: int, consumer: str | None) -> None:
        self._connection().execute(_ADD_DEAD_LETTER, _letter_row((key, raw, error, received_at, consumer)))

    def _select(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        return self._connection().execute(sql, params).fetchall()

    async def fetch_trades(self, key: ConnectionKey | None = None, symbol: str | None = None) -> list[Trade]:
        where, params = _key_filter(key, symbol)
        rows = await self._run(
            self._select, f"SELECT seq, {', '.join(TRADE_COLUMNS)} FROM trades{where} ORDER BY timestamp, trade_id",
            params,
        )
        return [trade_from_row(r[1:], seq=r[0]) for r in rows]

    async def fetch_orders(self, key: ConnectionKey | None = None) -> list[OrderUpdate]:
        where, params = _key_filter(key, None)
        rows = await self._run(self._select, f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders{where}", params)
        return [order_from_row(r) for r in rows]

    async def write_account(self, balances: Sequence[BalanceUpdate], positions: Sequence[PositionUpdate]) -> None:
        if balances or positions:
            await self._run(self._write_account, balances, positions)

    def _write_account(self, balances: Sequence[BalanceUpdate], positions: Sequence[PositionUpdate]) -> None:
        conn = self._connection()
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            self._account_rows(cur, balances, positions)
            cur.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                cur.execute("ROLLBACK")
            raise

    @staticmethod
    def _account_rows(cur: sqlite3.Cursor, balances: Sequence[BalanceUpdate], positions: Sequence[PositionUpdate]
                      ) -> None:
        """Inside a write transaction: every update into the history, absolute ones over older latest states."""
        if balances:
            rows = [balance_row(b, str) for b in balances]
            cur.executemany(_ADD_BALANCE, rows)
            cur.executemany(_UPSERT_BALANCE, [row for row, b in zip(rows, balances) if not b.is_delta])
        if positions:
            rows = [position_row(p, str) for p in positions]
            cur.executemany(_ADD_POSITION, rows)
            cur.executemany(_UPSERT_POSITION, rows)

    async def record_order_requests(self, requests: Sequence[Any]) -> None:
        if requests:
            await self._run(self._record_order_requests, [order_request_row(r, str) for r in requests])

    def _record_order_requests(self, rows: Sequence[tuple]) -> None:
        conn = self._connection()
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.executemany(_UPSERT_REQUEST, rows)
            cur.executemany(_REQUEST_ON_ORDER, {(r[0], r[1], r[2], r[3]) for r in rows})
            cur.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                cur.execute("ROLLBACK")
            raise

    async def fetch_order_requests(self, key: ConnectionKey | None = None) -> list[dict]:
        where, params = _key_filter(key, None)
        rows = await self._run(self._select, f"SELECT {', '.join(ORDER_REQUEST_COLUMNS)} FROM order_requests{where} "
                               "ORDER BY created, client_order_id", params)
        return [dict(zip(ORDER_REQUEST_COLUMNS, row)) for row in rows]

    async def fetch_balances(self, key: ConnectionKey | None = None) -> list[BalanceUpdate]:
        where, params = _key_filter(key, None)
        rows = await self._run(self._select, f"SELECT {', '.join(BALANCE_COLUMNS)} FROM balances{where} "
                               "ORDER BY exchange, market, account, asset", params)
        return [balance_from_row(r) for r in rows]

    async def fetch_positions(self, key: ConnectionKey | None = None) -> list[PositionUpdate]:
        where, params = _key_filter(key, None)
        rows = await self._run(self._select, f"SELECT {', '.join(POSITION_COLUMNS)} FROM positions{where} "
                               "ORDER BY exchange, market, account, symbol, position_side", params)
        return [position_from_row(r) for r in rows]

    async def account_history(
        self, key: ConnectionKey | None = None
    ) -> tuple[list[BalanceUpdate], list[PositionUpdate]]:
        where, params = _key_filter(key, None)
        balances = await self._run(self._select, f"SELECT {', '.join(BALANCE_COLUMNS)} FROM balance_history{where} "
                                   "ORDER BY id", params)
        positions = await self._run(self._select, f"SELECT {', '.join(POSITION_COLUMNS)} FROM position_history"
                                    f"{where} ORDER BY id", params)
        return [balance_from_row(r) for r in balances], [position_from_row(r) for r in positions]

    async def fetch_dead_letters(self, pending_only: bool = False, consumer: str | None = None) -> list[dict]:
        clauses = (["replayed_at IS NULL"] if pending_only else []) + (["consumer = ?"] if consumer is not None else [])
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        params = (consumer,) if consumer is not None else ()
        rows = await self._run(self._select, f"SELECT {', '.join(DEAD_LETTER_COLUMNS)} FROM dead_letters{where} "
                               "ORDER BY id", params)
        return [dict(zip(DEAD_LETTER_COLUMNS, r)) for r in rows]

    async def request_replay(self, consumer: str) -> int:
        return await self._run(self._request_replay, consumer)

    def _request_replay(self, consumer: str) -> int:
        return self._connection().execute(
            "UPDATE dead_letters SET replay_requested_at = COALESCE(replay_requested_at, ?) "
            "WHERE consumer = ? AND replayed_at IS NULL",
            (_now_ms(), consumer),
        ).rowcount

    async def requested_letters(self, consumers: Sequence[str], limit: int) -> list[dict]:
        names = list(dict.fromkeys(consumers))
        if not names or limit <= 0:
            return []
        rows = []
        for start in range(0, len(names), _CHUNK):
            chunk = names[start:start + _CHUNK]
            rows += await self._run(
                self._select,
                f"SELECT {', '.join(DEAD_LETTER_COLUMNS)} FROM dead_letters WHERE replay_requested_at IS NOT NULL "
                f"AND replayed_at IS NULL AND consumer IN ({', '.join('?' * len(chunk))}) ORDER BY id LIMIT ?",
                (*chunk, limit),
            )
        rows.sort(key=lambda r: r[0])
        return [dict(zip(DEAD_LETTER_COLUMNS, r)) for r in rows[:limit]]

    async def mark_dead_letter(self, letter_id: int, replayed_at: int | None, result: str) -> None:
        await self._run(self._execute, "UPDATE dead_letters SET replayed_at = ?, replay_result = ? WHERE id = ?",
                        (replayed_at, result, letter_id))

    def _execute(self, sql: str, params: Sequence[Any]) -> None:
        self._connection().execute(sql, params)

    def _execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        conn = self._connection()
        with conn:
            conn.execute("BEGIN")
            conn.executemany(sql, rows)

    async def recent_trade_keys(self, key: ConnectionKey, since_ms: int, limit: int) -> list[tuple]:
        where, params = _key_filter(key, None)
        rows = await self._run(
            self._select,
            f"SELECT symbol, trade_id, order_id FROM trades{where} AND timestamp >= ? ORDER BY timestamp DESC LIMIT ?",
            (*params, since_ms, limit),
        )
        return [(key.exchange, key.market.value, key.account, *r) for r in rows]

    async def symbols(self, key: ConnectionKey) -> list[str]:
        where, params = _key_filter(key, None)
        return [r[0] for r in await self._run(self._select, f"SELECT DISTINCT symbol FROM trades{where}", params)]


def _fee_rows(trades: Sequence[Trade]) -> list[tuple]:
    """(fee_cost, fee_currency, *dedup key) of the fills that carry a fee, for _COMPLETE_FEE."""
    return [(str(t.fee_cost), t.fee_currency, *t.dedup_key) for t in trades if t.fee_cost is not None]


def _letter_row(row: tuple) -> tuple:
    """A dead letter (key, raw, error, received_at[, consumer]) as a row of _ADD_DEAD_LETTER."""
    key, raw, error, received_at, *consumer = row
    return (key, raw_to_text(raw), error, received_at, consumer[0] if consumer else None)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _key_filter(key: ConnectionKey | None, symbol: str | None) -> tuple[str, tuple]:
    clauses, params = [], []
    if key is not None:
        clauses += ["exchange = ?", "market = ?", "account = ?"]
        params += [key.exchange, key.market.value, key.account]
    if symbol is not None:
        clauses.append("symbol = ?")
        params.append(symbol)
    return (" WHERE " + " AND ".join(clauses) if clauses else " WHERE 1=1"), tuple(params)
