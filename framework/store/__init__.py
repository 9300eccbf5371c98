"""The trade store: one small protocol, SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any, Callable, Mapping, Protocol, Sequence

import attrs
import msgspec

from framework.errors import ConfigError
from framework.account import BalanceUpdate, PositionUpdate
from framework.events import ConnectionKey, OrderStatus, OrderUpdate, Trade

DEFAULT_STORE_URL = "sqlite:///data/trades.sqlite"

TRADE_COLUMNS = (
    "exchange", "market", "account", "symbol", "symbol_raw", "trade_id", "order_id", "client_order_id",
    "side", "amount", "price", "cost", "fee_cost", "fee_currency", "is_maker", "timestamp",
    "received_at", "source", "raw",
)
ORDER_COLUMNS = (
    "exchange", "market", "account", "symbol", "symbol_raw", "order_id", "client_order_id", "side",
    "order_type", "status", "status_raw", "amount", "price", "filled", "timestamp", "received_at", "raw",
)
# Account state (migration 6): the latest per (…, asset) / (…, symbol, position_side), a newer-or-equal venue time
# replacing it, and an append-only history of every update (a delta-only balance update goes to the history alone).
BALANCE_COLUMNS = (
    "exchange", "market", "account", "asset", "free", "locked", "total", "delta", "reason", "timestamp",
    "received_at", "source", "raw",
)
POSITION_COLUMNS = (
    "exchange", "market", "account", "symbol", "position_side", "symbol_raw", "direction", "size", "contracts",
    "entry_price", "mark_price", "unrealized_pnl", "realized_pnl", "leverage", "liquidation_price", "margin_mode",
    "timestamp", "received_at", "source", "raw",
)
DEAD_LETTER_COLUMNS = (
    "id", "connection_key", "raw", "error", "received_at", "replayed_at", "replay_result", "consumer",
    "replay_requested_at",
)
STATUS_RANK = {
    OrderStatus.NEW: 0,
    OrderStatus.PARTIALLY_FILLED: 1,
    OrderStatus.FILLED: 2,
    OrderStatus.CANCELED: 2,
    OrderStatus.REJECTED: 2,
    OrderStatus.EXPIRED: 2,
}


class TradeStore(Protocol):
    """Where fills, order states and dead letters live. Opened in start(), closed in stop()."""

    url: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def insert_trades(self, trades: Sequence[Trade]) -> list[int | None]:
        """Insert fills with distinct dedup keys, in the order given; per fill its new `seq` (a store-wide
        number, increasing in the order given), or None if it was already stored. A value the database
        cannot take (e.g. an int out of range) raises StoreError(transient=False), never another type."""

    async def complete_fees(self, trades: Sequence[Trade]) -> list[tuple]:
        """Fill in fee_cost / fee_currency of stored fills that have none (e.g. Binance TRADE_LITE first);
        returns the dedup keys of the rows it completed."""

    async def write_batch(
        self, trades: Sequence[Trade], fee_copies: Sequence[Trade], orders: Sequence[OrderUpdate],
        dead_rows: Sequence[tuple],
    ) -> tuple[list[int | None], list[tuple]]:
        """What one batch of the writer changes, in ONE transaction: insert_trades(trades), complete_fees(
        fee_copies), upsert_orders(orders), add_dead_letter per row (key, raw, error, received_at[, consumer]).
        Returns (what insert_trades returns, what complete_fees returns). All or nothing: a refused value raises
        StoreError(transient=False), an unreachable store StoreError(transient=True)."""

    async def max_seq(self) -> int:
        """The highest `seq` stored (0 when there is none)."""

    async def trades_after(
        self, keys: Sequence[ConnectionKey], after_seq: int, limit: int
    ) -> list[tuple[int, Trade]]:
        """Up to `limit` stored fills of these keys with seq > after_seq, as (seq, Trade), by seq."""

    async def get_coverage(self, key: ConnectionKey) -> dict[str, int]:
        """Per symbol ('*': every symbol of the key), the time (ms) up to which every fill is stored."""

    async def advance_coverage(self, key: ConnectionKey, marks: Mapping[str, int]) -> None:
        """Move coverage marks forward (a mark never moves back)."""

    async def get_delivery(self, strategy_id: str) -> tuple[int, bool] | None:
        """A strategy's durable delivery position: (seq of the last fill it has processed, whether it was
        running when last written: True after a kill), or None for a strategy never seen."""

    async def set_delivery(self, strategy_id: str, position: int, running: bool, prefix: str | None) -> None:
        """Write a strategy's delivery position (it never moves back), running flag and client-order-id prefix."""

    async def delivery_prefixes(self) -> dict[str, str]:
        """Every strategy id ever written with its client-order-id prefix."""

    async def client_order_ids(self, key: ConnectionKey, order_ids: Sequence[str]) -> dict[str, str]:
        """order_id -> client_order_id from the orders table, for the ids that have one."""

    async def fee_missing_keys(self, key: ConnectionKey, since_ms: int, limit: int) -> list[tuple]:
        """Dedup keys of stored fills since `since_ms` that still have no fee (newest first)."""

    async def upsert_orders(self, updates: Sequence[OrderUpdate]) -> int:
        """Keep the latest state per order (one update per order here); returns rows changed."""

    async def orders_since(self, keys: Sequence[ConnectionKey], since_ms: int, limit: int) -> list[OrderUpdate]:
        """The latest stored state of every order of these keys whose `timestamp` (venue time, ms) is ≥ since_ms,
        oldest first by (timestamp, order_id, symbol), at most `limit` (read through the orders_by_time index)."""

    async def add_dead_letter(
        self, key: str, raw: Any, error: str, received_at: int, consumer: str | None = None
    ) -> None:
        """Keep what could not be handled. `consumer` None: a frame or event the pipeline itself refused;
        a name: a CRITICAL event that consumer missed (`raw` is `framework.spool.encode(kind, event)`)."""

    async def fetch_trades(self, key: ConnectionKey | None = None, symbol: str | None = None) -> list[Trade]: ...

    async def fetch_orders(self, key: ConnectionKey | None = None) -> list[OrderUpdate]: ...

    async def write_account(self, balances: Sequence[BalanceUpdate], positions: Sequence[PositionUpdate]) -> None:
        """One transaction: every update into the history, the latest states replaced by newer-or-equal ones."""

    async def fetch_balances(self, key: ConnectionKey | None = None) -> list[BalanceUpdate]: ...

    async def fetch_positions(self, key: ConnectionKey | None = None) -> list[PositionUpdate]: ...

    async def account_history(
        self, key: ConnectionKey | None = None
    ) -> tuple[list[BalanceUpdate], list[PositionUpdate]]:
        """Every balance and position update stored, oldest first."""

    async def record_order_requests(self, requests: Sequence[Any]) -> None:
        """Order entry requests (framework.orders OrderSnapshot): the newest state per client id; the `orders` row of a placed
        one gets its request path, attempts and ack latency."""
        ...

    async def fetch_order_requests(self, key: ConnectionKey | None = None) -> list[dict]:
        """Every order entry request (as dicts of ORDER_REQUEST_COLUMNS), oldest first."""
        ...

    async def fetch_dead_letters(self, pending_only: bool = False, consumer: str | None = None) -> list[dict]:
        """Dead letters by id (DEAD_LETTER_COLUMNS as keys): only those not replayed yet with `pending_only`,
        only that consumer's with `consumer`."""

    async def mark_dead_letter(self, letter_id: int, replayed_at: int | None, result: str) -> None:
        """Record a replay: `replayed_at` None keeps the letter pending (and requested, if it was)."""

    async def request_replay(self, consumer: str) -> int:
        """Mark that consumer's letters not yet replayed as replay requested (a letter already requested keeps
        its first request time); returns how many are requested now."""

    async def requested_letters(self, consumers: Sequence[str], limit: int) -> list[dict]:
        """Up to `limit` letters of these consumers whose replay is requested and not done, oldest first."""

    async def recent_trade_keys(self, key: ConnectionKey, since_ms: int, limit: int) -> list[tuple]: ...

    async def symbols(self, key: ConnectionKey) -> list[str]: ...


