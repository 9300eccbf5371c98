"""One key's order entry: WebSocket first, REST through ccxt as the fallback, and the one rule that keeps every
request to exactly one order at the venue or a definite rejection:

- a venue rejection is final (a retry's rejection after an ambiguous attempt is checked by a query first);
- a request that never left goes to REST at once;
- an ambiguous outcome is reconciled by client id: found → that is the order; re-placed (same client id, over REST)
  only when the venue says it has no such order *and* no attempt sent so far can still execute (its validity
  window, plus the clock skew, has passed); Hyperliquid resends the identical signed request instead, while it is
  valid, which the venue's nonce makes idempotent;
- an ack is not a placement: an order is `acked` until the private stream or a query shows it.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable

from loguru import logger

from framework.errors import ConfigError
from framework.events import ConnectionKey, OrderUpdate, Trade, now_ms
from framework.orders.ccxt_outcome import error_outcome
from framework.orders.channel import OwnSocket, SharedSocket, TradingChannel
from framework.orders.config import WebSocketTradingConfig
from framework.orders.metrics import OrderMetrics
from framework.orders.model import (
    Amend, Execution, OrderState, Outcome, OutcomeKind, Path, ambiguous,
)
from framework.orders.order import Order
from framework.venue import Credentials, Endpoints, ExchangeSpec

if TYPE_CHECKING:
    from framework.backfill import BackfillRules

_ANSWERED = (OutcomeKind.ACCEPTED, OutcomeKind.ACKED)
RECENT_FINAL = 5_000  # final orders kept for lookups by late stream events


class OrderError(Exception):
    """An order operation the venue refused (an amend, a cancel of an unknown order) or that cannot be done here."""


class OrderGateway:
    """Orders of one key. `place`, `cancel`, `amend`, `query` never raise for a venue's answer: the Order's state
    says what happened (amend raises OrderError when refused)."""

    def __init__(self, key: ConnectionKey, spec: ExchangeSpec, credentials: Credentials, endpoints: Endpoints | None,
                 config: WebSocketTradingConfig, metrics: OrderMetrics, *,
                 emit: Callable[[Order, Execution], None], record: Callable[[Order], None] | None = None,
                 record_now: Callable[[Order], Any] | None = None, connection: Any = None) -> None:
        if spec.orders is None:
            raise ConfigError(f"{spec.name} has no order entry in this version")
        self.key = key
        self.spec = spec
        self.rules = spec.orders
        self.credentials = credentials
        self.endpoints = endpoints  # None: the live venue
        self.config = config
        self.metrics = metrics
        self._emit_to = emit
        self._record = record or (lambda order: None)
        self._record_now = record_now  # async: the request written before its first attempt (a kill loses none)
        self.connection = connection
        self.channel: TradingChannel | None = None
        self.ws_preferred = config.prefer_websocket
        self.orders: dict[str, Order] = {}  # client id → order (live ones, and the most recent final ones)
        self._by_order_id: dict[str, Order] = {}
        self._final_order: list[str] = []
        self._client: Any = None
        self._tasks: set[asyncio.Task] = set()
        self._log = logger.bind(key=str(key))

    # lifecycle -------------------------------------------------------------------------------------------------
    @property
    def ws_rules(self):
        return self.rules.ws

    def ws_allowed(self) -> bool:
        """The venue has WebSocket trading and this account may use it (opt-in venues: when configured)."""
        ws = self.rules.ws
        return ws is not None and (not ws.opt_in or self.key.exchange in self.config.websocket_opt_in)

    async def start(self) -> None:
        if self.channel is None and self.ws_allowed():
            ws = self.rules.ws
            # Shared per market: a venue sharing on one market may still name an own socket on another (Binance:
            # spot on the user stream's WS-API socket, USD-M on ws-fapi); `url` None means the stream's socket.
            if ws.shared and (ws.url is None or ws.url(self.key.market, self.endpoints
                                                       or self.spec.stream.endpoints(self.key.market)) is None):
                if self.connection is None or not hasattr(self.connection, "send_frame"):
                    self._log.warning("no private stream socket to share: orders go over REST")
                    return
                self.channel = SharedSocket(self.key, ws, self.credentials, self.connection,
                                            retry_attempts=self.config.websocket_retry_attempts)
            else:
                endpoints = self.endpoints or self.spec.stream.endpoints(self.key.market)
                self.channel = OwnSocket(self.key, ws, self.credentials, endpoints,
                                         retry_attempts=self.config.websocket_retry_attempts)
            await self.channel.start()

    async def retry_websocket(self) -> None:
        if self.channel is not None:
            await self.channel.restart()
        else:
            await self.start()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.channel is not None:
            await self.channel.stop()
            self.channel = None
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def status(self) -> dict[str, Any]:
        ws = self.rules.ws
        return {
            "websocket": (self.channel.status() if self.channel is not None
                          else {"state": "none" if ws is None else ("not enabled (opt-in)" if ws.opt_in else "off")}),
            "websocket_preferred": self.ws_preferred,
            "active_orders": sum(1 for o in self.orders.values() if not o.final),
            "unknown_orders": sum(1 for o in self.orders.values() if o.state is OrderState.UNKNOWN),
        }

    # the REST client -----------------------------------------------------------------------------------------
    def _rest_client(self, symbol: str) -> Any:
        from framework.backfill import offline_markets, rest_client  # ccxt: imported with the first REST order

        rules: BackfillRules = self.spec.backfill
        if self._client is None:
            live = self.spec.stream.endpoints(self.key.market)
            self._client = rest_client(self.key, rules, self.credentials, live, self.endpoints, [symbol])
            self._client.timeout = int(self.config.ack_timeout_seconds * 1000)
        elif self.endpoints is not None and symbol not in (self._client.markets or {}):
            offline_markets(self._client, self.key, rules, [*(self._client.markets or {}), symbol])
        return self._client

    async def _rest(self, op: str, subject: Any, symbol: str, *extra: Any) -> Outcome:
        fn = getattr(self.rules.rest, op)
        if fn is None:
            return Outcome(kind=OutcomeKind.REJECTED, code="not_supported",
                           message=f"{self.key.exchange} has no REST {op}")
        try:
            client = self._rest_client(symbol)
            return await asyncio.wait_for(fn(client, subject, *extra), self.config.ack_timeout_seconds * 2)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            return ambiguous(f"REST {op}: no answer in {self.config.ack_timeout_seconds * 2:g}s")
        except Exception as exc:  # noqa: BLE001 - what a venue module did not classify, classified here
            return error_outcome(exc)

    # stream events (the pipeline taps them for this key) ----------------------------------------------------
    def _find(self, client_order_id: str | None, order_id: str | None) -> Order | None:
        order = self.orders.get(client_order_id) if client_order_id else None
        if order is None and order_id:
            order = self._by_order_id.get(str(order_id))
        return order

    def on_order_update(self, update: OrderUpdate) -> None:
        order = self._find(update.client_order_id, update.order_id)
        if order is None:
            return
        self._index(order, update.order_id)
        if not order.confirmed:
            order.confirmed = True
            if order.sent_at is not None and order.path is not None and self.config.performance_monitoring:
                self.metrics.sample("confirm", order.path.value, (_loop_time() - order.sent_at) * 1000)
        amount = update.base_amount if update.base_amount is not None else update.amount
        filled = update.base_filled if update.base_filled is not None else update.filled
        if update.status.value in ("new", "partially_filled") and amount:
            order.amount = amount
            if update.price:
                order.price = update.price
        self._apply(order, OrderState.of(update.status), filled)

    def on_trade(self, trade: Trade) -> None:
        order = self._find(trade.client_order_id, trade.order_id)
        if order is None or trade.dedup_key in order.fill_keys:
            return
        order.fill_keys.add(trade.dedup_key)
        self._index(order, trade.order_id)
        order.confirmed = True
        if len(order.fill_keys) == 1 and order.sent_at is not None and order.path is not None \
                and self.config.performance_monitoring:
            self.metrics.sample("first_fill", order.path.value, (_loop_time() - order.sent_at) * 1000)
        base = trade.base_amount if trade.base_amount is not None else trade.amount
        cost = (order.average or Decimal(0)) * order.fills_total + base * trade.price
        order.fills_total += base
        order.average = cost / order.fills_total
        if order.fills_total > order.filled and not order.final:
            order.filled = order.fills_total
        self._emit(order, "fill", trade)
        if not order.final and (order.fills_total >= order.amount or (
                order.final_due is not None and order.fills_total >= order.filled)):
            self._final(order, OrderState.FILLED)
        elif not order.final and order.state in (OrderState.ACKED, OrderState.SENT, OrderState.UNKNOWN,
                                                 OrderState.OPEN):
            order.state = OrderState.PARTIALLY_FILLED
        order._heard_set()

    def _index(self, order: Order, order_id: str | None) -> None:
        if order_id and order.order_id != str(order_id):
            order.order_id = str(order_id)
        if order.order_id:
            self._by_order_id[order.order_id] = order

    def _apply(self, order: Order, state: OrderState, filled: Decimal | None) -> None:
        """A state the venue showed (stream or query): never back from a final one, fills only grow."""
        order._heard_set()
        if order.final:
            return
        if filled is not None and filled > order.filled:
            order.filled = filled
        order.updated = now_ms()
        if state is OrderState.FILLED and order.fills_total < order.filled:
            # filled, its fills still on the way (a venue may send the state first): the fills go out before the
            # final state, which waits for them (or a second at most)
            if order.final_due is None:
                order.final_due = asyncio.get_running_loop().call_later(1.0, self._final, order, state)
            return
        if state.is_final:
            self._final(order, state)
            return
        before = order.state
        order.state = state
        if before in (OrderState.PENDING, OrderState.SENT, OrderState.ACKED, OrderState.UNKNOWN):
            self._emit(order, "open")
            self._record(order)

    def _emit(self, order: Order, kind: str, fill: Trade | None = None) -> None:
        order.updated = now_ms()
        self._emit_to(order, Execution(kind=kind, order=order.snapshot(), fill=fill, timestamp=order.updated))

    def _final(self, order: Order, state: OrderState, reason: str = "") -> None:
        if order.final_due is not None:
            order.final_due.cancel()
            order.final_due = None
        if order.final_reported:
            return
        order.state = state
        if reason:
            order.reason = reason
        order.final_reported = True
        self.metrics.counts[state.value] += 1
        order._final.set()
        order._placed.set()
        order._heard_set()
        self._emit(order, state.value)
        self._record(order)
        self._final_order.append(order.client_order_id)
        while len(self._final_order) > RECENT_FINAL:
            old = self.orders.pop(self._final_order.pop(0), None)
            if old is not None and old.order_id:
                self._by_order_id.pop(old.order_id, None)
        if order.protect and order.filled > 0 and state in (OrderState.FILLED, OrderState.CANCELED,
                                                             OrderState.EXPIRED):
            self._spawn(self._protect(order), f"tpsl-{order.client_order_id}")
        if order.parent is not None and state is OrderState.FILLED:  # one of a TP/SL pair filled: the other goes
            entry = self.orders.get(order.parent)
            for sibling in (entry.children if entry is not None else []):
                if sibling is not order and not sibling.final:
                    self._spawn(self.cancel(sibling), f"oco-{sibling.client_order_id}")

    # placing ---------------------------------------------------------------------------------------------------
    def ws_usable(self, op: str) -> bool:
        channel = self.channel
        return (self.ws_preferred and channel is not None and channel.ready and op in self.rules.ws.ops)

    async def reference_price(self, symbol: str, side: Any) -> Decimal | None:
        """The price a market order on this side would take now: the best ask for a buy, the best bid for a sell
        (the venue's REST book)."""
        from framework.orders.ccxt_outcome import _dec

        try:
            book = await asyncio.wait_for(self._rest_client(symbol).fetch_order_book(symbol, 5),
                                          self.config.ack_timeout_seconds * 2)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - no book, no reference: the caller says so
            return None
        levels = book.get("asks" if str(side) == "buy" else "bids") or []
        return _dec(levels[0][0]) if levels else None

    async def place(self, order: Order) -> Order:
        self.orders[order.client_order_id] = order
        if self._record_now is not None:
            await self._record_now(order)
        if self.rules.prepare is not None:
            try:
                order.prepared = self.rules.prepare(order.request, self.credentials, self.key.market, now_ms())
            except (ValueError, TypeError) as exc:  # the venue cannot take this request as it is: nothing sent
                self._final(order, OrderState.REJECTED, f"invalid request: {exc}")
                return order
        deadline = _loop_time() + self.config.order_timeout_seconds
        path = Path.WEBSOCKET if self.ws_usable("place") else Path.REST
        if path is Path.REST and self.ws_preferred and self.ws_allowed() and self.config.prefer_websocket:
            self.metrics.fallbacks["websocket_unavailable"] += 1
        await self._drive(order, path, deadline)
        return order

    async def _drive(self, order: Order, path: Path, deadline: float) -> None:
        """Attempts until the order is placed, definitely rejected, or (past the deadline) unknown."""
        order.state = OrderState.SENT
        delay = 0.2
        while True:
            outcome = await self._attempt(order, path)
            kind = outcome.kind
            if kind in _ANSWERED:
                self._took(order, outcome, path)
                return
            if kind is OutcomeKind.REJECTED:
                if order.maybe_placed:  # a retry refused: the earlier attempt may be the order (a duplicate id)
                    verdict = await self._reconcile(order, deadline)
                    if verdict == "found":
                        self.metrics.double_orders_prevented += 1
                        return
                    if verdict == "unknown":
                        self._unknown(order, f"retry refused ({outcome.message}); earlier attempt unresolved")
                        return
                self._final(order, OrderState.REJECTED, outcome.message or str(outcome.code))
                return
            if kind is OutcomeKind.NOT_SENT:
                if path is Path.WEBSOCKET and self.config.auto_fallback_on_failure:
                    self.metrics.fallbacks["websocket_not_sent"] += 1
                    path = Path.REST
                    continue
                if not order.maybe_placed:
                    if _loop_time() + delay > deadline:
                        self._final(order, OrderState.REJECTED, f"never sent: {outcome.message}")
                        return
                    await asyncio.sleep(delay)  # nothing left: trying again cannot place twice
                    delay = min(delay * 2, 2.0)
                    continue
            # ambiguous (or not sent after an earlier ambiguous attempt)
            order.maybe_placed = True
            self.metrics.ambiguous[path.value] += 1
            prepared = order.prepared
            if (prepared is not None and path is Path.WEBSOCKET and self.config.auto_fallback_on_failure
                    and prepared.expires_at is not None and now_ms() + 500 < prepared.expires_at):
                self.metrics.fallbacks["resend_signed"] += 1  # the same signed bytes: the venue's nonce dedups
                path = Path.REST
                continue
            verdict = await self._reconcile(order, deadline)
            if verdict == "found":
                return
            if verdict == "unknown":
                self._unknown(order, f"outcome unknown after {self.config.order_timeout_seconds:g}s: "
                                     f"{outcome.message}")
                return
            # absent: the venue has no such order and no attempt can execute any more — place it again
            self.metrics.fallbacks["ambiguous_absent"] += 1
            if self.rules.prepare is not None:
                order.prepared = self.rules.prepare(order.request, self.credentials, self.key.market, now_ms())
            order.maybe_placed = False
            path = Path.REST if self.config.auto_fallback_on_failure or not self.ws_usable("place") else path

    async def _attempt(self, order: Order, path: Path) -> Outcome:
        order.attempts += 1
        self.metrics.attempts[path.value] += 1
        loop_start = _loop_time()
        if order.sent_at is None:
            order.sent_at = loop_start
        sent_ms = now_ms()
        if path is Path.WEBSOCKET:
            sent = [loop_start]

            def on_sent() -> None:
                sent[0] = _loop_time()
                if order.attempts == 1:
                    order.sent_at = sent[0]

            outcome = await self.channel.request("place", order.request, order.prepared,
                                                 self.config.ack_timeout_seconds,
                                                 on_late=lambda late: self._late(order, late), on_sent=on_sent)
            loop_start = sent[0]
            validity = self.rules.ws.validity_ms
        else:
            outcome = await self._rest("place", order.request, order.symbol, order.prepared)
            validity = self.rules.rest.validity_ms
        if outcome.kind is not OutcomeKind.NOT_SENT:
            expiry = order.prepared.expires_at if order.prepared is not None and order.prepared.expires_at \
                else sent_ms + validity
            order.expires_at = max(order.expires_at, expiry + self.config.clock_skew_ms)
        if outcome.kind in _ANSWERED or outcome.kind is OutcomeKind.REJECTED:
            latency = (_loop_time() - loop_start) * 1000
            if self.config.performance_monitoring:
                self.metrics.sample("ack", path.value, latency)
            if outcome.kind is OutcomeKind.REJECTED:
                self.metrics.refused[path.value] += 1
            else:
                self.metrics.answered[path.value] += 1
                order.ack_latency_ms = round(latency, 3)
        return outcome

    def _late(self, order: Order, outcome: Outcome) -> None:
        """An answer that came after we stopped waiting: an order id it carries helps reconciling."""
        if outcome.kind in _ANSWERED and outcome.order_id:
            self._index(order, outcome.order_id)
            order._heard_set()

    def _took(self, order: Order, outcome: Outcome, path: Path) -> None:
        order.maybe_placed = True
        order.path = path
        self._index(order, outcome.order_id)
        self.metrics.counts["placed"] += 1
        if order.state in (OrderState.PENDING, OrderState.SENT, OrderState.UNKNOWN):
            order.state = OrderState.ACKED
            self._emit(order, "acked")
        order._placed.set()
        self._record(order)
        if not order.confirmed and not order.final:
            self._spawn(self._confirm(order), f"confirm-{order.client_order_id}")

    def _unknown(self, order: Order, reason: str) -> None:
        order.state = OrderState.UNKNOWN
        order.reason = reason
        self.metrics.counts["unknown"] += 1
        order._placed.set()
        self._emit(order, "unknown")
        self._log.bind(client_order_id=order.client_order_id, reason=reason[:200]).error(
            "order outcome unknown: still reconciling in the background")
        self._spawn(self._settle_later(order), f"settle-{order.client_order_id}")

    async def _confirm(self, order: Order) -> None:
        """An ack is not a placement: without the stream showing the order in time, ask the venue."""
        await order._heard_wait(self.config.confirm_timeout_seconds)
        deadline = _loop_time() + self.config.order_timeout_seconds
        while not order.confirmed and not order.final:
            verdict = await self._reconcile(order, deadline, quiet=True)
            if verdict == "found":
                return
            if verdict == "unknown":
                self._unknown(order, "acked, never confirmed by the stream or a query")
                return
            # acked, then the venue has no such order and the request can no longer execute: place it again
            self.metrics.fallbacks["acked_absent"] += 1
            order.maybe_placed = False
            await self._drive(order, Path.REST, deadline)
            return

    async def _settle_later(self, order: Order) -> None:
        """An order past its timeout with an unknown outcome: keep asking; a proven absence is a rejection (it is
        not re-sent so late: the strategy decides again)."""
        while not order.final and not order.confirmed:
            verdict = await self._reconcile(order, _loop_time() + 30.0, quiet=True)
            if verdict == "absent":
                self._final(order, OrderState.REJECTED, "never placed (the venue has no such order and the request "
                                                        "expired); not re-sent after the order timeout")
                return
            if verdict == "found":
                return
            await asyncio.sleep(5.0)

    async def _reconcile(self, order: Order, deadline: float, quiet: bool = False) -> str:
        """Ask the venue for the order by client id: "found" (adopted), "absent" (not there, asked after every
        attempt's validity passed), "unknown" (no definite answer before the deadline)."""
        if not quiet and not order.confirmed and order.state in (OrderState.PENDING, OrderState.SENT,
                                                                 OrderState.ACKED):
            order.state = OrderState.UNKNOWN
        delay = 0.2
        while _loop_time() < deadline:
            if order.confirmed or order.final:
                return "found"
            asked_at = now_ms()
            outcome = await self._query_outcome(order)
            if order.confirmed or order.final:
                return "found"
            if outcome.kind is OutcomeKind.ACCEPTED:
                self._adopt(order, outcome)
                return "found"
            if outcome.kind is OutcomeKind.NOT_FOUND:
                if asked_at >= order.expires_at:
                    return "absent"
                wait = (order.expires_at - now_ms()) / 1000 + 0.05
                await order._heard_wait(max(0.05, min(wait, deadline - _loop_time())))
                continue
            await order._heard_wait(delay)
            delay = min(delay * 2, 2.0)
        return "unknown"

    async def _query_outcome(self, order: Order) -> Outcome:
        ref = order.ref(by_order_id=bool(order.order_id))
        if self.ws_usable("query"):
            outcome = await self.channel.request("query", ref, None, self.config.ack_timeout_seconds)
            if outcome.kind is OutcomeKind.ACCEPTED:
                return outcome
            # "not found" over the socket proves nothing: a WS lookup by client id can miss what the REST query
            # finds (Binance renames a cancelled order's client id; Gate's lookup by text misses finished ones)
        return await self._rest("query", ref, order.symbol)

    def _adopt(self, order: Order, outcome: Outcome) -> None:
        """The venue showed the order (a query): take its id and state."""
        self._index(order, outcome.order_id)
        if not order.final and order.state in (OrderState.SENT, OrderState.PENDING, OrderState.UNKNOWN):
            if not order._placed.is_set():
                self.metrics.counts["placed"] += 1
            order.state = OrderState.ACKED
            self._emit(order, "acked")
        order.maybe_placed = True
        order.confirmed = True
        if order.path is None:
            order.path = Path.REST
        order._placed.set()
        if outcome.amount:
            order.amount = outcome.amount
        if outcome.price:
            order.price = outcome.price
        if outcome.average:
            order.average = outcome.average
        status = outcome.status
        self._apply(order, OrderState.of(status) if status is not None else OrderState.OPEN, outcome.filled)

    # after a restart --------------------------------------------------------------------------------------------
    def recover(self, rows: list[dict]) -> list[Order]:
        """Requests an earlier process left unfinished (the store's order_requests): each is looked up at the venue
        by client id and takes the state it has there — never placed again. One that is not there once every
        attempt the earlier process could have made has expired ends `rejected` ("never placed")."""
        from framework.orders.model import OrderRequest, OrderType

        recovered = []
        validity = max(self.rules.rest.validity_ms, self.rules.ws.validity_ms if self.rules.ws else 0)
        horizon = now_ms() + validity + self.config.clock_skew_ms  # the earlier process is gone: no later attempt
        for row in rows:
            if row["client_order_id"] in self.orders or OrderState(row["state"]).is_final:
                continue
            request = OrderRequest(market=self.key.market, symbol=row["symbol"], side=row["side"],
                                   amount=str(row["amount"]), price=None if row["price"] is None else str(row["price"]),
                                   order_type=OrderType(row["order_type"]), client_order_id=row["client_order_id"])
            order = Order(self.key, row["strategy_id"], request, parent=row.get("parent"), kind=row.get("kind") or "entry")
            order.order_id = row["order_id"] or None
            order.filled = Decimal(str(row["filled"] or 0))
            order.attempts = int(row["attempts"] or 0)
            order.path = Path(row["request_path"]) if row["request_path"] else None
            order.state = OrderState.UNKNOWN
            order.maybe_placed = True
            order.expires_at = horizon
            order.created = int(row["created"])
            order.recovered = True
            self.orders[order.client_order_id] = order
            self._index(order, order.order_id)
            recovered.append(order)
            self._spawn(self._settle_recovered(order), f"recover-{order.client_order_id}")
        if recovered:
            self._log.bind(orders=len(recovered)).warning("order requests left unfinished by an earlier process: "
                                                         "reconciling them with the venue")
        return recovered

    async def _settle_recovered(self, order: Order) -> None:
        deadline = _loop_time() + self.config.order_timeout_seconds
        verdict = await self._reconcile(order, deadline, quiet=True)
        if verdict == "absent":
            self._final(order, OrderState.REJECTED, "never placed (the venue has no such order; the process that "
                                                    "sent it ended before its outcome)")
        elif verdict == "unknown":
            self._unknown(order, "left unfinished by an earlier process; the venue has not answered yet")
        else:
            order._placed.set()
            self._record(order)

    # cancel, amend, query --------------------------------------------------------------------------------------
    async def cancel(self, order: Order) -> Order:
        """Cancel over WS (REST when it cannot take it or its outcome is unknown: a cancel is safe to repeat). A
        cancel the venue refuses is answered by asking for the order: it may have filled meanwhile."""
        if order.final:
            return order
        if not order._placed.is_set():
            await order.wait_placed(self.config.order_timeout_seconds)
        if order.final:
            return order
        ref = order.ref(by_order_id=bool(order.order_id))
        outcome = await self._op_with_fallback("cancel", ref, order.symbol)
        if outcome.kind in _ANSWERED:
            if outcome.status is not None and outcome.status.is_terminal:
                self._apply(order, OrderState.of(outcome.status), outcome.filled)
            if not await order.wait_final(self.config.confirm_timeout_seconds):
                await self.query(order)
        else:  # refused, not found, or unknown: what is the order now?
            await self.query(order)
            if order.final_due is not None:  # it filled: its fills are on the way
                await order.wait_final(1.5)
            if not order.final and outcome.kind is OutcomeKind.REJECTED:
                order.reason = f"cancel refused: {outcome.message}"
        return order

    async def amend(self, order: Order, *, price: Any = None, amount: Any = None,
                    new_client_order_id: str | None = None) -> Order:
        if order.final:
            raise OrderError(f"order {order.client_order_id} is {order.state.value}: nothing to amend")
        if not order._placed.is_set():
            await order.wait_placed(self.config.order_timeout_seconds)
        change = Amend(ref=order.ref(by_order_id=bool(order.order_id)), price=price, amount=amount,
                       client_order_id=new_client_order_id)
        outcome = await self._op_with_fallback("amend", change, order.symbol)
        if outcome.kind in _ANSWERED:
            if outcome.client_order_id and outcome.client_order_id != order.client_order_id:
                self.orders[outcome.client_order_id] = order
                order.client_order_id = outcome.client_order_id
            if outcome.order_id and outcome.order_id != order.order_id:
                order.order_id = None
                self._index(order, outcome.order_id)
            if change.price is not None:
                order.price = change.price
            if change.amount is not None:
                order.amount = change.amount
            self.metrics.counts["amended"] += 1
            self._emit(order, "amended")
            return order
        if outcome.kind is OutcomeKind.REJECTED:
            await self.query(order)
            raise OrderError(f"amend refused by {self.key.exchange}: {outcome.message or outcome.code}")
        await self.query(order)
        raise OrderError(f"amend outcome unknown ({outcome.message}); the order's state was read again")

    async def _op_with_fallback(self, op: str, subject: Any, symbol: str) -> Outcome:
        outcome: Outcome | None = None
        if self.ws_usable(op):
            outcome = await self.channel.request(op, subject, None, self.config.ack_timeout_seconds)
            if outcome.kind in (OutcomeKind.NOT_SENT, OutcomeKind.AMBIGUOUS) and self.config.auto_fallback_on_failure:
                self.metrics.fallbacks[f"{op}_{outcome.kind.value}"] += 1
                outcome = None
        if outcome is None:
            for attempt in range(3):  # cancel / amend with absolute terms: repeating them is harmless
                outcome = await self._rest(op, subject, symbol)
                if outcome.kind not in (OutcomeKind.NOT_SENT, OutcomeKind.AMBIGUOUS):
                    break
                await asyncio.sleep(0.2 * 2 ** attempt)
        return outcome

    async def query(self, order: Order) -> Order:
        """Ask the venue for the order now and take what it says."""
        outcome = await self._query_outcome(order)
        if outcome.kind is OutcomeKind.ACCEPTED:
            self._adopt(order, outcome)
        elif outcome.kind is OutcomeKind.NOT_FOUND and order.state is OrderState.REJECTED:
            pass
        return order

    # TP/SL -------------------------------------------------------------------------------------------------------
    async def _protect(self, entry: Order) -> None:
        """The entry filled (or ended partly filled): its take-profit and stop-loss go out in parallel, reduce-only,
        for what filled."""
        make = self._child_factory
        children = [make(entry, kind, price) for kind, price in entry.protect.items()]
        entry.children.extend(children)
        await asyncio.gather(*(self.place(child) for child in children))

    _child_factory: Callable[[Order, str, Decimal], Order]  # set by WebSocketTrading (client ids, strategy)


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


