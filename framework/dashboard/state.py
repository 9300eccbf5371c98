"""What the dashboard shows and the journal of every change it sent: the state (balances, positions, orders, recent
fills, connections, health, alerts, the fills/PnL chart), built from the store at start and kept from events, each
change journaled as a page message with its `seq`; and `PageView`, the state a page rebuilds from those messages.

Wire shapes (their schemas: framework/dashboard/openapi.py): numbers are Decimal text, timestamps int ms.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from decimal import Decimal
from typing import Any, Callable, Hashable, Iterable

import attrs
import msgspec

from framework.events import ConnectionKey, Market, OrderUpdate, Side, Trade, is_inverse_symbol, now_ms

JOURNAL_SIZE = 10_000  # messages kept for resuming pages
SNAPSHOT_FILLS = 200
SNAPSHOT_ALERTS = 50
CHART_POINTS = 500
FINISHED_ORDERS = 1_000  # final orders kept for /api/orders?all=1
CHART_BUCKET_MS = 1_000  # one chart point per second of fills (venue time)
FINAL_STATES = frozenset({"filled", "canceled", "rejected", "expired"})
STATE_TYPES = frozenset({"balance", "positions", "orders", "connection", "health", "pnl"})
RESERVED_TYPES = frozenset({"snapshot", "pong"})
_PNL_STEP = Decimal("1e-8")

_encode = msgspec.json.Encoder().encode


def text(value: Decimal | None) -> str | None:
    """A Decimal as wire text without an exponent (0E-8 → 0.00000000); None stays None."""
    return None if value is None else format(value, "f")


def encode(message: Any) -> str:
    return _encode(message).decode()


# --- the wire shapes -------------------------------------------------------------------------------------------

def balance_item(b: Any) -> dict[str, Any]:
    return {"key": str(b.key), "asset": b.asset, "free": text(b.free), "locked": text(b.locked),
            "total": text(b.total), "timestamp": b.timestamp}


def position_item(p: Any) -> dict[str, Any]:
    return {"key": str(p.key), "symbol": p.symbol, "position_side": p.position_side.value,
            "direction": p.direction.value, "size": text(p.size), "entry_price": text(p.entry_price),
            "mark_price": text(p.mark_price), "unrealized_pnl": text(p.unrealized_pnl),
            "realized_pnl": text(p.realized_pnl), "leverage": text(p.leverage), "timestamp": p.timestamp}


def fill_item(t: Trade, strategy_id: str | None) -> dict[str, Any]:
    return {"key": str(t.key), "trade_id": t.trade_id, "order_id": t.order_id, "client_order_id": t.client_order_id,
            "symbol": t.symbol, "side": t.side.value, "amount": text(t.amount), "price": text(t.price),
            "fee_cost": text(t.fee_cost), "fee_currency": t.fee_currency, "timestamp": t.timestamp,
            "store_seq": t.seq, "strategy_id": strategy_id}


def order_item_of_snapshot(s: Any) -> dict[str, Any]:
    """An order entry order (framework.orders.OrderSnapshot)."""
    return {"key": str(s.key), "strategy_id": s.strategy_id, "client_order_id": s.client_order_id,
            "order_id": s.order_id, "symbol": s.symbol, "side": s.side.value, "order_type": s.order_type.value,
            "amount": text(s.amount), "price": text(s.price), "filled": text(s.filled), "state": s.state.value,
            "path": None if s.path is None else s.path.value, "ack_latency_ms": s.ack_latency_ms,
            "reason": s.reason or "", "updated": s.updated}


def order_item_of_update(u: OrderUpdate, strategy_id: str | None) -> dict[str, Any]:
    """An order as the venue reported it (state: the venue's status)."""
    return {"key": str(u.key), "strategy_id": strategy_id, "client_order_id": u.client_order_id,
            "order_id": u.order_id, "symbol": u.symbol, "side": u.side.value, "order_type": u.order_type,
            "amount": text(u.amount), "price": text(u.price), "filled": text(u.filled), "state": u.status.value,
            "path": None, "ack_latency_ms": None, "reason": "", "updated": u.timestamp}


def order_item_of_request(row: dict[str, Any]) -> dict[str, Any]:
    """An order entry request as the store keeps it (fetch_order_requests)."""
    key = ConnectionKey(exchange=row["exchange"], market=row["market"], account=row["account"])
    return {"key": str(key), "strategy_id": row["strategy_id"], "client_order_id": row["client_order_id"],
            "order_id": row["order_id"], "symbol": row["symbol"], "side": row["side"],
            "order_type": row["order_type"], "amount": _text_of(row["amount"]), "price": _text_of(row["price"]),
            "filled": _text_of(row["filled"]), "state": row["state"], "path": row["request_path"],
            "ack_latency_ms": row["ack_latency_ms"], "reason": row["reason"] or "", "updated": row["updated"]}


def _text_of(value: Any) -> str | None:
    """A stored number (text, int or Decimal; never a float from our stores) as wire text."""
    if value is None:
        return None
    return text(value if isinstance(value, Decimal) else Decimal(str(value)))


def alert_item(alert: Any) -> dict[str, Any]:
    return {"name": alert.name, "severity": alert.severity, "scope": alert.scope, "message": alert.message,
            "timestamp": alert.at_ms}


def connection_item(key: str, info: dict[str, Any]) -> dict[str, Any]:
    """One connection's state from a status_dict (private: `status`; market data: `state`)."""
    return {"key": key, "status": info.get("status") or info.get("state"), "error": info.get("error"),
            "reconnects": int(info.get("reconnects") or 0), "last_message": info.get("last_message")}


def entity_of(kind: str, data: Any) -> Hashable | None:
    """What a state message is about (a newer one of the same entity replaces it); None for events."""
    if kind not in STATE_TYPES or not isinstance(data, dict) or "source" in data:
        return None
    if kind == "balance":
        return (kind, data["key"], data["asset"])
    if kind == "positions":
        return (kind, data["key"], data["symbol"], data["position_side"])
    if kind == "orders":
        return (kind, data["key"], data["client_order_id"] or "#" + str(data["order_id"]))
    if kind == "connection":
        return (kind, data["key"])
    return (kind,)


# --- the journal -----------------------------------------------------------------------------------------------

@attrs.frozen(slots=True)
class Entry:
    """One journaled message: its seq, type, what it is about (None: an event) and its JSON text."""

    seq: int
    type: str
    entity: Hashable | None
    text: str


class Journal:
    """The newest `size` page messages, seq 1, 2, 3 … with no gap (so a resume point is an index)."""

    def __init__(self, size: int = JOURNAL_SIZE) -> None:
        self._entries: deque[Entry] = deque(maxlen=size)
        self.latest = 0

    def append(self, kind: str, data: Any, entity: Hashable | None = None, timestamp: int | None = None) -> Entry:
        self.latest += 1
        seq = self.latest
        message = {"type": kind, "seq": seq, "data": data, "timestamp": now_ms() if timestamp is None else timestamp}
        entry = Entry(seq, kind, entity, encode(message))
        self._entries.append(entry)
        return entry

    @property
    def oldest(self) -> int:
        """The oldest seq kept (latest + 1 when there is none)."""
        return self._entries[0].seq if self._entries else self.latest + 1

    def since(self, seq: int) -> list[Entry] | None:
        """Every message after `seq`, in order; None when `seq` is older than what is kept (oldest - 1 is the
        oldest resume point) or newer than the latest (another process's seq)."""
        if seq < self.oldest - 1 or seq > self.latest:
            return None
        start = seq - self.oldest + 1
        return list(itertools.islice(self._entries, start, None))

    def __len__(self) -> int:
        return len(self._entries)


# --- fills and PnL -------------------------------------------------------------------------------------------

class _Book:
    """One (key, symbol)'s inventory at average cost, in base units; realized PnL net of fees paid in the quote."""

    __slots__ = ("position", "average", "realized", "last", "quote")

    def __init__(self, quote: str) -> None:
        self.position = Decimal(0)
        self.average = Decimal(0)
        self.realized = Decimal(0)
        self.last = Decimal(0)
        self.quote = quote

    def fill(self, trade: Trade) -> None:
        qty = trade.base_amount if trade.side is Side.BUY else -trade.base_amount
        price, held = trade.price, self.position
        if held == 0 or (held > 0) == (qty > 0):
            total = abs(held) + abs(qty)
            if total:
                self.average = (self.average * abs(held) + price * abs(qty)) / total
        else:
            closed = min(abs(qty), abs(held))
            self.realized += closed * (price - self.average) * (1 if held > 0 else -1)
            if abs(qty) > abs(held):
                self.average = price
        self.position = held + qty
        if self.position == 0:
            self.average = Decimal(0)
        if trade.fee_cost is not None and trade.fee_currency == self.quote:
            self.realized -= trade.fee_cost
        self.last = price

    @property
    def unrealized(self) -> Decimal:
        return (self.last - self.average) * self.position if self.position else Decimal(0)


class PnL:
    """Realized and unrealized PnL over every fill seen (unrealized marked at each symbol's last fill price), and a
    chart point per second of fills. Computed from fills alone, so a restart that reads the store draws the same.
    Coin-margined (inverse) contracts are counted as fills, not in the PnL."""

    def __init__(self) -> None:
        self.books: dict[tuple[str, str], _Book] = {}
        self.fills = 0
        self.chart: deque[dict[str, Any]] = deque(maxlen=CHART_POINTS)
        self.dirty = False

    def add(self, trade: Trade) -> None:
        self.fills += 1
        if not (trade.market is Market.FUTURE and is_inverse_symbol(trade.symbol)):
            book = self.books.get((str(trade.key), trade.symbol))
            if book is None:
                quote = trade.symbol.partition("/")[2].partition(":")[0]
                book = self.books[(str(trade.key), trade.symbol)] = _Book(quote)
            book.fill(trade)
        bucket = trade.timestamp - trade.timestamp % CHART_BUCKET_MS
        point = self.point(bucket)
        if self.chart and self.chart[-1]["timestamp"] >= bucket:  # the same second (or a late fill): updated
            point["timestamp"] = self.chart[-1]["timestamp"]
            self.chart[-1] = point
        else:
            self.chart.append(point)
        self.dirty = True

    def point(self, timestamp: int) -> dict[str, Any]:
        realized = sum((b.realized for b in self.books.values()), Decimal(0))
        unrealized = sum((b.unrealized for b in self.books.values()), Decimal(0))
        return {"timestamp": timestamp, "realized": text(realized.quantize(_PNL_STEP)),
                "unrealized": text(unrealized.quantize(_PNL_STEP)), "fills": self.fills}


# --- the state ---------------------------------------------------------------------------------------------------

class DashboardState:
    """The dashboard's picture of the account and the process, and the journal of its changes.

    Every `apply_*` changes the state and journals the page message in one step (no await between), so a
    snapshot taken at any moment is exactly the state after the journal's latest seq. `on_entry(entry)` (the
    server's fan-out to pages) is called with each message journaled."""

    def __init__(self, *, journal_size: int = JOURNAL_SIZE, owner: Callable[[str], str | None] | None = None
                 ) -> None:
        self.journal = Journal(journal_size)
        self.owner = owner or (lambda client_order_id: None)  # strategy id of a client order id
        self.balances: dict[tuple[str, str], dict[str, Any]] = {}
        self.positions: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.orders: dict[tuple[str, str], dict[str, Any]] = {}  # open (not final)
        self.finished: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self.placed_here: set[tuple[str, str]] = set()  # orders order entry told us of
        self.fills: deque[dict[str, Any]] = deque(maxlen=SNAPSHOT_FILLS)
        self.fills_seq = 0  # the newest store seq of a fill taken (older ones are already in)
        self.connections: dict[str, dict[str, Any]] = {}
        self.health: dict[str, Any] = {"healthy": True, "alerts": 0, "fills_stored": 0, "dead_letters": 0,
                                       "lanes": {}}
        self.alerts: deque[dict[str, Any]] = deque(maxlen=SNAPSHOT_ALERTS)
        self.pnl = PnL()
        self._balance_ts: dict[tuple[str, str], int] = {}
        self._position_ts: dict[tuple[str, str, str], int] = {}
        self.keys: set[ConnectionKey] = set()  # the keys whose fills the store was read for
        self.on_entry: Callable[[Entry], None] | None = None

    # journal ------------------------------------------------------------------------------------------------
    def record(self, kind: str, data: Any, *, entity: Hashable | None = None, timestamp: int | None = None) -> Entry:
        entry = self.journal.append(kind, data, entity, timestamp)
        if self.on_entry is not None:
            self.on_entry(entry)
        return entry

    # from the store ----------------------------------------------------------------------------------------
    async def discover_keys(self, store: Any, keys: Iterable[ConnectionKey] = ()) -> set[ConnectionKey]:
        """The keys to show: those given and those the store holds balances or positions of."""
        found = set(keys)
        found |= {b.key for b in await store.fetch_balances()}
        found |= {p.key for p in await store.fetch_positions()}
        self.keys |= found
        return found

    def forget_fills(self) -> None:
        """Drop the fills and the PnL (to read them all again from the store: it holds every fill shown)."""
        self.fills.clear()
        self.fills_seq = 0
        self.pnl = PnL()

    async def load_fills(self, store: Any, page: int = 5_000) -> int:
        """Every stored fill of the keys after the newest one taken, in store order (the newest 200 are shown, all
        of them count in the PnL and the chart). Journals nothing. Returns how many."""
        keys = sorted(self.keys, key=str)
        taken = 0
        while keys:
            rows = await store.trades_after(keys, self.fills_seq, page)
            for _, trade in rows:
                self._take_fill(trade)
            taken += len(rows)
            if len(rows) < page:
                break
        return taken

    async def load_account(self, store: Any, *, orders: bool = True, record: bool = False) -> None:
        """The latest balances and positions the store holds, and (`orders`) every order it knows: the venue's
        states completed by order entry's requests. `record`: journal what changes (a state already serving
        pages); else nothing is journaled (a page connecting later gets it in its snapshot)."""
        take_balance = self.apply_balance if record else self._take_balance
        take_position = self.apply_position if record else self._take_position
        for b in await store.fetch_balances():
            self.keys.add(b.key)
            take_balance(b)
        for p in await store.fetch_positions():
            self.keys.add(p.key)
            take_position(p)
        if not orders:
            return
        for row in await store.fetch_order_requests():
            item = order_item_of_request(row)
            where = (item["key"], item["client_order_id"])
            self.placed_here.add(where)
            changed = self._merge_item(where, item)
            if record:
                self._order_changed(where, changed)
        for u in sorted(await store.fetch_orders(), key=lambda o: (o.timestamp, o.order_id)):
            self.keys.add(u.key)
            where, changed = self._merge_update(u)
            if record:
                self._order_changed(where, changed)

    # from events (each journals its message) -------------------------------------------------------------------
    def apply_balance(self, b: Any) -> Entry | None:
        if b.is_delta or not self._take_balance(b):
            return None
        item = self.balances[(str(b.key), b.asset)]
        return self.record("balance", item, entity=("balance", item["key"], item["asset"]))

    def apply_position(self, p: Any) -> Entry | None:
        if not self._take_position(p):
            return None
        item = self.positions[(str(p.key), p.symbol, p.position_side.value)]
        return self.record("positions", item, entity=("positions", item["key"], item["symbol"],
                                                      item["position_side"]))

    def apply_fill(self, trade: Trade) -> Entry | None:
        if trade.seq is not None and trade.seq <= self.fills_seq:
            return None  # in the state already (read at start)
        item = self._take_fill(trade)
        return self.record("fill", item)

    def apply_order_update(self, u: OrderUpdate) -> Entry | None:
        where, item = self._merge_update(u)
        return self._order_changed(where, item)

    def apply_execution(self, execution: Any) -> Entry | None:
        item = order_item_of_snapshot(execution.order)
        where = (item["key"], item["client_order_id"])
        self.placed_here.add(where)
        return self._order_changed(where, self._merge_item(where, item))

    def apply_connection(self, key: str, info: dict[str, Any]) -> Entry | None:
        item = connection_item(key, info)
        if self.connections.get(key) == item:
            return None
        self.connections[key] = item
        return self.record("connection", item, entity=("connection", key))

    def apply_alert(self, alert: Any) -> Entry:
        item = alert_item(alert)
        self.alerts.append(item)
        return self.record("alert", item)

    def apply_health(self, health: dict[str, Any]) -> Entry | None:
        if health == self.health:
            return None
        self.health = health
        return self.record("health", health, entity=("health",))

    def emit_pnl(self) -> Entry | None:
        """The chart's newest point, when fills changed it since the last one sent."""
        if not self.pnl.dirty or not self.pnl.chart:
            return None
        self.pnl.dirty = False
        return self.record("pnl", dict(self.pnl.chart[-1]), entity=("pnl",))

    # reading ------------------------------------------------------------------------------------------------
    def snapshot(self, reason: str) -> Entry:
        """The whole state as a `snapshot` message; its seq is the journal's latest (not journaled itself)."""
        data = {
            "balances": list(self.balances.values()),
            "positions": list(self.positions.values()),
            "orders": list(self.orders.values()),
            "fills": list(self.fills),
            "connections": dict(self.connections),
            "health": self.health,
            "alerts": list(self.alerts),
            "chart": list(self.pnl.chart),
            "reason": reason,
        }
        seq = self.journal.latest
        return Entry(seq, "snapshot", None, encode({"type": "snapshot", "seq": seq, "data": data,
                                                    "timestamp": now_ms()}))

    def all_orders(self) -> list[dict[str, Any]]:
        return [*self.finished.values(), *self.orders.values()]

    # internals ------------------------------------------------------------------------------------------------
    def _take_balance(self, b: Any) -> bool:
        """Newer-or-equal replaces (the store's rule); True when the state changed."""
        where = (str(b.key), b.asset)
        held = self._balance_ts.get(where)
        if b.is_delta or (held is not None and b.timestamp < held):
            return False  # a movement only, or older than the state held
        self._balance_ts[where] = b.timestamp
        item = balance_item(b)
        if self.balances.get(where) == item:
            return False
        self.balances[where] = item
        return True

    def _take_position(self, p: Any) -> bool:
        where = (str(p.key), p.symbol, p.position_side.value)
        held = self._position_ts.get(where)
        if held is not None and p.timestamp < held:
            return False
        self._position_ts[where] = p.timestamp
        item = position_item(p)
        if self.positions.get(where) == item:
            return False
        self.positions[where] = item
        return True

    def _take_fill(self, trade: Trade) -> dict[str, Any]:
        item = fill_item(trade, self.owner(trade.client_order_id) if trade.client_order_id else None)
        self.fills.append(item)
        if trade.seq is not None:
            self.fills_seq = max(self.fills_seq, trade.seq)
        self.pnl.add(trade)
        return item

    def _order(self, where: tuple[str, str]) -> dict[str, Any] | None:
        found = self.orders.get(where)
        return found if found is not None else self.finished.get(where)

    def _put_order(self, where: tuple[str, str], item: dict[str, Any]) -> None:
        if item["state"] in FINAL_STATES:
            self.orders.pop(where, None)
            self.finished[where] = item
            self.finished.move_to_end(where)
            while len(self.finished) > FINISHED_ORDERS:
                gone, _ = self.finished.popitem(last=False)
                self.placed_here.discard(gone)
        else:
            self.finished.pop(where, None)
            self.orders[where] = item

    def _merge_update(self, u: OrderUpdate) -> tuple[tuple[str, str], dict[str, Any] | None]:
        """The venue's state of an order into the one held: its id and fills always; its status unless order entry
        placed it (the gateway's state then, except a final status); never back from a final state."""
        key = str(u.key)
        where = (key, u.client_order_id or "#" + u.order_id)
        old = self._order(where)
        if old is None and u.client_order_id is None:
            return where, self._store_order(where, order_item_of_update(u, None))
        if old is None:
            return where, self._store_order(where, order_item_of_update(u, self.owner(u.client_order_id)))
        item = dict(old)
        item["order_id"] = u.order_id
        item["filled"] = _max_text(old["filled"], text(u.filled))
        status = u.status.value
        if old["state"] not in FINAL_STATES and (status in FINAL_STATES or where not in self.placed_here):
            item["state"] = status
        if where not in self.placed_here:
            item["amount"], item["price"], item["updated"] = text(u.amount), text(u.price), u.timestamp
        if item == old:
            return where, None
        return where, self._store_order(where, item)

    def _merge_item(self, where: tuple[str, str], item: dict[str, Any]) -> dict[str, Any] | None:
        """Order entry's state of an order over the one held (never back from a final state, the venue's id and
        fills kept); the item if it changed anything, else None."""
        old = self._order(where)
        if old is not None:
            if old["state"] in FINAL_STATES and item["state"] not in FINAL_STATES:
                item["state"] = old["state"]
            item["order_id"] = item["order_id"] or old["order_id"]
            item["filled"] = _max_text(old["filled"], item["filled"])
            if old == item:
                return None
        self._put_order(where, item)
        return item

    def _store_order(self, where: tuple[str, str], item: dict[str, Any]) -> dict[str, Any]:
        self._put_order(where, item)
        return item

    def _order_changed(self, where: tuple[str, str], item: dict[str, Any] | None) -> Entry | None:
        if item is None:
            return None
        return self.record("orders", item, entity=("orders", where[0], where[1]))


def _max_text(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if Decimal(a) >= Decimal(b) else b


# --- a page's side ---------------------------------------------------------------------------------------------

class PageView:
    """What a page holds after applying the messages of its socket (a snapshot replaces everything): the reference
    the page's own code follows, and what tests compare with the store."""

    def __init__(self) -> None:
        self.seq = 0
        self.balances: dict[tuple, dict] = {}
        self.positions: dict[tuple, dict] = {}
        self.orders: dict[tuple, dict] = {}  # open ones
        self.fills: list[dict] = []
        self.connections: dict[str, dict] = {}
        self.health: dict[str, Any] = {}
        self.alerts: list[dict] = []
        self.chart: list[dict] = []
        self.published: list[dict] = []  # publishers' messages (data with a source), in order
        self.snapshots: list[str] = []  # the reasons of the snapshots received

    def apply(self, message: dict[str, Any]) -> None:
        kind, data, seq = message["type"], message.get("data"), message["seq"]
        if kind == "pong":
            return
        if kind != "snapshot" and seq <= self.seq:
            raise AssertionError(f"seq {seq} after {self.seq}: not increasing")
        self.seq = seq
        if kind == "snapshot":
            self.snapshots.append(data["reason"])
            self.balances = {entity_of("balance", b): b for b in data["balances"]}
            self.positions = {entity_of("positions", p): p for p in data["positions"]}
            self.orders = {entity_of("orders", o): o for o in data["orders"]}
            self.fills = list(data["fills"])
            self.connections = dict(data["connections"])
            self.health = data["health"]
            self.alerts = list(data["alerts"])
            self.chart = list(data["chart"])
            return
        if isinstance(data, dict) and "source" in data:
            self.published.append(message)
            return
        if kind == "balance":
            self.balances[entity_of(kind, data)] = data
        elif kind == "positions":
            self.positions[entity_of(kind, data)] = data
        elif kind == "orders":
            if data["state"] in FINAL_STATES:
                self.orders.pop(entity_of(kind, data), None)
            else:
                self.orders[entity_of(kind, data)] = data
        elif kind == "fill":
            self.fills.append(data)
            del self.fills[:-SNAPSHOT_FILLS]
        elif kind == "connection":
            self.connections[data["key"]] = data
        elif kind == "health":
            self.health = data
        elif kind == "alert":
            self.alerts.append(data)
            del self.alerts[:-SNAPSHOT_ALERTS]
        elif kind == "pnl":
            if self.chart and self.chart[-1]["timestamp"] == data["timestamp"]:
                self.chart[-1] = data
            else:
                self.chart.append(data)
                del self.chart[:-CHART_POINTS]
        else:
            self.published.append(message)