async def write_in_steps(
    store: Any, trades: Sequence[Trade], fee_copies: Sequence[Trade], orders: Sequence[OrderUpdate],
    dead_rows: Sequence[tuple], balances: Sequence[BalanceUpdate] = (), positions: Sequence[PositionUpdate] = (),
) -> tuple[list[int | None], list[tuple]]:
    """write_batch for a store without transactions (an in-memory fake, a store written before write_batch):
    the calls one after another, so a failure may leave the first ones done."""
    inserted = await store.insert_trades(trades) if trades else []
    completed = await store.complete_fees(fee_copies) if fee_copies else []
    if orders:
        await store.upsert_orders(orders)
    for key, raw, error, received_at, *consumer in dead_rows:
        await store.add_dead_letter(key, raw, error, received_at, *consumer)
    if balances or positions:
        await store.write_account(balances, positions)
    return inserted, completed


def order_rank(update: OrderUpdate) -> tuple[Decimal, int, int]:
    """How far along an order state is: more filled, then terminal, then later wins."""
    return (update.filled, STATUS_RANK[update.status], update.timestamp)


_RAW_JSON = msgspec.json.Encoder(decimal_format="number")


def raw_to_text(raw: Any) -> str | None:
    """The frame as text for audit: JSON as sent (decimals kept as text), bytes as base64."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return "base64:" + base64.b64encode(bytes(raw)).decode()
    try:  # msgspec: ~10× json.dumps; a Decimal is written as the number it was on the wire, every digit kept
        return _RAW_JSON.encode(raw).decode()
    except (TypeError, ValueError, OverflowError, UnicodeError, RecursionError, msgspec.EncodeError):
        return json.dumps(raw, default=str, separators=(",", ":"))  # a type msgspec refuses (or a lone surrogate)


def _same(value: Any) -> Any:
    return value


def trade_row(t: Trade, dec: Callable[[Decimal], Any] = _same) -> tuple:
    """A fill as a row in TRADE_COLUMNS order; `dec` turns Decimals into what the driver wants."""
    fee = t.fee_cost
    return (
        t.exchange, t.market._value_, t.account, t.symbol, t.symbol_raw, t.trade_id, t.order_id,
        t.client_order_id, t.side._value_, dec(t.amount), dec(t.price), dec(t.cost),
        None if fee is None else dec(fee), t.fee_currency, t.is_maker, t.timestamp, t.received_at,
        t.source._value_, raw_to_text(t.raw),
    )


def order_row(o: OrderUpdate, dec: Callable[[Decimal], Any] = _same) -> tuple:
    """An order state as a row in ORDER_COLUMNS order plus its status rank."""
    return (
        o.exchange, o.market._value_, o.account, o.symbol, o.symbol_raw, o.order_id, o.client_order_id,
        o.side._value_, o.order_type, o.status._value_, o.status_raw, dec(o.amount),
        None if o.price is None else dec(o.price), dec(o.filled), o.timestamp, o.received_at,
        raw_to_text(o.raw), STATUS_RANK[o.status],
    )


def trade_from_row(row: Sequence[Any], seq: int | None = None) -> Trade:
    values = dict(zip(TRADE_COLUMNS, row))
    values["is_maker"] = None if values["is_maker"] is None else bool(values["is_maker"])
    return Trade(**values, seq=seq)


@attrs.frozen(kw_only=True)
class OrderCursor:
    """Where reading order states back by time stands: from `since_ms` on, less the states at exactly that time
    already read (many orders can share one millisecond, so time alone cannot move a page on)."""

    since_ms: int
    seen: frozenset[tuple] = frozenset()


async def order_states_page(store: TradeStore, keys: Sequence[ConnectionKey], cursor: OrderCursor,
                            limit: int) -> tuple[list[OrderUpdate], OrderCursor | None]:
    """A page of the latest order states updated since the cursor, oldest first, and the cursor after it (None:
    read to the end)."""
    asked = limit + len(cursor.seen)
    rows = await store.orders_since(keys, cursor.since_ms, asked)
    fresh = [o for o in rows if not (o.timestamp == cursor.since_ms and _state_id(o) in cursor.seen)]
    if len(rows) < asked:
        return fresh, None
    last = rows[-1].timestamp
    seen = {_state_id(o) for o in rows if o.timestamp == last}
    if last == cursor.since_ms:
        seen |= cursor.seen
    return fresh, OrderCursor(since_ms=last, seen=frozenset(seen))


def _state_id(update: OrderUpdate) -> tuple:
    return (update.exchange, update.market, update.account, update.symbol, update.order_id)


ORDER_REQUEST_COLUMNS = (
    "exchange", "market", "account", "client_order_id", "strategy_id", "symbol", "side", "order_type", "amount",
    "price", "state", "order_id", "filled", "request_path", "attempts", "ack_latency_ms", "reason", "parent", "kind",
    "created", "updated",
)


def order_request_row(o: Any, dec: Callable[[Decimal], Any] = _same) -> tuple:
    """An order entry request's row (framework.orders.order.OrderSnapshot)."""
    return (
        o.key.exchange, o.key.market.value, o.key.account, o.client_order_id, o.strategy_id, o.symbol, o.side.value,
        o.order_type.value, dec(o.amount), None if o.price is None else dec(o.price), o.state.value, o.order_id,
        dec(o.filled), None if o.path is None else o.path.value, o.attempts, o.ack_latency_ms, o.reason or None,
        o.parent, o.kind, o.created, o.updated,
    )


