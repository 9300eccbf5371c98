"""The OpenAPI 3.1 description of the dashboard's HTTP API and its live socket (hand-written, served at
/api/openapi.json)."""

from __future__ import annotations

import copy
from typing import Any

_DEC = {"type": ["string", "null"], "description": "a decimal number as exact text"}
_DEC_REQ = {"type": "string", "description": "a decimal number as exact text"}
_MS = {"type": "integer", "description": "milliseconds since the epoch"}
_STR_OR_NULL = {"type": ["string", "null"]}


def _obj(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or list(properties), **extra}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _list_of(name: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(name)}


def _ok(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR = {"$ref": "#/components/responses/Error"}
_UNAUTHORIZED = {"$ref": "#/components/responses/Unauthorized"}

SCHEMAS: dict[str, Any] = {
    "Balance": _obj({"key": {"type": "string", "examples": ["binance_spot"]}, "asset": {"type": "string"},
                     "free": _DEC, "locked": _DEC, "total": _DEC, "timestamp": _MS}),
    "Position": _obj({"key": {"type": "string"}, "symbol": {"type": "string"},
                      "position_side": {"enum": ["net", "long", "short"]},
                      "direction": {"enum": ["long", "short", "flat"]}, "size": _DEC_REQ,
                      "entry_price": _DEC, "mark_price": _DEC, "unrealized_pnl": _DEC, "realized_pnl": _DEC,
                      "leverage": _DEC, "timestamp": _MS}),
    "Order": _obj({"key": {"type": "string"}, "strategy_id": _STR_OR_NULL, "client_order_id": _STR_OR_NULL,
                   "order_id": _STR_OR_NULL, "symbol": {"type": "string"}, "side": {"enum": ["buy", "sell"]},
                   "order_type": {"type": "string"}, "amount": _DEC_REQ, "price": _DEC, "filled": _DEC_REQ,
                   "state": {"type": "string", "description": "order entry's state (pending, sent, acked, open, "
                             "partially_filled, filled, canceled, rejected, expired, unknown), or the venue's "
                             "status (new, …) for an order not placed by this process"},
                   "path": {"enum": ["websocket", "rest", None]},
                   "ack_latency_ms": {"type": ["number", "null"]}, "reason": {"type": "string"},
                   "updated": _MS}),
    "Fill": _obj({"key": {"type": "string"}, "trade_id": {"type": "string"}, "order_id": {"type": "string"},
                  "client_order_id": _STR_OR_NULL, "symbol": {"type": "string"},
                  "side": {"enum": ["buy", "sell"]}, "amount": _DEC_REQ, "price": _DEC_REQ, "fee_cost": _DEC,
                  "fee_currency": _STR_OR_NULL, "timestamp": _MS,
                  "store_seq": {"type": ["integer", "null"], "description": "the store's sequence number"},
                  "strategy_id": _STR_OR_NULL}),
    "Connection": _obj({"key": {"type": "string"}, "status": _STR_OR_NULL, "error": _STR_OR_NULL,
                        "reconnects": {"type": "integer"}, "last_message": {"type": ["integer", "null"]}}),
    "Health": _obj({"healthy": {"type": "boolean"}, "alerts": {"type": "integer"},
                    "fills_stored": {"type": "integer"}, "dead_letters": {"type": "integer"},
                    "lanes": {"type": "object", "additionalProperties": _obj(
                        {"queued": {"type": "integer"}, "dropped": {"type": "integer"}})}}),
    "Alert": _obj({"name": {"type": "string"}, "severity": {"type": "string"}, "scope": {"type": "string"},
                   "message": {"type": "string"}, "timestamp": _MS}),
    "ChartPoint": _obj({"timestamp": _MS, "realized": _DEC_REQ, "unrealized": _DEC_REQ,
                        "fills": {"type": "integer"}},
                       description="one second of fills (timestamp: the second's start); a point with the "
                                   "timestamp of the last one replaces it"),
    "Status": _obj({"connections": {"type": "object", "additionalProperties": _ref("Connection")},
                    "health": _ref("Health"), "alerts": _list_of("Alert"),
                    "seq": {"type": "integer", "description": "the live journal's latest seq"},
                    "pages": {"type": "integer", "description": "pages connected now"}}),
    "Snapshot": _obj({"balances": _list_of("Balance"), "positions": _list_of("Position"),
                      "orders": _list_of("Order"), "fills": _list_of("Fill"),
                      "connections": {"type": "object", "additionalProperties": _ref("Connection")},
                      "health": _ref("Health"), "alerts": _list_of("Alert"), "chart": _list_of("ChartPoint"),
                      "reason": {"enum": ["connect", "resume_too_old", "behind"]}}),
    "LiveMessage": _obj({"type": {"type": "string", "examples": [
                             "snapshot", "balance", "positions", "orders", "fill", "connection", "health", "alert",
                             "pnl", "pong", "trading_decision"]},
                         "seq": {"type": "integer"}, "data": {}, "timestamp": _MS},
                        description="what /ws/live-dashboard sends; data by type: snapshot → Snapshot, balance → "
                                    "Balance, positions → Position, orders → Order, fill → Fill, connection → "
                                    "Connection, health → Health, alert → Alert, pnl → ChartPoint; a publisher's "
                                    "message carries its id in data.source"),
    "ManualTradeRequest": _obj({"key": {"type": "string", "examples": ["binance_spot"]},
                                "symbol": {"type": "string", "examples": ["BTC/USDT"]},
                                "side": {"enum": ["long", "short"]}, "order_type": {"enum": ["market", "limit"]},
                                "amount": _DEC_REQ, "price": _DEC, "take_profit": _DEC, "stop_loss": _DEC},
                               required=["key", "symbol", "side", "order_type", "amount"]),
    "ManualTradePrepared": _obj({"confirmation_id": {"type": "string"}, "summary": {"type": "string"},
                                 "expires_in": {"type": "integer", "description": "seconds"}}),
    "ManualTradeConfirm": _obj({"confirmation_id": {"type": "string"}}),
    "ManualTradeResult": _obj({"order": _ref("Order"), "path": {"enum": ["websocket", "rest", None]},
                               "latency_ms": {"type": "number", "description": "request sent → venue's ack"}}),
    "Error": _obj({"error": {"type": "string", "description": "one line: what is wrong and what to do"}}),
}


def _get(summary: str, schema: dict[str, Any], parameters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    operation = {"summary": summary, "responses": {"200": _ok(schema, summary), "401": _UNAUTHORIZED}}
    if parameters:
        operation["parameters"] = parameters
        operation["responses"]["400"] = _ERROR
    return {"get": operation}


def _post(summary: str, body: str, result: str) -> dict[str, Any]:
    return {"post": {"summary": summary,
                     "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(body)}}},
                     "responses": {"200": _ok(_ref(result), summary), "400": _ERROR, "401": _UNAUTHORIZED}}}


PATHS: dict[str, Any] = {
    "/api/balances": _get("latest balance per key and asset", _list_of("Balance")),
    "/api/positions": _get("latest position per key, symbol and position side", _list_of("Position")),
    "/api/orders": _get("open orders (every known one with all=1)", _list_of("Order"), [
        {"name": "all", "in": "query", "required": False, "schema": {"enum": ["0", "1"]}}]),
    "/api/fills": _get("stored fills after a store seq, oldest first, at most 1000", _list_of("Fill"), [
        {"name": "since", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}}]),
    "/api/status": _get("connections, health, alerts, the journal's latest seq, pages connected", _ref("Status")),
    "/api/openapi.json": _get("this description", {"type": "object"}),
    "/api/manual-trade/prepare": _post("check a manual order and hold it for confirmation (60 s)",
                                       "ManualTradeRequest", "ManualTradePrepared"),
    "/api/manual-trade-ws": _post("place a prepared order through the order gateway (WebSocket first, REST "
                                  "fallback) and answer once the venue took it", "ManualTradeConfirm",
                                  "ManualTradeResult"),
    "/ws/live-dashboard": {"get": {
        "summary": "the live socket (WebSocket upgrade): a snapshot, then every change as a LiveMessage with an "
                   "increasing seq; send {\"type\": \"ping\"} for a pong",
        "parameters": [
            {"name": "token", "in": "query", "required": True, "schema": {"type": "string"}},
            {"name": "since", "in": "query", "required": False, "schema": {"type": "integer"},
             "description": "resume: every message after this seq, or a snapshot (reason resume_too_old) when it "
                            "is older than the journal keeps (10,000 messages)"}],
        "responses": {"101": {"description": "switching to the WebSocket protocol; messages: LiveMessage",
                              "content": {"application/json": {"schema": _ref("LiveMessage")}}},
                      "401": _UNAUTHORIZED}}},
    "/ws": {"get": {
        "summary": "the publisher socket for other processes' bots: hello → welcome {last_seq}, then messages "
                   "{type, data, seq, timestamp}, each answered {type: ack, seq}",
        "parameters": [{"name": "token", "in": "query", "required": True, "schema": {"type": "string"}}],
        "responses": {"101": {"description": "switching to the WebSocket protocol"}, "401": _UNAUTHORIZED}}},
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "tradesync dashboard", "version": "1",
             "description": "The live dashboard's HTTP API: the state the page shows, for polling while its "
                            "socket is down, and manual orders. Every request needs the token (Authorization: "
                            "Bearer, or ?token=) but the page itself (/) and /static/*."},
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "responses": {
            "Error": {"description": "bad input", "content": {"application/json": {"schema": _ref("Error")}}},
            "Unauthorized": {"description": "no token or a wrong one",
                             "content": {"application/json": {"schema": _ref("Error")}}},
        },
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                            "query": {"type": "apiKey", "in": "query", "name": "token"}},
    },
    "security": [{"bearer": []}, {"query": []}],
}


def document(server_url: str | None = None) -> dict[str, Any]:
    """The description, with this server's address when given."""
    doc = copy.deepcopy(OPENAPI)
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
