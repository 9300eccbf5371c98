"""Bybit v5 on the simulator: the private stream (`auth`, `order` / `execution` pushes) and the REST history.

One private socket per simulated market, at `/bybit_<market>` itself (the client uses the endpoint as the
whole URL); it pushes that market's rows with their `category` ("spot" / "linear"). `{"op": "auth"}` is
checked with the client package's own signing (`GET/realtime<expires>`); a bad login gets Bybit's
`{"success": false, ...}` and no data; a subscribe before a good login gets "Request not authorized".
REST (category-driven, like Bybit's one host, so both market prefixes serve every category): signed
`GET /v5/execution/list` (7-day windows, limit ≤ 100, cursor paging, newest first; without `execType` every
kind is listed — fills relabelled with `label_fill` (AdlTrade, BustTrade…) and non-fill rows added with
`add_cash_flow` (Funding, Settle, Delivery) — with one, only that kind) and
`/v5/asset/coin/query-info`; public `/v5/market/time` and `/v5/market/instruments-info` (enough for ccxt's
`load_markets`).

Account state (the simulator's `SimAccount`s): the `wallet` topic pushes the coins a change moved, the `position`
topic (or `position.linear`) the futures positions it moved, both after the execution and order pushes. The
simulator keeps a spot and a futures account apart where Bybit has one unified account (UTA): a socket on
`/bybit_<market>` and `GET /v5/account/wallet-balance` on that prefix show that market's account (spot: coins with
what open orders lock as `locked`; futures: settle coins with the margin of the positions as `totalPositionIM`),
while `GET /v5/position/list` reads the futures account whatever the prefix (category linear). The account is a
UTA 2.0 (`unifiedMarginStatus` 6) in isolated margin (`/v5/account/info`; `uta` 1 in `/v5/user/query-api`, the
two calls ccxt's `fetch_balance` makes first), so a coin's available balance is walletBalance − locked −
totalOrderIM − totalPositionIM, as ccxt computes it: `availableToWithdraw` is "" (as for every UTA since
9 Jan 2025). USD values count USDT and USDC at 1 and other coins at 0 (Bybit's figure for a coin that is not
collateral: the simulator has no index prices). Position rows leave out `curRealisedPnl` and `breakEvenPrice`
(the simulator keeps no per-holding PnL; `cumRealisedPnl` is the symbol's all-time realized PnL, fees apart)
and write 0 maintenance margin.

Public market data (no login) on Bybit's paths, `/bybit_spot/v5/public/spot` and `/bybit_future/v5/public/linear`:
`orderbook.{1|50|200|1000}.<id>`, `publicTrade.<id>`, `tickers.<id>` and `kline.<interval>.<id>`. A book topic
starts with a `snapshot` and goes on with `delta`s whose `data.u` rises by exactly one per change (`data.seq` is
the cross sequence: the simulator's book sequence); level 1 is a snapshot every time the top changes. A change
the "gap" fault leaves out still spends its `u`, and the next change goes out as a snapshot ("If there is a
problem on Bybit's end, a snapshot will be re-sent"). Bybit has no book checksum. Linear tickers are a snapshot
then deltas of the fields that changed; spot tickers are snapshots only. Errors as Bybit words them: an unlisted
symbol is `Invalid symbol :[<topic>]` on spot and `error:handler not found,topic:<topic>` on linear (as an unknown
topic, depth or interval is on both), a topic subscribed twice `error:already subscribed,topic:<topic>`, more
than 10 topics in one spot request `args size >10`.

Order entry (the matching engine's, `exchanges/simulator/orders.py`): the trade socket `/v5/trade` below either
prefix (`auth` as the private stream's, checked with our own HMAC, answered `{"retCode": 0, "op": "auth"}`; then
`order.create` / `order.amend` / `order.cancel` with `header` X-BAPI-TIMESTAMP / X-BAPI-RECV-WINDOW, refused with
10002 outside `now − window ≤ timestamp < now + 1 s`, a reqId never twice (20006); an ack `data: {orderId,
orderLinkId}` or the refusal's retCode; an order op before the login gets 10007 without its reqId, as Bybit leaves it
out of some refusals, ccxt#29361) and REST `POST /v5/order/create|amend|cancel` (signed over the JSON body) with
`GET /v5/order/realtime` (open orders; by id any order, but not the closed ones `forget_closed_orders` dropped, as
after a Bybit restart) and `/v5/order/history`. The order's `category` picks the ledger. orderLinkId is never
reusable (110072, spot 170141); not found 110001 / spot 170213; a finished order 110008 / spot 170139 (filled),
170142 (cancelled); "status unknown" 10000 / spot 170007; a crossing PostOnly order, which Bybit acks and then
cancels, is refused at once here (spot 170218, linear 10001). Spot market orders are taken in `marketUnit`
baseCoin only. TP/SL: linear `triggerPrice` + `triggerDirection`, spot `triggerPrice` + `orderFilter` tpslOrder
(the direction from the book); their rows are `Untriggered` until the price comes, `Deactivated` if cancelled first.

Docs: https://bybit-exchange.github.io/docs/v5/ws/connect , /v5/websocket/private/order ,
/v5/websocket/private/execution , /v5/websocket/private/wallet , /v5/websocket/private/position ,
/v5/account/wallet-balance , /v5/position , /v5/account/account-info , /v5/user/apikey-info ,
/v5/websocket/public/orderbook , /v5/websocket/public/trade ,
/v5/websocket/public/ticker , /v5/websocket/public/kline , /v5/order/execution , /v5/guide#authentication ,
/v5/error , /v5/websocket/trade/guideline , /v5/order/create-order , /v5/order/open-order , /v5/order/order-list .
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import uuid
import weakref
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import web

from exchanges.bybit.auth import auth_payload, sign
from exchanges.bybit.market_data import listed
from exchanges.simulator.account import SimAccount, SimPosition
from exchanges.simulator.ledger import Ledger, SimFill, SimOrder
from exchanges.simulator.market import TIMEFRAMES_MS
from exchanges.bybit.rest import raw_symbol as bybit_raw_symbol
from exchanges.simulator.orders import ClientIdPolicy, SimRequest, SimResult
from exchanges.simulator.venues.base import SimSession, VenueSim, decimal_text, hmac_sha256
from framework.events import Market, OrderStatus, Side, now_ms

if TYPE_CHECKING:
    from exchanges.simulator.market import MarketStep, SymbolMarket
    from exchanges.simulator.server import Simulator

CATEGORIES = {Market.SPOT: "spot", Market.FUTURE: "linear"}
_MARKETS = {category: market for market, category in CATEGORIES.items()}
_ALL_CATEGORIES = ("spot", "linear", "inverse", "option")
# Private topics Bybit accepts; greeks and dcp are acked and stay quiet here.
_DATA_TOPICS = ("order", "execution", "execution.fast")
_QUIET_TOPICS = ("greeks", "dcp")
_KNOWN_TOPICS = frozenset(
    [*_DATA_TOPICS, "wallet", "position", *_QUIET_TOPICS, *(f"{t}.{c}" for t in _DATA_TOPICS for c in _ALL_CATEGORIES),
     *(f"position.{c}" for c in ("linear", "inverse", "option"))]
)
_STATUS = {
    OrderStatus.NEW: "New", OrderStatus.PARTIALLY_FILLED: "PartiallyFilled", OrderStatus.FILLED: "Filled",
    OrderStatus.CANCELED: "Cancelled", OrderStatus.REJECTED: "Rejected",
    # An IOC or market order's rest cancelled by the matching engine: Bybit writes Cancelled (Deactivated is a
    # conditional order cancelled before it triggered).
    OrderStatus.EXPIRED: "Cancelled",
}
_TIME_IN_FORCE = {"gtc": "GTC", "ioc": "IOC", "post_only": "PostOnly"}
_SIDES = {Side.BUY: "Buy", Side.SELL: "Sell"}
_UID = "533285"  # the simulated account's Bybit UID (it prefixes execution frame ids)

SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000
DEFAULT_RECV_WINDOW = "5000"
HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT = 50, 100
_DEFAULT_COINS = ("BTC", "ETH")  # instruments listed even before anything traded
_PLACES = Decimal("0.00000001")  # fee rates and average prices

PUBLIC_PATHS = {Market.SPOT: "/v5/public/spot", Market.FUTURE: "/v5/public/linear"}
BOOK_DEPTHS = (1, 50, 200, 1000)  # the orderbook depths of both public streams
# Bybit's kline intervals the simulator keeps candles for (it has no 2h, 6h, 12h, week or month bars).
KLINE_INTERVALS = {"1": "1m", "3": "3m", "5": "5m", "15": "15m", "30": "30m", "60": "1h", "240": "4h", "D": "1d"}
_SPOT_MAX_ARGS = 10  # "Spot can input up to 10 args for each subscription request sent to one connection"
_FUNDING_MS = 8 * 3600 * 1000
POSITION_DEFAULT_LIMIT, POSITION_MAX_LIMIT = 20, 200
_USD_COINS = frozenset({"USDT", "USDC"})  # valued at 1 USD; other coins count 0 (no index prices here)
_RATE_PLACES = Decimal("0.0001")  # the account IM rate
TRADE_PATH = "/v5/trade"
TRADE_OPS = {"order.create": "place", "order.amend": "amend", "order.cancel": "cancel"}
_SIDE_NAMES = {"Buy": Side.BUY, "Sell": Side.SELL}
_ORDER_TYPES = {"GTC": "limit", "IOC": "ioc", "PostOnly": "post_only"}  # a Limit order's timeInForce
ORDER_LIST_DEFAULT, ORDER_LIST_MAX = 20, 50  # /v5/order/realtime and /history: limit [1, 50], default 20
CLOSED_KEPT = 500  # realtime keeps "a maximum of recent 500 closed status records"
_DECIMAL_TEXT = re.compile(r"[0-9]+(\.[0-9]+)?")
_LINK_ID = re.compile(r"[A-Za-z0-9_-]{1,36}")


class BybitSim(VenueSim):
    exchange = "bybit"
    markets = frozenset(CATEGORIES)
    # "if there is no ping-pong and no stream data sent from server end, the connection will be cut off
    # after 10 minutes" (v5/ws/connect, max_active_time tip).
    client_silence_limit = 600.0
    client_id_policy = ClientIdPolicy.ALWAYS_UNIQUE  # orderLinkId: "always unique" (create-order, spot and derivatives)

    def __init__(self) -> None:
        self._connections = itertools.count(1)
        self._realtime_forgotten: set[str] = set()  # closed orders /v5/order/realtime lost in a restart
        self._exec_types: dict[str, str] = {}  # trade id → execType other than Trade (AdlTrade, BustTrade…)
        self._cash_flows: dict[Market, list[tuple[SimFill, str]]] = {}  # Funding / Settle / Delivery rows
        # Per ledger, each order's fees so far: an order frame reads its running total, never rescans the fills.
        self._fee_tallies: weakref.WeakKeyDictionary[Ledger, _FeeTally] = weakref.WeakKeyDictionary()
        self._update_ids: dict[tuple[Market, str], _UpdateIds] = {}  # each public book's `u`
        # Bybit id → unified symbol of what each public stream lists.
        self._listed = {market: {self.raw_symbol(market, s): s for s in listed(market)} for market in CATEGORIES}

    # executions that are not plain trades ------------------------------------------------------------------------
    def label_fill(self, trade_id: str, exec_type: str) -> None:
        """Report a ledger fill with another fill execType (AdlTrade, BustTrade, BlockTrade…) from now on."""
        self._exec_types[trade_id] = exec_type

    def add_cash_flow(self, sim: Simulator, market: Market | str, symbol: str, exec_type: str, side: Side | str,
                      qty: Any, price: Any, fee: Any, time: int | None = None) -> SimFill:
        """A non-fill execution row (Funding, Settle, Delivery) in the trade history, as Bybit lists it there
        when no execType filter is given (ccxt #17244 shows a Funding row); the ledger does not hold it."""
        market = Market.parse(market)
        ledger = sim.ledger(self.exchange, market)
        settle = symbol.partition(":")[2].partition("-")[0] or symbol.split("/")[1]
        flow = SimFill(trade_id=ledger.next_id(), order_id=ledger.next_id(), client_order_id=None, symbol=symbol,
                       side=Side.parse(side), amount=Decimal(str(qty)), price=Decimal(str(price)),
                       fee=Decimal(str(fee)), fee_currency=settle, is_maker=False,
                       time=now_ms() if time is None else time)
        self._cash_flows.setdefault(market, []).append((flow, exec_type))
        return flow

    # symbols -----------------------------------------------------------------------------------------------
    def raw_symbol(self, market: Market, symbol: str) -> str:
        """Bybit's own naming (USDC perpetuals `BTCPERP`, dated `BTCUSDT-21FEB25`), as the client reads it."""
        return bybit_raw_symbol(market, symbol)

    def expected_trade(self, market: Market, fill: SimFill) -> dict[str, Any]:
        """The ledger fill as Bybit reports it: a spot buy's fee is charged in the base coin it receives."""
        fee, fee_currency, _ = _fee(market, fill)
        return {**super().expected_trade(market, fill), "fee_cost": fee, "fee_currency": fee_currency}

    # sockets ------------------------------------------------------------------------------------------------
    def ws_paths(self, market: Market) -> list[str]:
        """The market prefix itself (our connector's endpoint) and `/v5/private` below it: the path Bybit serves,
        which ccxt.pro reads to pick its topics (a URL holding `v5/private` is a unified account's); and the trade
        socket `/v5/trade` (orders of every category, whichever prefix it is under)."""
        return ["", "/v5/private", TRADE_PATH]

    async def on_open(self, session: SimSession) -> bool:
        session.state["conn_id"] = f"{secrets.token_hex(10)}-{next(self._connections)}"
        session.state["trade"] = session.request.path.endswith(TRADE_PATH)
        return True

    async def on_message(self, session: SimSession, message: Any) -> None:
        if type(message) is not dict:
            return  # Bybit ignores what is not a JSON request object
        if session.public:
            await self._public_message(session, message)
            return
        if session.state.get("trade"):
            await self._trade_message(session, message)
            return
        op = message.get("op")
        if op == "ping":
            await session.send(self._reply(session, message, op="pong", args=[str(now_ms())]))
        elif op == "auth":
            await self._auth(session, message)
        elif op in ("subscribe", "unsubscribe"):
            await self._subscribe(session, message, op)
        else:
            await session.send(self._reply(session, message, success=False, ret_msg="error:invalid op", op=op))

    async def _auth(self, session: SimSession, message: dict) -> None:
        args = message.get("args")
        creds = session.credentials
        if not (isinstance(args, list) and len(args) == 3 and all(isinstance(a, (str, int)) for a in args)
                and _digits(str(args[1]))):
            error = "Params Error"
        elif int(args[1]) <= now_ms():
            error = "Params Error"  # an `expires` already past (pybit #300: a 1 s window that lapsed)
        elif args[0] != creds.api_key:
            error = "Invalid apikey"
        elif not _same(str(args[2]), sign(creds.secret, auth_payload(int(args[1])))):
            error = "Invalid sign"
        else:
            session.authenticated = True
            await session.send(self._reply(session, message, success=True, ret_msg="", op="auth"))
            return
        await session.send(self._reply(session, message, success=False, ret_msg=error, op="auth"))

    async def _subscribe(self, session: SimSession, message: dict, op: str) -> None:
        args = message.get("args")
        if not session.authenticated:
            await session.send(self._reply(session, message, success=False, ret_msg="Request not authorized", op=op))
            return
        if not (isinstance(args, list) and args and all(isinstance(a, str) for a in args)):
            await session.send(self._reply(session, message, success=False, ret_msg="Params Error", op=op))
            return
        unknown = [topic for topic in args if topic not in _KNOWN_TOPICS]
        if unknown:
            await session.send(self._reply(session, message, success=False, op=op,
                                           ret_msg=f"error:handler not found,topic:{unknown[0]}"))
            return
        if op == "subscribe":
            session.subscriptions.update(args)
        else:
            session.subscriptions.difference_update(args)
        await session.send(self._reply(session, message, success=True, ret_msg="", op=op))

    @staticmethod
    def _reply(session: SimSession, request: dict, **fields: Any) -> dict:
        """Bybit's reply shape: the request's `req_id` echoed when it had one, and the socket's `conn_id`."""
        reply: dict[str, Any] = {}
        if "req_id" in request:
            reply["req_id"] = request["req_id"]
        reply.update(fields)
        reply["conn_id"] = session.state.get("conn_id", "")
        return reply

    def _topics(self, session: SimSession, kind: str) -> list[str]:
        """The subscribed topic names (all-in-one `kind` or categorised `kind.<category>`) that see this market."""
        if not session.authenticated:
            return []
        category = CATEGORIES[session.market]
        return [t for t in (kind, f"{kind}.{category}") if t in session.subscriptions]

    # frames -------------------------------------------------------------------------------------------------------
    def order_frames(self, session: SimSession, order: SimOrder) -> list[Any]:
        topics = self._topics(session, "order")
        if not topics:
            return []
        row = self._order_row(session.market, session.ledger, order,
                              untriggered=self._untriggered(session.sim, session.market, order))
        return [{"id": str(uuid.uuid4()), "topic": topic, "creationTime": order.updated, "data": [row]}
                for topic in topics]

    def fill_frames(self, session: SimSession, order: SimOrder, fill: SimFill) -> list[Any]:
        """`execution.fast` first (it is the low-latency feed), then `execution`, then the order row."""
        market = session.market
        frames: list[Any] = []
        seq = _seq(fill)
        for topic in self._topics(session, "execution.fast"):
            frames.append({"topic": topic, "creationTime": fill.time + 1, "data": [{
                "category": CATEGORIES[market], "symbol": self.raw_symbol(market, fill.symbol),
                "execId": fill.trade_id, "execPrice": decimal_text(fill.price), "execQty": decimal_text(fill.amount),
                "orderId": fill.order_id, "isMaker": fill.is_maker, "orderLinkId": fill.client_order_id or "",
                "side": _SIDES[fill.side], "execTime": str(fill.time), "seq": seq,
            }]})
        for topic in self._topics(session, "execution"):
            row = {"category": CATEGORIES[market], **self._execution_row(market, order, fill, order.remaining)}
            frames.append({"topic": topic, "id": f"{_UID}_{row['symbol']}_{seq}", "creationTime": fill.time + 2,
                           "data": [row]})
        return frames + self.order_frames(session, order)

    def _order_row(self, market: Market, ledger: Ledger, order: SimOrder, untriggered: bool = False) -> dict:
        """An `order` row (field set of the docs' stream example, v5/websocket/private/order; the REST order lists
        write the same row without `category`). A conditional (TP/SL) order is `Untriggered` until its price is
        reached and `Deactivated` when cancelled before; an IOC or market order's unfilled rest is `Cancelled`."""
        status = _STATUS[order.status]
        if order.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED) and order.filled and market is Market.SPOT:
            status = "PartiallyFilledCanceled"  # spot only
        conditional = order.trigger_price is not None
        if untriggered:
            status = "Untriggered"
        elif conditional and order.status is OrderStatus.CANCELED and not order.filled:
            status = "Deactivated"
        leaves = order.remaining if not order.status.is_terminal else Decimal(0)
        fees = self._order_fees(market, ledger, order)
        is_market = order.order_type == "market"
        row = {
            "category": CATEGORIES[market], "symbol": self.raw_symbol(market, order.symbol),
            "orderId": order.order_id, "orderLinkId": order.client_order_id or "", "blockTradeId": "",
            "side": _SIDES[order.side], "orderType": order.order_type.capitalize(), "cancelType": "UNKNOWN",
            "price": decimal_text(order.price), "qty": decimal_text(order.amount), "orderIv": "",
            "timeInForce": "IOC" if is_market else _TIME_IN_FORCE[order.time_in_force], "orderStatus": status,
            "lastPriceOnCreated": "", "reduceOnly": order.reduce_only,
            "leavesQty": decimal_text(leaves), "leavesValue": decimal_text(leaves * order.price),
            "cumExecQty": decimal_text(order.filled), "cumExecValue": decimal_text(order.filled_cost),
            "avgPrice": _average(order), "positionIdx": 0,
            "cumExecFee": decimal_text(sum(fees.values(), Decimal(0))), "closedPnl": "0",
            "createdTime": str(order.created), "updatedTime": str(order.updated), "rejectReason": "EC_NoError",
            "stopOrderType": "", "tpslMode": "", "triggerPrice": "", "takeProfit": "", "stopLoss": "",
            "tpTriggerBy": "", "slTriggerBy": "", "tpLimitPrice": "", "slLimitPrice": "", "triggerDirection": 0,
            "triggerBy": "", "closeOnTrigger": False, "placeType": "", "smpType": "None", "smpGroup": 0,
            "smpOrderId": "", "feeCurrency": "", "cumFeeDetail": {coin: decimal_text(cost) for coin, cost in fees.items()},
        }
        if conditional:
            row.update(triggerPrice=decimal_text(order.trigger_price), triggerBy="LastPrice")
            if market is Market.SPOT:
                row.update(stopOrderType="tpslOrder")
            else:
                rises = (order.trigger == "take_profit") == (order.side is Side.SELL)
                row.update(stopOrderType="Stop", triggerDirection=1 if rises else 2, closeOnTrigger=True)
        if market is Market.SPOT:
            # The simulator takes spot market orders in the base coin only (`marketUnit` baseCoin).
            row.update(marketUnit="baseCoin" if is_market else "", isLeverage="0")
        else:
            row.update(createType="CreateByUser", marketUnit="", isLeverage="")
        return row

    def _order_fees(self, market: Market, ledger: Ledger, order: SimOrder) -> dict[str, Decimal]:
        """The order's fees so far per coin, from a running tally of the ledger (amortized O(1) per frame)."""
        tally = self._fee_tallies.get(ledger)
        if tally is None:
            tally = self._fee_tallies[ledger] = _FeeTally()
        return tally.fees(market, ledger, order)

    def _execution_row(self, market: Market, order: SimOrder, fill: SimFill, leaves: Decimal) -> dict:
        """A fill as Bybit writes it, in the stream (plus `category`) and in /v5/execution/list alike."""
        fee, fee_currency, fee_rate = _fee(market, fill)
        row = {
            "symbol": self.raw_symbol(market, fill.symbol), "orderId": fill.order_id,
            "orderLinkId": fill.client_order_id or "", "side": _SIDES[fill.side],
            "orderPrice": decimal_text(order.price), "orderQty": decimal_text(order.amount),
            "leavesQty": decimal_text(leaves), "orderType": order.order_type.capitalize(),
            "stopOrderType": "UNKNOWN", "execFee": decimal_text(fee), "execId": fill.trade_id,
            "execPrice": decimal_text(fill.price), "execQty": decimal_text(fill.amount),
            "execType": self._exec_types.get(fill.trade_id, "Trade"),
            "execValue": decimal_text(fill.cost), "execTime": str(fill.time), "feeCurrency": fee_currency,
            "isMaker": fill.is_maker, "feeRate": decimal_text(fee_rate), "tradeIv": "", "markIv": "",
            "markPrice": decimal_text(fill.price), "indexPrice": "", "underlyingPrice": "", "blockTradeId": "",
            "closedSize": "0", "seq": _seq(fill), "extraFees": "", "marketUnit": "",
        }
        if market is Market.SPOT:
            row.update(isLeverage="0")
        else:
            row.update(createType="CreateByUser", execPnl="0", isLeverage="")
        return row

    # account state ----------------------------------------------------------------------------------------------
    def account_frames(self, session: SimSession, account: SimAccount, assets: list[str],
                       symbols: list[str]) -> list[Any]:
        """A `position` push of the moved positions (futures), then a `wallet` push of the moved coins."""
        frames: list[Any] = []
        if symbols:
            rows = [{**self._position_row(session.ledger, account.position(s), "entryPrice"), "category": "linear"}
                    for s in symbols]
            frames += [{"id": _frame_id(), "topic": topic, "creationTime": account.updated, "data": rows}
                       for topic in self._topics(session, "position")]
        if assets and session.authenticated and "wallet" in session.subscriptions:
            frames.append({"id": _frame_id(), "topic": "wallet", "creationTime": account.updated,
                           "data": [_wallet_account(account, assets)]})
        return frames

    def _position_row(self, ledger: Ledger, position: SimPosition, entry_key: str) -> dict:
        """A position as Bybit writes it: `entryPrice` in the stream, `avgPrice` in /v5/position/list."""
        size = position.size
        # The symbol's first and last fills (each scan stops at the first match: near either end of the ledger).
        first = next((f for f in ledger.fills if f.symbol == position.symbol), None)
        last = next((f for f in reversed(ledger.fills) if f.symbol == position.symbol), None)
        margin = decimal_text(position.margin)
        liquidation = position.liquidation_price
        return {
            "positionIdx": 0, "tradeMode": 0, "riskId": 1, "riskLimitValue": "2000000",
            "symbol": self.raw_symbol(Market.FUTURE, position.symbol),
            "side": "Buy" if size > 0 else "Sell" if size < 0 else "", "size": decimal_text(abs(size)),
            entry_key: decimal_text(position.entry_price), "leverage": decimal_text(position.leverage),
            "positionValue": decimal_text(abs(size) * position.entry_price), "positionBalance": margin,
            "markPrice": decimal_text(position.mark_price), "positionIM": margin, "positionIMByMp": margin,
            "positionMM": "0", "positionMMByMp": "0", "takeProfit": "0", "stopLoss": "0", "trailingStop": "0",
            "unrealisedPnl": decimal_text(position.unrealized_pnl),
            "cumRealisedPnl": decimal_text(position.realized_pnl), "sessionAvgPrice": "",
            "createdTime": str(first.time if first else position.updated), "updatedTime": str(position.updated),
            "tpslMode": "Full", "liqPrice": "" if liquidation is None else decimal_text(liquidation), "bustPrice": "",
            "positionStatus": "Normal", "adlRankIndicator": 1 if size else 0, "autoAddMargin": 0,
            "leverageSysUpdatedTime": "", "mmrSysUpdatedTime": "", "seq": _seq(last) if last else -1,
            "isReduceOnly": False,
        }

    # order entry: the /v5/trade socket ----------------------------------------------------------------------------
    async def _trade_message(self, session: SimSession, message: dict) -> None:
        """One request on the trade socket: ping, auth, then order.create / order.amend / order.cancel."""
        op = message.get("op")
        if op == "ping":
            await session.send(self._trade_reply(session, message, 0, "OK", op="pong", data=[str(now_ms())]))
            return
        if op == "auth":
            await self._trade_auth(session, message)
            return
        if op not in TRADE_OPS:
            await session.send(self._trade_reply(session, message, 10404, f"op type is not found: {op}"))
            return
        if not session.authenticated:
            # Bybit leaves the reqId out of some refusals of this kind (ccxt#29361): nothing says which request it is.
            await session.send({"retCode": 10007, "retMsg": "User authentication failed.", "op": op,
                                "connId": session.state.get("conn_id", "")})
            return
        try:
            self._new_req_id(session, message.get("reqId"))
            header = message.get("header") if isinstance(message.get("header"), dict) else {}
            valid_until = _valid_until(header.get("X-BAPI-TIMESTAMP"),
                                       header.get("X-BAPI-RECV-WINDOW", DEFAULT_RECV_WINDOW), now_ms())
            args = message.get("args")
            if not (isinstance(args, list) and len(args) == 1 and isinstance(args[0], dict)):
                raise _Refusal(10001, "params error: args must hold one order")
            market, request = self._read_order(session.sim, TRADE_OPS[op], args[0], valid_until, 10404)
        except _Refusal as refusal:
            await session.send(self._trade_reply(session, message, refusal.code, refusal.message))
            return

        async def answer(result: SimResult) -> None:
            code, text, data = self._answer(market, result)
            await session.send(self._trade_reply(session, message, code, text, data=data))

        session.sim.orders.submit(self.exchange, market, request, answer, path="ws",
                                  transport=session.request.transport)

    async def _trade_auth(self, session: SimSession, message: dict) -> None:
        """The private stream's signature (`GET/realtime<expires>`, checked here with our own HMAC), answered in the
        trade socket's shape: retCode 0, 10001 param error, 10003 bad key, 10004 invalid sign, 20001 repeat auth;
        a login the fault refuses gets 10003 "Too many sessions under the same UID"."""
        args = message.get("args")
        creds = session.credentials
        if session.authenticated:
            code, text = 20001, "repeat auth"
        elif not (isinstance(args, list) and len(args) == 3 and isinstance(args[0], str)
                  and isinstance(args[2], str) and _digits(str(args[1]))):
            code, text = 10001, "param error"
        elif int(args[1]) <= now_ms():
            code, text = 10001, "param error: expires is in the past"
        elif args[0] != creds.api_key:
            code, text = 10003, "API key is invalid."
        elif not _same(args[2], hmac_sha256(creds.secret, f"GET/realtime{args[1]}").hex()):
            code, text = 10004, "Invalid sign"
        elif session.sim.orders.login_refused(self.exchange, session.market):
            code, text = 10003, "Too many sessions under the same UID"
        else:
            session.authenticated = True
            code, text = 0, "OK"
        await session.send(self._trade_reply(session, message, code, text, op="auth"))

    @staticmethod
    def _new_req_id(session: SimSession, req_id: Any) -> None:
        """A reqId is optional, ≤ 36 characters, and never twice on a socket (20006)."""
        if req_id is None:
            return
        if not isinstance(req_id, str) or not 0 < len(req_id) <= 36:
            raise _Refusal(10001, "params error: reqId must be a string of at most 36 characters")
        seen = session.state.setdefault("req_ids", set())
        if req_id in seen:
            raise _Refusal(20006, "reqId is duplicated")
        seen.add(req_id)

    @staticmethod
    def _trade_reply(session: SimSession, request: dict, code: int, text: str, *, op: str | None = None,
                     data: Any = None) -> dict:
        """The trade socket's answer: reqId echoed when the request had one; order ops carry `data` ({} when
        refused), `retExtInfo` and the rate-limit `header`."""
        reply: dict[str, Any] = {}
        if "reqId" in request:
            reply["reqId"] = request["reqId"]
        op = op or request.get("op")
        reply.update(retCode=code, retMsg=text, op=op)
        if op in TRADE_OPS:
            now = str(now_ms())
            reply.update(data=data or {}, retExtInfo={}, header={
                "X-Bapi-Limit": "10", "X-Bapi-Limit-Status": "9", "X-Bapi-Limit-Reset-Timestamp": now,
                "Traceid": secrets.token_hex(16), "Timenow": now})
        elif data is not None:
            reply["data"] = data
        reply["connId"] = session.state.get("conn_id", "")
        return reply

    # order entry: reading requests, rendering results (socket and REST alike) --------------------------------------
    def _read_order(self, sim: Simulator, op: str, args: dict, valid_until: int,
                    bad_category: int) -> tuple[Market, SimRequest]:
        """An order request's args as the engine's SimRequest, on the market its `category` names (Bybit's trade
        socket and REST host serve every category)."""
        market = _MARKETS.get(args.get("category"))
        if market is None:
            raise _Refusal(bad_category, "params error: category is not correct/supported")
        raw = args.get("symbol")
        symbol = self._unified(sim, market, raw) if isinstance(raw, str) else None
        if symbol is None:
            raise (_Refusal(170121, "Invalid symbol.") if market is Market.SPOT
                   else _Refusal(10001, "params error: symbol invalid"))
        if op == "place":
            return market, self._place_request(sim, market, symbol, args, valid_until)
        ids = {"order_id": _order_id(args.get("orderId")), "client_order_id": _link_id(args.get("orderLinkId"))}
        if ids["order_id"] is None and ids["client_order_id"] is None:
            raise _Refusal(10001, "params error: orderId or orderLinkId is required")
        if op == "cancel":
            return market, SimRequest(op="cancel", symbol=symbol, valid_until=valid_until, **ids)
        amount, price = _positive(args, "qty", optional=True), _positive(args, "price", optional=True)
        if amount is None and price is None:
            raise _Refusal(10001, "params error: qty or price is required")
        return market, SimRequest(op="amend", symbol=symbol, amount=amount, price=price, valid_until=valid_until,
                                  **ids)

    def _place_request(self, sim: Simulator, market: Market, symbol: str, args: dict, valid_until: int) -> SimRequest:
        side = _SIDE_NAMES.get(args.get("side"))
        if side is None:
            raise _Refusal(10001, "params error: side invalid")
        kind = args.get("orderType")
        if kind not in ("Limit", "Market"):
            raise _Refusal(10001, "params error: orderType invalid")
        amount = _positive(args, "qty")
        if kind == "Market":
            order_type, price = "market", None
            unit = args.get("marketUnit") or ("quoteCoin" if side is Side.BUY else "baseCoin")
            if market is Market.SPOT and unit != "baseCoin":
                raise _Refusal(10001, "params error: the simulator takes spot market orders in baseCoin only")
        else:
            price = _positive(args, "price")
            order_type = _ORDER_TYPES.get(args.get("timeInForce", "GTC"))
            if order_type is None:
                raise _Refusal(10001, "params error: timeInForce invalid (the simulator has GTC, IOC, PostOnly)")
        trigger_price, trigger = _positive(args, "triggerPrice", optional=True), None
        if trigger_price is not None:
            if market is Market.SPOT:
                if args.get("orderFilter") not in ("tpslOrder", "StopOrder"):
                    raise _Refusal(10001, "params error: a spot triggerPrice needs orderFilter tpslOrder or StopOrder")
                public = sim.market(self.exchange, market, symbol)
                rises = trigger_price > (public.best_bid() if side is Side.SELL else public.best_ask())[0]
            else:
                direction = args.get("triggerDirection")
                if direction not in (1, 2):
                    raise _Refusal(10001, "params error: triggerDirection must be 1 (rise) or 2 (fall)")
                rises = direction == 1
            trigger = "take_profit" if rises == (side is Side.SELL) else "stop_loss"
        return SimRequest(op="place", symbol=symbol, client_order_id=_link_id(args.get("orderLinkId")), side=side,
                          amount=amount, price=price, order_type=order_type, trigger_price=trigger_price,
                          trigger=trigger, reduce_only=market is Market.FUTURE and args.get("reduceOnly") is True,
                          valid_until=valid_until)

    def _unified(self, sim: Simulator, market: Market, raw: str) -> str | None:
        found = self._listed[market].get(raw)
        if found is None:
            found = {self.raw_symbol(market, s): s for s in self._symbols(sim, market)}.get(raw)
        return found

    @staticmethod
    def _answer(market: Market, result: SimResult) -> tuple[int, str, dict]:
        """(retCode, retMsg, data) of an engine result, in the category's codes (v5/error)."""
        spot = market is Market.SPOT
        if result.kind == "ok":
            order = result.order
            return 0, "OK", {"orderId": order.order_id, "orderLinkId": order.client_order_id or ""}
        if result.kind == "not_found":
            code, text = (170213, "Order does not exist.") if spot else (110001, "Order does not exist")
        elif result.kind == "unknown":
            code, text = ((170007, "Timeout waiting for response from backend server.") if spot
                          else (10000, "Server Timeout"))
        elif result.reason == "duplicate_client_id":
            code, text = (170141, "Duplicate clientOrderId") if spot else (110072, "OrderLinkedID is duplicate")
        elif result.reason == "would_cross":
            # Bybit acks a crossing PostOnly order and cancels it after (EC_PostOnlyWillTakeLiquidity); the engine
            # refuses it before it exists: spot's LIMIT-MAKER refusal, and a params error on linear.
            code, text = ((170218, "The LIMIT-MAKER order is rejected due to invalid price.") if spot
                          else (10001, "params error: PostOnly order would take liquidity"))
        elif result.reason == "expired":
            code, text = 10002, "The request time exceeds the time window range."
        elif result.reason == "not_open":
            if not spot:
                code, text = 110008, "The order has been completed or cancelled."
            elif result.order is not None and result.order.status is OrderStatus.FILLED:
                code, text = 170139, "Order has been filled."
            else:
                code, text = 170142, "Order has been cancelled"
        elif result.reason == "insufficient":
            code, text = (170131, "Balance insufficient") if spot else (110007, "Available balance is insufficient")
        else:
            code, text = 10001, f"params error: {result.message}"
        return code, text, {}

    def _untriggered(self, sim: Any, market: Market, order: SimOrder) -> bool:
        """A TP/SL order still waiting for its price."""
        engine = getattr(sim, "orders", None)
        pending = engine.conditional.get((self.exchange, market), []) if engine is not None else []
        return any(o is order for o in pending)

    def forget_closed_orders(self, sim: Simulator, market: Market | str) -> int:
        """Bybit's release or restart: the closed orders so far leave /v5/order/realtime ("should only be queried
        through order history"). Returns how many."""
        market = Market.parse(market)
        closed = [o.order_id for o in sim.ledger(self.exchange, market).orders.values() if o.status.is_terminal]
        self._realtime_forgotten.update(closed)
        return len(closed)

    # order entry: REST ------------------------------------------------------------------------------------------
    async def _order_create(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        return await self._order_post(sim, request, "place")

    async def _order_amend(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        return await self._order_post(sim, request, "amend")

    async def _order_cancel(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        return await self._order_post(sim, request, "cancel")

    async def _order_post(self, sim: Simulator, request: web.Request, op: str) -> web.Response:
        """POST /v5/order/create|amend|cancel: signed JSON body, the order's category picks the market; the answer
        is `result: {orderId, orderLinkId}` (an ack) or the refusal's retCode."""
        args, valid_until, refused = await self._signed_body(sim, request)
        if refused is not None:
            return refused
        try:
            market, order_request = self._read_order(sim, op, args, valid_until, 10001)
        except _Refusal as refusal:
            return _error(refusal.code, refusal.message)
        result = await sim.orders.call(self.exchange, market, order_request, transport=request.transport)
        if result is None:
            return _error(10016, "Server error.")  # the fault cut the connection: nobody reads this
        code, text, data = self._answer(market, result)
        return _ok(data) if code == 0 else _error(code, text)

    async def _order_realtime(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        return await self._order_list(sim, request, realtime=True)

    async def _order_history(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        return await self._order_list(sim, request, realtime=False)

    async def _order_list(self, sim: Simulator, request: web.Request, *, realtime: bool) -> web.Response:
        """"Get Open & Closed Orders" (realtime: open orders; with `openOnly` 1 the last 500 closed ones; by id any
        order not forgotten by a restart) and "Get Order History" (7 days of every status, by id any order):
        newest first, `limit` [1, 50] (default 20), a cursor (the page's last order id); filters orderId >
        orderLinkId, then symbol / baseCoin / settleCoin, history also `orderStatus`."""
        params, refused = self._signed_params(sim, request)
        if refused is not None:
            return refused
        category = params.get("category", "")
        if category not in _ALL_CATEGORIES:
            return _error(10001, "params error: Category is invalid")
        try:
            limit = min(max(int(params.get("limit") or ORDER_LIST_DEFAULT), 1), ORDER_LIST_MAX)
        except ValueError:
            return _error(10001, "params error: limit is invalid")
        result: dict[str, Any] = {"category": category, "list": [], "nextPageCursor": ""}
        if category not in _MARKETS:
            return _ok(result)  # inverse / option accounts are empty here
        market = _MARKETS[category]
        named = ("symbol", "baseCoin", "settleCoin")
        if realtime and market is Market.FUTURE and not any(params.get(k) for k in named):
            return _error(10001, "params error: symbol, baseCoin or settleCoin is required for linear")
        ledger = sim.ledger(self.exchange, market)
        order_id, link = params.get("orderId") or None, params.get("orderLinkId") or None
        if order_id or link:
            found = await sim.orders.call(self.exchange, market, SimRequest(
                op="query", symbol=params.get("symbol", ""), order_id=order_id,
                client_order_id=None if order_id else link), transport=request.transport)
            orders = [found.order] if found is not None and found.kind == "ok" else []
            if realtime:
                orders = [o for o in orders if o.order_id not in self._realtime_forgotten]
        elif realtime and params.get("openOnly", "0") == "0":
            orders = [o for o in self.queryable_orders(ledger) if not o.status.is_terminal]
        elif realtime:
            orders = [o for o in self.queryable_orders(ledger)
                      if o.status.is_terminal and o.order_id not in self._realtime_forgotten][-CLOSED_KEPT:]
        else:
            start, end = params.get("startTime"), params.get("endTime")
            if bool(start) != bool(end) or (start and not (_digits(start) and _digits(end))):
                return _error(10001, "params error: startTime and endTime must be passed together, in ms")
            now = now_ms()
            low, high = (int(start), int(end)) if start else (now - SEVEN_DAYS_MS, now)
            status = params.get("orderStatus")
            orders = [o for o in self.queryable_orders(ledger) if low <= o.created <= high
                      and (not status or self._order_row(market, ledger, o)["orderStatus"] == status)]
        orders = [o for o in orders if self._order_selected(market, o, params)]
        orders.sort(key=lambda o: (-o.created, -int(o.order_id)))
        cursor = params.get("cursor")
        if cursor:
            ids = [o.order_id for o in orders]
            if cursor not in ids:
                return _error(10001, "params error: cursor is invalid")
            orders = orders[ids.index(cursor) + 1:]
        page = orders[:limit]
        result["list"] = [self._rest_order_row(sim, market, ledger, o) for o in page]
        if len(orders) > limit:
            result["nextPageCursor"] = page[-1].order_id
        return _ok(result)

    def _order_selected(self, market: Market, order: SimOrder, params: dict[str, str]) -> bool:
        if params.get("symbol") and self.raw_symbol(market, order.symbol) != params["symbol"]:
            return False
        if params.get("baseCoin") and order.symbol.split("/")[0] != params["baseCoin"]:
            return False
        return not params.get("settleCoin") or _settle(order.symbol) == params["settleCoin"]

    def _rest_order_row(self, sim: Simulator, market: Market, ledger: Ledger, order: SimOrder) -> dict:
        row = self._order_row(market, ledger, order, untriggered=self._untriggered(sim, market, order))
        del row["category"]  # the list's `category` says it
        return row

    async def _signed_body(self, sim: Simulator, request: web.Request) -> tuple[dict, int, web.Response | None]:
        """Bybit's v5 HMAC headers over timestamp + api key + recv window + the JSON body exactly as sent (checked
        with our own HMAC); the body's args, the request's last valid ms, or the refusal (nothing executed)."""
        creds = sim.credentials_for(self.exchange)
        headers = request.headers
        body = await request.text()
        api_key = headers.get("X-BAPI-API-KEY", "")
        timestamp = headers.get("X-BAPI-TIMESTAMP", "")
        recv_window = headers.get("X-BAPI-RECV-WINDOW", DEFAULT_RECV_WINDOW)
        if api_key != creds.api_key:
            return {}, 0, _error(10003, "API key is invalid.")
        try:
            valid_until = _valid_until(timestamp, recv_window, now_ms())
        except _Refusal as refusal:
            return {}, 0, _error(refusal.code, refusal.message)
        payload = f"{timestamp}{api_key}{headers.get('X-BAPI-RECV-WINDOW', '')}{body}"
        if not _same(headers.get("X-BAPI-SIGN", ""), hmac_sha256(creds.secret, payload).hex()):
            return {}, 0, _error(10004, "error sign!")
        try:
            args = json.loads(body)
        except ValueError:
            args = None
        if not isinstance(args, dict):
            return {}, 0, _error(10001, "params error: the body is not a JSON object")
        return args, valid_until, None

    # public market data --------------------------------------------------------------------------------------------
    def public_ws_paths(self, market: Market) -> list[str]:
        return [PUBLIC_PATHS[market]]

    async def _public_message(self, session: SimSession, message: dict) -> None:
        op = message.get("op")
        if op == "ping":
            await session.send(self._public_reply(session, message, True, "pong", op))
        elif op in ("subscribe", "unsubscribe"):
            await self._public_subscribe(session, message, op)
        else:
            await session.send(self._public_reply(session, message, False, "error:invalid op", op))

    async def _public_subscribe(self, session: SimSession, message: dict, op: str) -> None:
        """All the request's topics or none: the first one Bybit would refuse names the error."""
        args = message.get("args")
        market = session.market
        if not (isinstance(args, list) and args and all(isinstance(a, str) for a in args)):
            error = "Params Error"
        elif market is Market.SPOT and len(args) > _SPOT_MAX_ARGS:
            error = f"args size >{_SPOT_MAX_ARGS}"
        else:
            error = next(filter(None, (self._topic_error(session, topic, op) for topic in args)), "")
        if error:
            await session.send(self._public_reply(session, message, False, error, op))
            return
        # The spot ack says "subscribe" (v5/ws/connect, "Public Spot"); linear leaves ret_msg empty.
        ack = "subscribe" if market is Market.SPOT and op == "subscribe" else ""
        if op == "unsubscribe":
            for topic in args:  # a topic not subscribed is let go quietly
                session.subscriptions.discard(topic)
                for notes in ("tickers", "tops", "bars"):
                    session.state.get(notes, {}).pop(topic, None)
            await session.send(self._public_reply(session, message, True, ack, op))
            return
        await session.send(self._public_reply(session, message, True, ack, op))
        for topic in args:
            # Subscribed, rendered and written with no await in between: a market step cannot slip a delta in
            # before the snapshot, nor change the book between the snapshot and the first delta it gets.
            session.subscriptions.add(topic)
            for frame in self._first_frames(session, topic):
                await session.send(frame)

    def _topic_error(self, session: SimSession, topic: str, op: str) -> str:
        """Bybit's refusal of one topic ("" when it is fine)."""
        kind, param, raw = _topic_parts(topic)
        known = ((kind == "orderbook" and param in map(str, BOOK_DEPTHS))
                 or (kind == "kline" and param in KLINE_INTERVALS)
                 or (kind in ("tickers", "publicTrade") and not param))
        if known and raw not in self._listed[session.market] and session.market is Market.SPOT:
            return f"Invalid symbol :[{topic}]"
        if not known or raw not in self._listed[session.market]:
            return f"error:handler not found,topic:{topic}"
        if op == "subscribe" and topic in session.subscriptions:
            return f"error:already subscribed,topic:{topic}"
        return ""

    @staticmethod
    def _public_reply(session: SimSession, request: dict, success: bool, ret_msg: str, op: Any) -> dict:
        """The public streams' reply: `req_id` echoed as text (linear writes "" when the request had none)."""
        reply: dict[str, Any] = {"success": success, "ret_msg": ret_msg, "conn_id": session.state.get("conn_id", "")}
        if "req_id" in request or session.market is Market.FUTURE:
            reply["req_id"] = str(request.get("req_id", ""))
        reply["op"] = op
        return reply

    def _first_frames(self, session: SimSession, topic: str) -> list[dict]:
        """What a topic pushes right after its ack: a book or ticker snapshot, the current candle (trades wait)."""
        kind, param, raw = _topic_parts(topic)
        symbol_market = session.sim.market(self.exchange, session.market, self._listed[session.market][raw])
        now = max(now_ms(), symbol_market.time)
        if kind == "orderbook":
            ids = self._book_ids(symbol_market)
            bids, asks = symbol_market.book(int(param))
            if param == "1":
                session.state.setdefault("tops", {})[topic] = (bids, asks)
            return [_book_frame(topic, "snapshot", raw, bids, asks, ids.u, symbol_market.seq, now)]
        if kind == "tickers":
            fields = self._ticker_fields(session.market, symbol_market, raw, now)
            session.state.setdefault("tickers", {})[topic] = fields
            return [_ticker_frame(session.market, topic, "snapshot", fields, symbol_market.seq, now)]
        if kind == "kline":
            row = _kline_row(symbol_market, param, now)
            session.state.setdefault("bars", {})[topic] = row
            return [_kline_frame(topic, row, now)]
        return []

    def market_frames(self, session: SimSession, symbol_market: SymbolMarket, step: MarketStep,
                      corrupt_checksum: bool = False) -> list[Any]:
        """Book, then trades, ticker and candles, for what the session subscribed (Bybit has no checksum to
        corrupt). Tickers and candles go out when they changed."""
        subscribed = session.subscriptions
        if not subscribed:
            return []
        market = symbol_market.market
        raw = self.raw_symbol(market, symbol_market.symbol)
        ids = self._book_ids(symbol_market, step)
        now = step.time
        frames: list[Any] = []
        for depth in BOOK_DEPTHS:
            topic = f"orderbook.{depth}.{raw}"
            if topic not in subscribed or step.book is None:
                continue
            if depth == 1:
                top = symbol_market.book(1)
                if session.state.setdefault("tops", {}).get(topic) != top:
                    session.state["tops"][topic] = top
                    frames.append(_book_frame(topic, "snapshot", raw, *top, ids.u, symbol_market.seq, now))
            elif ids.snapshot_now:
                frames.append(_book_frame(topic, "snapshot", raw, *symbol_market.book(depth), ids.u,
                                          symbol_market.seq, now))
            else:
                frames.append(_book_frame(topic, "delta", raw, step.book.bids, step.book.asks, ids.u,
                                          symbol_market.seq, now))
        topic = f"publicTrade.{raw}"
        if step.trades and topic in subscribed:
            frames.append(self._trades_frame(market, topic, raw, symbol_market, step))
        topic = f"tickers.{raw}"
        if topic in subscribed:
            fields = self._ticker_fields(market, symbol_market, raw, now)
            sent = session.state.setdefault("tickers", {})
            if market is Market.SPOT and fields != sent.get(topic):
                frames.append(_ticker_frame(market, topic, "snapshot", fields, symbol_market.seq, now))
            elif market is Market.FUTURE:
                changed = {k: v for k, v in fields.items() if sent.get(topic, {}).get(k) != v}
                if changed:
                    frames.append(_ticker_frame(market, topic, "delta", {"symbol": raw, **changed},
                                                symbol_market.seq, now))
            sent[topic] = fields
        bars = session.state.setdefault("bars", {})
        for interval in KLINE_INTERVALS:
            topic = f"kline.{interval}.{raw}"
            if topic not in subscribed:
                continue
            row, last = _kline_row(symbol_market, interval, now), bars.get(topic)
            if last is not None and last["start"] != row["start"]:  # the bar closed: its final state, confirmed
                frames.append(_kline_frame(topic, {**last, "confirm": True}, now))
            if last is None or _bar_changed(last, row):
                frames.append(_kline_frame(topic, row, now))
                bars[topic] = row
        return frames

    def _book_ids(self, symbol_market: SymbolMarket, step: MarketStep | None = None) -> _UpdateIds:
        """A book's `u`, moved on once per step that changed the book (this runs once per watching session)."""
        key = (symbol_market.market, symbol_market.symbol)
        ids = self._update_ids.get(key)
        if ids is None:
            ids = self._update_ids[key] = _UpdateIds(symbol_market.seq)
        moved = symbol_market.seq != ids.seq  # the book changed (changes nobody watched count as one)
        if step is not None and step is not ids.step:
            ids.step = step
            ids.snapshot_now = False
            if moved and step.book is None:  # a change that did not go out: the next one is a snapshot
                ids.snapshot_due = True
            elif moved:
                ids.snapshot_now, ids.snapshot_due = ids.snapshot_due, False
        if moved:
            ids.seq = symbol_market.seq
            ids.u += 1
        return ids

    def _trades_frame(self, market: Market, topic: str, raw: str, symbol_market: SymbolMarket,
                      step: MarketStep) -> dict:
        """A `publicTrade` push; linear rows carry the tick direction `L` of each trade."""
        prices = [t.price for t in symbol_market.trades]
        first = len(prices) - len(step.trades)
        rows = []
        for n, trade in enumerate(step.trades):
            row: dict[str, Any] = {"T": trade.time, "s": raw, "S": _SIDES[trade.side],
                                   "v": decimal_text(trade.amount), "p": decimal_text(trade.price)}
            if market is Market.FUTURE:
                row["L"] = _tick_direction(prices[:first + n + 1])
            row.update(i=public_trade_id(market, trade.trade_id), BT=False)
            rows.append(row)
        return {"topic": topic, "type": "snapshot", "ts": step.time, "data": rows}

    def _ticker_fields(self, market: Market, symbol_market: SymbolMarket, raw: str, now: int) -> dict[str, str]:
        """Every field of the market's ticker (spot: the 24 h figures; linear adds tick direction, book top,
        mark / index (the last price here), open interest and funding)."""
        sm = symbol_market
        change = ((sm.last - sm.open) / sm.open).quantize(Decimal("0.0001" if market is Market.SPOT else "0.000001"))
        if market is Market.SPOT:
            return {"symbol": raw, "lastPrice": decimal_text(sm.last), "highPrice24h": decimal_text(sm.high),
                    "lowPrice24h": decimal_text(sm.low), "prevPrice24h": decimal_text(sm.open),
                    "volume24h": decimal_text(sm.volume), "turnover24h": decimal_text(sm.quote_volume),
                    "price24hPcnt": decimal_text(change)}
        (bid, bid_size), (ask, ask_size) = sm.best_bid(), sm.best_ask()
        return {
            "symbol": raw, "tickDirection": _tick_direction([t.price for t in sm.trades] or [sm.last]),
            "price24hPcnt": decimal_text(change), "lastPrice": decimal_text(sm.last),
            "prevPrice24h": decimal_text(sm.open), "highPrice24h": decimal_text(sm.high),
            "lowPrice24h": decimal_text(sm.low), "prevPrice1h": decimal_text(sm.open),
            "markPrice": decimal_text(sm.last), "indexPrice": decimal_text(sm.last), "openInterest": "0",
            "openInterestValue": "0", "turnover24h": decimal_text(sm.quote_volume),
            "volume24h": decimal_text(sm.volume), "nextFundingTime": str((now // _FUNDING_MS + 1) * _FUNDING_MS),
            "fundingRate": "0.0001", "bid1Price": decimal_text(bid), "bid1Size": decimal_text(bid_size),
            "ask1Price": decimal_text(ask), "ask1Size": decimal_text(ask_size),
        }

    # REST -----------------------------------------------------------------------------------------------------------
    def rest_routes(self, market: Market) -> list:
        return [
            ("GET", "/v5/execution/list", self._execution_list),
            ("GET", "/v5/asset/coin/query-info", self._coin_info),
            ("GET", "/v5/account/wallet-balance", self._wallet_balance),
            ("GET", "/v5/position/list", self._position_list),
            ("GET", "/v5/account/info", self._account_info),
            ("GET", "/v5/user/query-api", self._api_key_info),
            ("GET", "/v5/market/time", self._server_time),
            ("GET", "/v5/market/instruments-info", self._instruments),
            ("POST", "/v5/order/create", self._order_create),
            ("POST", "/v5/order/amend", self._order_amend),
            ("POST", "/v5/order/cancel", self._order_cancel),
            ("GET", "/v5/order/realtime", self._order_realtime),
            ("GET", "/v5/order/history", self._order_history),
        ]

    async def _execution_list(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Bybit's "Get Trade History": newest first, one ≤ 7-day window, `limit` ≤ 100, `nextPageCursor` paging."""
        params, refused = self._signed_params(sim, request)
        if refused is not None:
            return refused
        category = params.get("category", "")
        if category not in _ALL_CATEGORIES:
            return _error(10001, "params error: Category is invalid")
        window = _time_window(params.get("startTime"), params.get("endTime"), now_ms())
        if isinstance(window, str):
            return _error(10001, window)
        try:
            limit = min(max(int(params.get("limit") or HISTORY_DEFAULT_LIMIT), 1), HISTORY_MAX_LIMIT)
        except ValueError:
            return _error(10001, "params error: limit is invalid")
        result: dict[str, Any] = {"nextPageCursor": "", "category": category, "list": []}
        if category not in _MARKETS:
            return _ok(result)  # inverse / option accounts are empty here
        hist_market = _MARKETS[category]
        ledger = sim.ledger(self.exchange, hist_market)
        # Without execType every kind is listed (fills, funding, settlement…); with one, only that kind.
        entries = [(f, self._exec_types.get(f.trade_id, "Trade")) for f in ledger.fills_between(None, *window)]
        entries += [(f, kind) for f, kind in self._cash_flows.get(hist_market, []) if window[0] <= f.time <= window[1]]
        wanted = params.get("execType")
        fills = [f for f, kind in entries
                 if (wanted is None or kind == wanted) and self._selected(hist_market, f, params)]
        fills.sort(key=_newest_first)
        cursor = params.get("cursor")
        if cursor:
            position = _cursor_key(cursor)
            if position is None:
                return _error(10001, "params error: cursor is invalid")
            fills = [f for f in fills if _newest_first(f) > position]
        page = fills[:limit]
        leaves = _leaves_after(ledger)
        flows = dict(self._cash_flows.get(hist_market, []))
        result["list"] = [self._cash_flow_row(hist_market, f, flows[f]) if f in flows
                          else self._execution_row(hist_market, ledger.orders[f.order_id], f, leaves[f.trade_id])
                          for f in page]
        if len(fills) > limit:
            result["nextPageCursor"] = f"{page[-1].time}-{page[-1].trade_id}"
        return _ok(result)

    def _cash_flow_row(self, market: Market, flow: SimFill, exec_type: str) -> dict:
        """A Funding / Settle / Delivery row: no order behind it (orderType UNKNOWN, order price and qty 0)."""
        row = {
            "symbol": self.raw_symbol(market, flow.symbol), "orderId": flow.order_id, "orderLinkId": "",
            "side": _SIDES[flow.side], "orderPrice": "0", "orderQty": "0", "leavesQty": "0",
            "orderType": "UNKNOWN", "stopOrderType": "UNKNOWN", "execFee": decimal_text(flow.fee),
            "execId": flow.trade_id, "execPrice": decimal_text(flow.price), "execQty": decimal_text(flow.amount),
            "execType": exec_type, "execValue": decimal_text(flow.cost), "execTime": str(flow.time),
            "feeCurrency": flow.fee_currency, "isMaker": False, "feeRate": "0.0001", "tradeIv": "", "markIv": "",
            "markPrice": decimal_text(flow.price), "indexPrice": "", "underlyingPrice": "", "blockTradeId": "",
            "closedSize": "0", "seq": _seq(flow), "extraFees": "", "marketUnit": "",
        }
        if market is Market.SPOT:
            row.update(isLeverage="0")
        else:
            row.update(createType="CreateByUser", execPnl="0", isLeverage="")
        return row

    def _selected(self, market: Market, fill: SimFill, params: dict[str, str]) -> bool:
        """The docs' filter priority: orderId > orderLinkId > symbol > baseCoin (the first one given decides)."""
        if params.get("orderId"):
            return fill.order_id == params["orderId"]
        if params.get("orderLinkId"):
            return (fill.client_order_id or "") == params["orderLinkId"]
        if params.get("symbol"):
            return self.raw_symbol(market, fill.symbol) == params["symbol"]
        if params.get("baseCoin"):
            return fill.symbol.split("/")[0] == params["baseCoin"]
        return True

    async def _coin_info(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        params, refused = self._signed_params(sim, request)
        if refused is not None:
            return refused
        coins = sorted({coin for symbol in self._symbols(sim, None) for coin in _coins(symbol)})
        if params.get("coin"):
            coins = [c for c in coins if c == params["coin"]]
        return _ok({"rows": [{"name": c, "coin": c, "remainAmount": "0", "chains": []} for c in coins]})

    async def _wallet_balance(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """"Get Wallet Balance" of this prefix's account: the coins asked for (`coin=USDT,BTC`), else every coin
        whose wallet balance is not 0."""
        params, refused = self._signed_params(sim, request)
        if refused is not None:
            return refused
        if params.get("accountType") != "UNIFIED":
            return _error(10001, "params error: accountType only support UNIFIED")
        account = sim.account(self.exchange, market)
        asked = params.get("coin")
        if asked:
            assets = asked.split(",")
            for asset in assets:
                account.balance(asset)  # a coin asked for by name has its starting balance, as on first use
        else:
            assets = sorted(asset for asset, balance in account.balances.items() if balance.total)
        return _ok({"list": [_wallet_account(account, assets)]})

    async def _position_list(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """"Get Position Info": with `symbol` that symbol's position, open or not; else the open positions of
        `settleCoin` (linear needs one of them); sorted by symbol, `limit` [1, 200] (default 20), paged by a cursor
        (the page's last symbol)."""
        params, refused = self._signed_params(sim, request)
        if refused is not None:
            return refused
        category = params.get("category", "")
        if category not in ("linear", "inverse", "option"):
            return _error(10001, "params error: Category is invalid")
        try:
            limit = min(max(int(params.get("limit") or POSITION_DEFAULT_LIMIT), 1), POSITION_MAX_LIMIT)
        except ValueError:
            return _error(10001, "params error: limit is invalid")
        symbol, settle = params.get("symbol"), params.get("settleCoin")
        result: dict[str, Any] = {"list": [], "nextPageCursor": "", "category": category}
        if category != "linear":
            return _ok(result)  # inverse / option accounts are empty here
        if not symbol and not settle:
            return _error(10001, "params error: symbol or settleCoin must be passed")
        account = sim.account(self.exchange, Market.FUTURE)
        if symbol:
            found = [p for p in account.positions.values() if self.raw_symbol(Market.FUTURE, p.symbol) == symbol]
            unified = self._listed[Market.FUTURE].get(symbol)
            if not found and unified is not None:  # never traded: flat, as of now
                found = [SimPosition(unified, updated=now_ms())]
        else:
            found = [p for p in account.positions.values() if p.size and _settle(p.symbol) == settle]
        ledger = sim.ledger(self.exchange, Market.FUTURE)
        rows = sorted((self._position_row(ledger, p, "avgPrice") for p in found), key=lambda row: row["symbol"])
        cursor = params.get("cursor")
        if cursor:
            rows = [row for row in rows if row["symbol"] > cursor]
        result["list"] = rows[:limit]
        if len(rows) > limit:
            result["nextPageCursor"] = rows[limit - 1]["symbol"]
        return _ok(result)

    async def _account_info(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """"Get Account Info": a UTA 2.0 (unifiedMarginStatus 6) in isolated margin."""
        _, refused = self._signed_params(sim, request)
        if refused is not None:
            return refused
        return _ok({"marginMode": "ISOLATED_MARGIN", "updatedTime": "1697078946000", "unifiedMarginStatus": 6,
                    "dcpStatus": "OFF", "timeWindow": 0, "smpGroup": 0, "isMasterTrader": False,
                    "spotHedgingStatus": "OFF"})

    async def _api_key_info(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """"Get API Key Information" of the simulator's key: a master account's read-write key, UTA (`uta` 1)."""
        _, refused = self._signed_params(sim, request)
        if refused is not None:
            return refused
        return _ok({
            "id": "1", "note": "simulator", "apiKey": sim.credentials_for(self.exchange).api_key, "readOnly": 0,
            "secret": "", "permissions": {"ContractTrade": ["Order", "Position"], "Spot": ["SpotTrade"],
                                          "Wallet": ["AccountTransfer"], "Derivatives": ["DerivativesTrade"],
                                          "Exchange": ["ExchangeHistory"]},
            "ips": ["*"], "type": 1, "deadlineDay": -2, "expiredAt": "1970-01-01T00:00:00Z",
            "createdAt": "2025-01-01T00:00:00Z", "unified": 0, "uta": 1, "userID": int(_UID), "inviterID": 0,
            "vipLevel": "No VIP", "mktMakerLevel": "0", "affiliateID": 0, "rsaPublicKey": "", "isMaster": True,
            "parentUid": "0",
        })

    async def _server_time(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        now_ns = now_ms() * 1_000_000
        return _ok({"timeSecond": str(now_ns // 1_000_000_000), "timeNano": str(now_ns)})

    async def _instruments(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """One page of instruments: BTC/ETH and whatever the ledgers traded (enough for ccxt's load_markets)."""
        params = request.query
        category = params.get("category", "")
        if category not in _ALL_CATEGORIES:
            return _error(10001, "params error: Category is invalid")
        rows: list[dict] = []
        if category in _MARKETS and params.get("status", "Trading") == "Trading" and not params.get("cursor"):
            listed = _MARKETS[category]
            rows = [self._instrument(listed, s) for s in sorted(self._symbols(sim, listed))]
            rows = [r for r in rows if params.get("symbol", r["symbol"]) == r["symbol"]
                    and params.get("baseCoin", r["baseCoin"]) == r["baseCoin"]]
        return _ok({"category": category, "list": rows, "nextPageCursor": ""})

    def _symbols(self, sim: Simulator, market: Market | None) -> set[str]:
        markets = [market] if market else list(CATEGORIES)
        symbols: set[str] = set()
        for m in markets:
            quotes = ("USDT", "USDC")
            symbols.update(f"{b}/{q}" if m is Market.SPOT else f"{b}/{q}:{q}" for b in _DEFAULT_COINS for q in quotes)
            symbols.update(o.symbol for o in sim.ledger(self.exchange, m).orders.values())
        return symbols

    def _instrument(self, market: Market, symbol: str) -> dict:
        pair, _, contract = symbol.partition(":")
        base, quote = pair.split("/")
        row: dict[str, Any] = {"symbol": self.raw_symbol(market, symbol), "baseCoin": base, "quoteCoin": quote,
                               "status": "Trading"}
        if market is Market.SPOT:
            row.update(innovation="0", marginTrading="utaOnly", stTag="0",
                       lotSizeFilter={"basePrecision": "0.000001", "quotePrecision": "0.00000001",
                                      "minOrderQty": "0.000001", "maxOrderQty": "10000", "minOrderAmt": "1",
                                      "maxOrderAmt": "4000000"},
                       priceFilter={"tickSize": "0.01"})
            return row
        settle, _, expiry = contract.partition("-")
        row.update(contractType="LinearFutures" if expiry else "LinearPerpetual", settleCoin=settle,
                   launchTime="1585526400000", deliveryTime=_delivery_ms(expiry) if expiry else "0",
                   deliveryFeeRate="", priceScale="2",
                   leverageFilter={"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
                   priceFilter={"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
                   lotSizeFilter={"maxOrderQty": "1190.000", "minOrderQty": "0.001", "qtyStep": "0.001",
                                  "postOnlyMaxOrderQty": "1190.000", "maxMktOrderQty": "500.000",
                                  "minNotionalValue": "5"},
                   unifiedMarginTrade=True, fundingInterval=480, copyTrading="both")
        return row

    def _signed_params(self, sim: Simulator, request: web.Request) -> tuple[dict[str, str], web.Response | None]:
        """Check Bybit's v5 HMAC headers over the query string exactly as sent; the params, or the refusal."""
        creds = sim.credentials_for(self.exchange)
        headers = request.headers
        query = request.raw_path.partition("?")[2]
        params = dict(parse_qsl(query, keep_blank_values=True))
        api_key = headers.get("X-BAPI-API-KEY", "")
        timestamp = headers.get("X-BAPI-TIMESTAMP", "")
        recv_window = headers.get("X-BAPI-RECV-WINDOW", DEFAULT_RECV_WINDOW)
        if api_key != creds.api_key:
            return params, _error(10003, "API key is invalid.")
        now = now_ms()
        # The guide's rule: server_time - recv_window <= timestamp < server_time + 1000.
        if not (_digits(timestamp) and _digits(recv_window)
                and now - int(recv_window) <= int(timestamp) < now + 1000):
            return params, _error(10002, "invalid request, please check your server timestamp or recv_window "
                                         f"param. req_timestamp[{timestamp}],server_timestamp[{now}],"
                                         f"recv_window[{recv_window}]")
        payload = rest_payload(timestamp, api_key, headers.get("X-BAPI-RECV-WINDOW", ""), query)
        if not _same(headers.get("X-BAPI-SIGN", ""), sign(creds.secret, payload)):
            return params, _error(10004, f"error sign! origin_string[{payload}]")
        return params, None


def rest_payload(timestamp: str, api_key: str, recv_window: str, query: str) -> str:
    """What Bybit v5 signs for a GET: timestamp + api_key + recv_window + queryString (v5/guide, Authentication)."""
    return f"{timestamp}{api_key}{recv_window}{query}"


# helpers --------------------------------------------------------------------------------------------------------
class _Refusal(Exception):
    """An order request Bybit refuses before it reaches the matching engine: its retCode and retMsg."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _valid_until(timestamp: Any, recv_window: Any, now: int) -> int:
    """The request's last valid ms (timestamp + recv window), after the guide's rule at receipt:
    server_time − recv_window ≤ timestamp < server_time + 1000 (10002 otherwise)."""
    if not (_digits(timestamp) and _digits(recv_window)):
        raise _Refusal(10001, "params error: X-BAPI-TIMESTAMP and X-BAPI-RECV-WINDOW must be ms as text")
    ts, window = int(timestamp), int(recv_window)
    if not now - window <= ts < now + 1000:
        raise _Refusal(10002, "invalid request, please check your server timestamp or recv_window param. "
                              f"req_timestamp[{ts}],server_timestamp[{now}],recv_window[{window}]")
    return ts + window


def _positive(args: dict, key: str, optional: bool = False) -> Decimal | None:
    """A positive decimal sent as text (`optional`: absent, "" or "0" is None)."""
    value = args.get(key)
    if optional and value in (None, "", "0"):
        return None
    if not (isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value)) or Decimal(value) <= 0:
        raise _Refusal(10001, f"params error: {key} invalid")
    return Decimal(value)


def _link_id(value: Any) -> str | None:
    """orderLinkId: ≤ 36 of letters, digits, '-' and '_' ("" or absent: none)."""
    if value in (None, ""):
        return None
    if not (isinstance(value, str) and _LINK_ID.fullmatch(value)):
        raise _Refusal(10001, "params error: orderLinkId invalid")
    return value


def _order_id(value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise _Refusal(10001, "params error: orderId invalid")
    return value


class _UpdateIds:
    """One public book's update id: `u` rises by one per change; `snapshot_due` after a change left out."""

    __slots__ = ("seq", "u", "step", "snapshot_due", "snapshot_now")

    def __init__(self, seq: int) -> None:
        self.seq = seq  # the simulator's book sequence `u` last counted
        self.u = seq  # starts at the book's sequence (any number will do), then +1 per change
        self.step: MarketStep | None = None  # the step already counted
        self.snapshot_due = False  # the next change goes out as a snapshot
        self.snapshot_now = False  # this step's change goes out as a snapshot


def public_trade_id(market: Market, trade_id: int) -> str:
    """A public trade's `i`: spot writes a number, linear a UUID (here one made from the number)."""
    return str(trade_id) if market is Market.SPOT else str(uuid.UUID(int=trade_id))


def _topic_parts(topic: str) -> tuple[str, str, str]:
    """`orderbook.50.BTCUSDT` → ("orderbook", "50", "BTCUSDT"); `tickers.BTCUSDT` → ("tickers", "", "BTCUSDT")."""
    parts = topic.split(".")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return parts[0], "", parts[1]
    return topic, "", ""


def _levels(levels: Any) -> list[list[str]]:
    return [[decimal_text(price), decimal_text(amount)] for price, amount in levels]


def _book_frame(topic: str, kind: str, raw: str, bids: Any, asks: Any, u: int, seq: int, ts: int) -> dict:
    return {"topic": topic, "type": kind, "ts": ts,
            "data": {"s": raw, "b": _levels(bids), "a": _levels(asks), "u": u, "seq": seq}, "cts": ts}


def _ticker_frame(market: Market, topic: str, kind: str, fields: dict, seq: int, ts: int) -> dict:
    """Spot writes `ts` before `data`, linear after it (as the docs' examples do)."""
    if market is Market.SPOT:
        return {"topic": topic, "ts": ts, "type": kind, "cs": seq, "data": fields}
    return {"topic": topic, "type": kind, "data": fields, "cs": seq, "ts": ts}


def _kline_row(symbol_market: SymbolMarket, interval: str, now: int) -> dict:
    """The current bar at the market's own time (asking at another time would start another bar)."""
    timeframe = KLINE_INTERVALS[interval]
    bar = symbol_market.candle(timeframe)
    return {"start": bar.start, "end": bar.start + TIMEFRAMES_MS[timeframe] - 1, "interval": interval,
            "open": decimal_text(bar.open), "close": decimal_text(bar.close), "high": decimal_text(bar.high),
            "low": decimal_text(bar.low), "volume": decimal_text(bar.volume),
            "turnover": decimal_text(bar.quote_volume), "confirm": False, "timestamp": now}


def _kline_frame(topic: str, row: dict, ts: int) -> dict:
    return {"topic": topic, "data": [row], "ts": ts, "type": "snapshot"}


def _bar_changed(last: dict, row: dict) -> bool:
    return any(last[k] != row[k] for k in ("start", "open", "close", "high", "low", "volume"))


def _tick_direction(prices: list[Decimal]) -> str:
    """Bybit's tickDirection of the last price: Plus/Minus when it differs from the one before, ZeroPlus /
    ZeroMinus when it repeats it (the sign of the last move that happened)."""
    last = prices[-1]
    for n, earlier in enumerate(reversed(prices[:-1])):
        if earlier != last:
            if last > earlier:
                return "ZeroPlusTick" if n else "PlusTick"
            return "ZeroMinusTick" if n else "MinusTick"
    return "ZeroPlusTick"


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison that also takes non-ASCII input (a refusal, not a crash)."""
    return secrets.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def _digits(value: Any) -> bool:
    """An unsigned ASCII integer (str.isdigit alone also takes "²")."""
    return isinstance(value, str) and value.isascii() and value.isdigit()


def _fee(market: Market, fill: SimFill) -> tuple[Decimal, str, Decimal]:
    """(fee, coin, rate) as Bybit charges it: a spot buy pays in the base coin it receives, else the ledger's quote."""
    rate = (fill.fee / fill.cost).quantize(_PLACES).normalize() if fill.cost else Decimal(0)
    if market is Market.SPOT and fill.side is Side.BUY:
        return fill.amount * rate, fill.symbol.split("/")[0], rate
    return fill.fee, fill.fee_currency, rate


class _FeeTally:
    """Fees per order and coin over a ledger's fills, extended with each new fill (fills older than their
    order's creation are not its own, as a newest-first scan that stops there would see it)."""

    def __init__(self) -> None:
        self.counted = 0  # ledger fills already added
        self.last: SimFill | None = None  # the last of them: another object there means the ledger was rewritten
        self.per_order: dict[str, dict[str, Decimal]] = {}

    def fees(self, market: Market, ledger: Ledger, order: SimOrder) -> dict[str, Decimal]:
        fills = ledger.fills
        if self.counted > len(fills) or (self.counted and fills[self.counted - 1] is not self.last):
            self.counted, self.last = 0, None
            self.per_order.clear()
        for fill in fills[self.counted:]:
            owner = ledger.orders.get(fill.order_id)
            if owner is None or fill.time >= owner.created:
                cost, coin, _ = _fee(market, fill)
                detail = self.per_order.setdefault(fill.order_id, {})
                detail[coin] = detail.get(coin, Decimal(0)) + cost
        self.counted = len(fills)
        self.last = fills[-1] if fills else None
        return self.per_order.get(order.order_id, {})


def _leaves_after(ledger: Ledger) -> dict[str, Decimal]:
    """Each fill's `leavesQty`: what its order still had open right after it."""
    filled: dict[str, Decimal] = {}
    leaves: dict[str, Decimal] = {}
    for fill in ledger.fills:
        filled[fill.order_id] = filled.get(fill.order_id, Decimal(0)) + fill.amount
        leaves[fill.trade_id] = ledger.orders[fill.order_id].amount - filled[fill.order_id]
    return leaves


def _average(order: SimOrder) -> str:
    if not order.filled:
        return ""  # "If unfilled, it is \"\""
    return decimal_text(order.average.quantize(_PLACES).normalize())


def _seq(fill: SimFill) -> int:
    """Bybit's cross sequence: the ledger's ids grow with time, so the trade id serves."""
    return int(fill.trade_id)


def _newest_first(fill: SimFill) -> tuple[int, int]:
    return (-fill.time, -int(fill.trade_id))


def _cursor_key(cursor: str) -> tuple[int, int] | None:
    time, _, trade_id = cursor.partition("-")
    if not (_digits(time) and _digits(trade_id)):
        return None
    return (-int(time), -int(trade_id))


def _time_window(start: str | None, end: str | None, now: int) -> tuple[int, int] | str:
    """The docs' startTime/endTime rules: 7 days back by default, 7 days from one bound, at most 7 days."""
    if (start and not _digits(start)) or (end and not _digits(end)):
        return "params error: startTime and endTime must be timestamps in ms"
    if start and end:
        if int(end) - int(start) > SEVEN_DAYS_MS:
            return "params error: The time range between startTime and endTime cannot exceed 7 days"
        return int(start), int(end)
    if start:
        return int(start), int(start) + SEVEN_DAYS_MS
    if end:
        return int(end) - SEVEN_DAYS_MS, int(end)
    return now - SEVEN_DAYS_MS, now


def _coins(symbol: str) -> list[str]:
    pair, _, contract = symbol.partition(":")
    return [*pair.split("/"), *([contract.partition("-")[0]] if contract else [])]


def _delivery_ms(expiry: str) -> str:
    """`250221` → that day's 08:00 UTC in ms (Bybit delivers dated futures at 08:00 UTC)."""
    day = datetime(2000 + int(expiry[:2]), int(expiry[2:4]), int(expiry[4:6]), 8, tzinfo=UTC)
    return str(int(day.timestamp() * 1000))


def _frame_id() -> str:
    """A private push's `id`: the account's UID, then a UUID (as in the docs' wallet and position examples)."""
    return f"{_UID}{uuid.uuid4()}"


def _settle(symbol: str) -> str:
    return symbol.partition(":")[2].partition("-")[0]


def _coin_row(account: SimAccount, asset: str) -> dict:
    """One coin of a `wallet` push or of /v5/account/wallet-balance."""
    balance = account.balance(asset)
    positions = [p for p in account.positions.values() if _settle(p.symbol) == asset]
    unrealized = sum((p.unrealized_pnl for p in positions), Decimal(0))
    spot = account.market is Market.SPOT
    equity = decimal_text(balance.total + unrealized)
    collateral = asset in _USD_COINS
    return {
        "coin": asset, "equity": equity, "usdValue": equity if collateral else "0",
        "walletBalance": decimal_text(balance.total), "availableToWithdraw": "", "availableToBorrow": "",
        "borrowAmount": "0", "accruedInterest": "0", "totalOrderIM": "0",
        "totalPositionIM": "0" if spot else decimal_text(balance.locked), "totalPositionMM": "0",
        "unrealisedPnl": decimal_text(unrealized),
        "cumRealisedPnl": decimal_text(sum((p.realized_pnl for p in positions), Decimal(0))), "bonus": "0",
        "collateralSwitch": collateral, "marginCollateral": collateral, "colRes": "0",
        "locked": decimal_text(balance.locked) if spot else "0", "spotHedgingQty": "0", "spotBorrow": "0",
    }


def _wallet_account(account: SimAccount, assets: list[str]) -> dict:
    """The unified account's entry: USD totals over every coin it holds (USDT / USDC at 1), the `assets`' rows."""
    rows = {asset: _coin_row(account, asset) for asset in sorted({*account.balances, *assets})}
    usd = [row for asset, row in rows.items() if asset in _USD_COINS]
    wallet = sum((Decimal(row["walletBalance"]) for row in usd), Decimal(0))
    unrealized = sum((Decimal(row["unrealisedPnl"]) for row in usd), Decimal(0))
    initial = sum((Decimal(row["totalPositionIM"]) for row in usd), Decimal(0))
    margin = wallet + unrealized
    im_rate = decimal_text((initial / margin).quantize(_RATE_PLACES) if margin > 0 else Decimal(0))
    return {
        "accountIMRate": im_rate, "accountIMRateByMp": im_rate, "accountMMRate": "0", "accountMMRateByMp": "0",
        "totalEquity": decimal_text(margin), "totalWalletBalance": decimal_text(wallet),
        "totalMarginBalance": decimal_text(margin), "totalAvailableBalance": decimal_text(margin - initial),
        "totalPerpUPL": decimal_text(unrealized), "totalInitialMargin": decimal_text(initial),
        "totalInitialMarginByMp": decimal_text(initial), "totalMaintenanceMargin": "0",
        "totalMaintenanceMarginByMp": "0", "coin": [rows[asset] for asset in assets], "accountLTV": "0",
        "accountType": "UNIFIED",
    }


def _ok(result: dict) -> web.Response:
    return web.json_response({"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": now_ms()})


def _error(code: int, message: str) -> web.Response:
    """A refusal: HTTP 200 with Bybit's `retCode` / `retMsg` (codes from v5/error)."""
    return web.json_response({"retCode": code, "retMsg": message, "result": {}, "retExtInfo": {}, "time": now_ms()})


VENUE_CLASS = BybitSim
