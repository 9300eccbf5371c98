"""Binance on the simulator: spot WebSocket-API user data subscription, USD-M listenKey stream, REST history.

Spot: the client sends `userDataStream.subscribe.signature` (HMAC over its sorted params); a good
signature gets `{"status": 200, "result": {"subscriptionId": 0}}` and then `executionReport` events
wrapped in `{"subscriptionId", "event"}`; a bad one gets `-1022` and no data. USD-M: `POST
/fapi/v1/listenKey` with the API-key header gives a key, `/ws/<listenKey>` streams
`ORDER_TRADE_UPDATE`; `PUT` keeps it, an unknown key gets `-1125`. History: signed `GET
/api/v3/myTrades` and `/fapi/v1/userTrades` (symbol, startTime, endTime, fromId, limit ≤ 1000); neither row
carries the client order id, which the order query gives: signed `GET /api/v3/order` and `/fapi/v1/order`
(symbol, orderId or origClientOrderId; "Query Order" in the spot REST and USD-M docs) → the order with its
`clientOrderId`, or `-2013 Order does not exist.`. REST signatures are checked here (hex HMAC-SHA256 of the
query before `&signature=`, X-MBX-APIKEY header, `timestamp` within the recvWindow), not with the client's code.
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import web

from exchanges.binance.auth import API_KEY_HEADER, sign, ws_api_payload
from exchanges.simulator.ledger import SimFill, SimOrder
from exchanges.simulator.venues.base import SimSession, VenueSim, decimal_text, hmac_sha256
from framework.events import Market, OrderStatus, now_ms

if TYPE_CHECKING:
    from exchanges.simulator.server import Simulator

RECV_WINDOW_MS = 60_000
_STATUS = {
    OrderStatus.NEW: "NEW", OrderStatus.PARTIALLY_FILLED: "PARTIALLY_FILLED", OrderStatus.FILLED: "FILLED",
    OrderStatus.CANCELED: "CANCELED", OrderStatus.REJECTED: "REJECTED", OrderStatus.EXPIRED: "EXPIRED",
}


def _error(status: int, code: int, msg: str) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status)


class BinanceSim(VenueSim):
    exchange = "binance"
    markets = frozenset({Market.SPOT, Market.FUTURE})

    def __init__(self) -> None:
        self.listen_keys: dict[str, int] = {}  # listenKey -> expiry (ms)

    # sockets -----------------------------------------------------------------------------------------------
    def ws_paths(self, market: Market) -> list[str]:
        return [""] if market is Market.SPOT else ["/ws/{listen_key}"]

    async def on_open(self, session: SimSession) -> bool:
        if session.market is Market.SPOT:
            return True
        listen_key = session.request.match_info["listen_key"]
        if self.listen_keys.get(listen_key, 0) < now_ms():
            await session.send({"code": -1125, "msg": "This listenKey does not exist."})
            return False
        session.authenticated = True
        session.subscriptions.add("user")
        session.state["listen_key"] = listen_key
        return True

    async def on_message(self, session: SimSession, message: Any) -> None:
        if session.market is not Market.SPOT or type(message) is not dict:
            return
        request_id, method = message.get("id"), message.get("method")
        if method == "ping":
            await session.send({"id": request_id, "status": 200, "result": {}})
            return
        if method != "userDataStream.subscribe.signature":
            await session.send({"id": request_id, "status": 400, "error": {"code": -1100, "msg": "Unknown method."}})
            return
        params = message.get("params") or {}
        creds = session.credentials
        timestamp = params.get("timestamp")
        if isinstance(params.get("signature"), str):
            self.secrets_seen.add(params["signature"])
        if params.get("apiKey") != creds.api_key:
            await session.send({"id": request_id, "status": 401,
                                "error": {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}})
        elif params.get("signature") != sign(creds.secret, ws_api_payload(params)):
            await session.send({"id": request_id, "status": 400,
                                "error": {"code": -1022, "msg": "Signature for this request is not valid."}})
        elif type(timestamp) is not int or abs(now_ms() - timestamp) > RECV_WINDOW_MS:
            await session.send({"id": request_id, "status": 400, "error": {
                "code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}})
        else:
            session.authenticated = True
            session.subscriptions.add("user")
            await session.send({"id": request_id, "status": 200, "result": {"subscriptionId": 0}})

    # frames ------------------------------------------------------------------------------------------------------
    def order_frames(self, session: SimSession, order: SimOrder) -> list[Any]:
        return self._frames(session, order, None)

    def fill_frames(self, session: SimSession, order: SimOrder, fill: SimFill) -> list[Any]:
        return self._frames(session, order, fill)

    def _frames(self, session: SimSession, order: SimOrder, fill: SimFill | None) -> list[Any]:
        if "user" not in session.subscriptions:
            return []
        if session.market is Market.SPOT:
            return [{"subscriptionId": 0, "event": self._execution_report(order, fill)}]
        return [self._order_trade_update(order, fill)]

    def _execution_report(self, order: SimOrder, fill: SimFill | None) -> dict:
        now = fill.time if fill else order.updated
        return {
            "e": "executionReport", "E": now + 1, "s": self.raw_symbol(Market.SPOT, order.symbol),
            "c": order.client_order_id or f"sim{order.order_id}", "S": order.side.value.upper(),
            "o": order.order_type.upper(), "f": "GTC", "q": decimal_text(order.amount, 8),
            "p": decimal_text(order.price, 8), "P": "0.00000000", "F": "0.00000000", "g": -1, "C": "",
            "x": "TRADE" if fill else "NEW", "X": _STATUS[order.status], "r": "NONE",
            "i": int(order.order_id), "l": decimal_text(fill.amount if fill else 0, 8),
            "z": decimal_text(order.filled, 8), "L": decimal_text(fill.price if fill else 0, 8),
            "n": decimal_text(fill.fee, 8) if fill else "0", "N": fill.fee_currency if fill else None,
            "T": now, "t": int(fill.trade_id) if fill else -1, "I": int(order.order_id) * 2, "w": fill is None,
            "m": fill.is_maker if fill else False, "M": fill is not None, "O": order.created,
            "Z": decimal_text(order.filled_cost, 8), "Y": decimal_text(fill.cost if fill else 0, 8),
            "Q": "0.00000000", "W": order.created, "V": "EXPIRE_MAKER",
        }

    def _order_trade_update(self, order: SimOrder, fill: SimFill | None) -> dict:
        now = fill.time if fill else order.updated
        body = {
            "s": self.raw_symbol(Market.FUTURE, order.symbol), "c": order.client_order_id or f"sim{order.order_id}",
            "S": order.side.value.upper(), "o": order.order_type.upper(), "f": "GTC",
            "q": decimal_text(order.amount), "p": decimal_text(order.price), "ap": decimal_text(order.average),
            "sp": "0", "x": "TRADE" if fill else "NEW", "X": _STATUS[order.status], "i": int(order.order_id),
            "l": decimal_text(fill.amount if fill else 0), "z": decimal_text(order.filled),
            "L": decimal_text(fill.price if fill else 0), "T": now, "t": int(fill.trade_id) if fill else 0,
            "b": "0", "a": "0", "m": fill.is_maker if fill else False, "R": False, "wt": "CONTRACT_PRICE",
            "ot": order.order_type.upper(), "ps": "BOTH", "cp": False, "rp": "0", "pP": False, "si": 0, "ss": 0,
            "V": "NONE", "pm": "NONE", "gtd": 0,
        }
        if fill:
            body["N"], body["n"] = fill.fee_currency, decimal_text(fill.fee)
        return {"e": "ORDER_TRADE_UPDATE", "E": now + 1, "T": now, "o": body}

    # REST ------------------------------------------------------------------------------------------------------------
    def rest_routes(self, market: Market) -> list:
        if market is Market.SPOT:
            return [("GET", "/api/v3/myTrades", self._my_trades), ("GET", "/api/v3/order", self._order)]
        return [
            ("POST", "/fapi/v1/listenKey", self._listen_key),
            ("PUT", "/fapi/v1/listenKey", self._listen_key),
            ("DELETE", "/fapi/v1/listenKey", self._listen_key),
            ("GET", "/fapi/v1/userTrades", self._my_trades),
            ("GET", "/fapi/v1/order", self._order),
        ]

    def _signed_params(self, sim: Simulator, request: web.Request) -> tuple[web.Response | None, dict[str, str]]:
        """(None, params) for a well-signed SIGNED request, else (Binance's error answer, {})."""
        creds = sim.credentials_for(self.exchange)
        if request.headers.get(API_KEY_HEADER) != creds.api_key:
            return _error(401, -2015, "Invalid API-key, IP, or permissions for action."), {}
        payload, _, signature = request.query_string.rpartition("&signature=")
        if signature:
            self.secrets_seen.add(signature)
        if not signature or not hmac.compare_digest(hmac_sha256(creds.secret, payload).hex(), signature):
            return _error(400, -1022, "Signature for this request is not valid."), {}
        params = dict(parse_qsl(payload))
        try:
            timestamp, window = int(params["timestamp"]), int(params.get("recvWindow") or RECV_WINDOW_MS)
        except (KeyError, ValueError):
            return _error(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."), {}
        if not (timestamp < now_ms() + 1000 and now_ms() - timestamp <= window):
            return _error(400, -1021, "Timestamp for this request is outside of the recvWindow."), {}
        return None, params

    async def _order(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        """Query Order: by orderId (or origClientOrderId) within the symbol; -2013 when the venue has no such order."""
        refusal, params = self._signed_params(sim, request)
        if refusal is not None:
            return refusal
        symbol_raw = params.get("symbol")
        if not symbol_raw:
            return _error(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        order_id, client_id = params.get("orderId"), params.get("origClientOrderId")
        if not order_id and not client_id:
            return _error(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        found = [o for o in self.queryable_orders(sim.ledger(self.exchange, market))
                 if self.raw_symbol(market, o.symbol) == symbol_raw and (not order_id or o.order_id == order_id)
                 and (not client_id or self._client_order_id(o) == client_id)]
        if not found:
            return _error(400, -2013, "Order does not exist.")
        return web.json_response(self._order_row(market, found[-1]))

    @staticmethod
    def _client_order_id(order: SimOrder) -> str:
        """The client's id, or the one Binance gives an order placed without one (as the stream says it)."""
        return order.client_order_id or f"sim{order.order_id}"

    def _order_row(self, market: Market, order: SimOrder) -> dict:
        common = {
            "symbol": self.raw_symbol(market, order.symbol), "orderId": int(order.order_id),
            "clientOrderId": self._client_order_id(order), "price": decimal_text(order.price),
            "origQty": decimal_text(order.amount), "executedQty": decimal_text(order.filled),
            "status": _STATUS[order.status], "timeInForce": "GTC", "type": order.order_type.upper(),
            "side": order.side.value.upper(), "stopPrice": "0", "time": order.created, "updateTime": order.updated,
            "selfTradePreventionMode": "NONE",
        }
        if market is Market.SPOT:
            return {**common, "orderListId": -1, "cummulativeQuoteQty": decimal_text(order.filled_cost),
                    "icebergQty": "0", "isWorking": True, "workingTime": order.created, "origQuoteOrderQty": "0"}
        return {**common, "avgPrice": decimal_text(order.average), "cumQuote": decimal_text(order.filled_cost),
                "origType": order.order_type.upper(), "reduceOnly": False, "positionSide": "BOTH",
                "closePosition": False, "workingType": "CONTRACT_PRICE", "priceProtect": False, "priceMatch": "NONE",
                "goodTillDate": 0}

    async def _listen_key(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        if request.headers.get(API_KEY_HEADER) != sim.credentials_for(self.exchange).api_key:
            return _error(401, -2015, "Invalid API-key, IP, or permissions for action.")
        if request.method == "POST":
            live = [k for k, expiry in self.listen_keys.items() if expiry > now_ms()]
            key = live[0] if live else secrets.token_urlsafe(48)
            self.listen_keys[key] = now_ms() + 3_600_000
            self.secrets_seen.add(key)
            return web.json_response({"listenKey": key})
        live = [k for k, expiry in self.listen_keys.items() if expiry > now_ms()]
        if not live:
            return _error(400, -1125, "This listenKey does not exist.")
        if request.method == "PUT":
            self.listen_keys[live[0]] = now_ms() + 3_600_000
        else:
            del self.listen_keys[live[0]]
        return web.json_response({})

    def expire_listen_keys(self) -> None:
        """Fault: every listenKey dies now (the next PUT gets -1125, new sockets are refused)."""
        self.listen_keys.clear()

    def listen_key_expired_frames(self, session: SimSession) -> list[Any]:
        return [{"e": "listenKeyExpired", "E": now_ms(), "listenKey": session.state["listen_key"]}]

    async def _my_trades(self, sim: Simulator, market: Market, request: web.Request) -> web.Response:
        refusal, params = self._signed_params(sim, request)
        if refusal is not None:
            return refusal
        symbol_raw = params.get("symbol")
        if not symbol_raw:
            return _error(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        limit = min(int(params.get("limit", 500)), 1000)
        ledger = sim.ledger(self.exchange, market)
        start, end = params.get("startTime"), params.get("endTime")
        fills = [
            f for f in ledger.fills_between(None, int(start) if start else None, int(end) if end else None)
            if self.raw_symbol(market, f.symbol) == symbol_raw
            and ("fromId" not in params or int(f.trade_id) >= int(params["fromId"]))
        ][:limit]
        return web.json_response([self._history_row(market, f) for f in fills])

    def _history_row(self, market: Market, fill: SimFill) -> dict:
        row = {
            "symbol": self.raw_symbol(market, fill.symbol), "id": int(fill.trade_id), "orderId": int(fill.order_id),
            "price": decimal_text(fill.price), "qty": decimal_text(fill.amount),
            "quoteQty": decimal_text(fill.cost), "commission": decimal_text(fill.fee),
            "commissionAsset": fill.fee_currency, "time": fill.time,
        }
        if market is Market.SPOT:
            row.update(orderListId=-1, isBuyer=fill.side.value == "buy", isMaker=fill.is_maker, isBestMatch=True)
        else:
            row.update(buyer=fill.side.value == "buy", maker=fill.is_maker, realizedPnl="0",
                       side=fill.side.value.upper(), positionSide="BOTH", marginAsset=fill.fee_currency)
        return row


VENUE_CLASS = BinanceSim