def balance_row(b: BalanceUpdate, dec: Callable[[Decimal], Any] = _same) -> tuple:
    def opt(value: Decimal | None) -> Any:
        return None if value is None else dec(value)

    return (b.exchange, b.market._value_, b.account, b.asset, opt(b.free), opt(b.locked), opt(b.total), opt(b.delta),
            b.reason, b.timestamp, b.received_at, b.source._value_, raw_to_text(b.raw))


def position_row(p: PositionUpdate, dec: Callable[[Decimal], Any] = _same) -> tuple:
    def opt(value: Decimal | None) -> Any:
        return None if value is None else dec(value)

    return (p.exchange, p.market._value_, p.account, p.symbol, p.position_side._value_, p.symbol_raw,
            p.direction._value_, dec(p.size), opt(p.contracts), opt(p.entry_price), opt(p.mark_price),
            opt(p.unrealized_pnl), opt(p.realized_pnl), opt(p.leverage), opt(p.liquidation_price), p.margin_mode,
            p.timestamp, p.received_at, p.source._value_, raw_to_text(p.raw))


def balance_from_row(row: Sequence[Any]) -> BalanceUpdate:
    return BalanceUpdate(**dict(zip(BALANCE_COLUMNS, row)))


def position_from_row(row: Sequence[Any]) -> PositionUpdate:
    return PositionUpdate(**dict(zip(POSITION_COLUMNS, row)))


def order_from_row(row: Sequence[Any]) -> OrderUpdate:
    return OrderUpdate(**dict(zip(ORDER_COLUMNS, row)))


# What a driver raises for a Python value it cannot convert (an int out of range, a Decimal too large, a
# type it has no adapter for): the data is refused, retrying cannot help.
CONVERSION_ERRORS: tuple[type[Exception], ...] = (ArithmeticError, ValueError, TypeError)


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one short line for a StoreError: its first line (drivers add DETAIL/CONTEXT lines), cut."""
    lines = str(exc).strip().splitlines()
    text = f"{lines[0].strip()} ({type(exc).__name__})" if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def key_filter_groups(keys: Sequence[ConnectionKey]) -> list[tuple[str, str, str]]:
    """Distinct (exchange, market, account) of connection keys, in the order first given."""
    return list(dict.fromkeys((k.exchange, k.market._value_, k.account) for k in keys))


def redact_url(url: str) -> str:
    """The store URL without its password, for logs and summaries."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at or ":" not in creds:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"


def open_store(url: str | None = None) -> TradeStore:
    """A store for a URL (`sqlite:///path`, `postgresql://…`); no I/O until start()."""
    url = url or DEFAULT_STORE_URL
    if url.startswith("sqlite://"):
        from framework.store.sqlite import SQLiteTradeStore

        return SQLiteTradeStore(url)
    if url.startswith(("postgresql://", "postgres://")):
        from framework.store.postgres import PostgresTradeStore

        return PostgresTradeStore(url)
    raise ConfigError(
        f"unsupported store URL {redact_url(url)!r}: use sqlite:///path/to/file.sqlite or postgresql://user@host/db"
    )
