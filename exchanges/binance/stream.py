"""Binance private-stream rules: live URLs, the spot WebSocket-API subscription, the USD-M listenKey and keepalive.

Spot (listenKeys removed 2026-02-20): one WebSocket-API request `userDataStream.subscribe.signature` on
`wss://ws-api.binance.com:443/ws-api/v3`, answered `{"id", "status": 200, "result": {"subscriptionId"}}`.
USD-M: `POST /fapi/v1/listenKey` (API key header, no signature), then `<ws base>/ws/<listenKey>` with nothing
to send; `PUT` every 30 min (the key lives 60 min). The live base is `wss://fstream.binance.com/private`: the
legacy `wss://fstream.binance.com/ws/<listenKey>` was retired on 2026-04-23 ("Important WebSocket Change Notice").
Keepalive: the venue pings (spot every 20 s, USD-M every 3 min) and the socket library answers; we send
WebSocket ping frames of our own every 20 s, never the WS-API `{"method": "ping"}` request, whose reply
would look like a subscription ACK. `silence_limit` counts every frame, our pongs included.

The account events (spot `outboundAccountPosition` / `balanceUpdate`, USD-M `ACCOUNT_UPDATE`) come on the same
stream unasked, so the handshake and the acks stay those of the order events; `classify` passes them on.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import aiohttp

from exchanges.binance.account import ACCOUNT_CHANNELS
from exchanges.binance.auth import api_key_headers, signed_params
from exchanges.binance.normalize import EXCHANGE, ORDER_EVENTS, event_name
from framework.venue import Endpoints, MessageKind
from framework.errors import AuthError, ConnectionLost, RateLimited, SubscriptionError
from framework.events import Market

if TYPE_CHECKING:
    from exchanges.connector import Credentials

LIVE_ENDPOINTS = {
    Market.SPOT: Endpoints(ws="wss://ws-api.binance.com:443/ws-api/v3", rest="https://api.binance.com"),
    Market.FUTURE: Endpoints(ws="wss://fstream.binance.com/private", rest="https://fapi.binance.com"),
}
LISTEN_KEY_PATH = "/fapi/v1/listenKey"
SUBSCRIBE_METHOD = "userDataStream.subscribe.signature"
# -1002 unauthorized, -1022 bad signature, -2014 malformed API key, -2015 bad key / IP / permissions.
AUTH_ERROR_CODES = frozenset({-1002, -1022, -2014, -2015})
LISTEN_KEY_GONE = -1125
# The venue closed our stream: USD-M `listenKeyExpired`, spot `eventStreamTerminated` (subscription ended)
# and `serverShutdown`; all three mean "reconnect", which a LISTEN_KEY_EXPIRED tells the connection.
STREAM_ENDED = frozenset({"listenKeyExpired", "eventStreamTerminated", "serverShutdown"})
CHECK_KEY = "check the API key, its secret, its IP whitelist and its permissions (USD-M: futures enabled)"


def handshake(credentials: Credentials, market: Market, now_ms: int, listen_key: str | None = None) -> list:
    """Spot: the signed subscription request (its id is `now_ms`); USD-M: nothing, the listenKey is in the URL."""
    if market is Market.FUTURE:
        return []
    params = signed_params(credentials.api_key or "", credentials.secret or "", now_ms)
    return [{"id": now_ms, "method": SUBSCRIBE_METHOD, "params": params}]


def _refusal(error: Any) -> tuple[Any, str]:
    """(code, text) of a Binance error body `{"code": -2015, "msg": "..."}`."""
    if type(error) is not dict:
        return None, str(error)
    return error.get("code"), f"{error.get('code')} {error.get('msg')}"


class BinanceStream:
    """The socket-side rules of Binance spot (WebSocket API) and USD-M futures (listenKey stream)."""

    ping_interval = 20.0
    silence_limit = 60.0
    listen_key_interval = 1800.0
    plain_text: frozenset[str] = frozenset()  # every frame is a JSON object
    binary_markets: frozenset[Market] = frozenset()

    def endpoints(self, market: Market) -> Endpoints:
        return LIVE_ENDPOINTS[market]

    def ws_url(self, market: Market, endpoints: Endpoints, listen_key: str | None) -> str:
        if market is Market.SPOT:
            return endpoints.ws
        if not listen_key:
            raise ConnectionLost(EXCHANGE, "the USD-M stream needs a listenKey: open one before connecting")
        return f"{endpoints.ws.rstrip('/')}/ws/{listen_key}"

    def acks_expected(self, market: Market) -> int:
        return 1 if market is Market.SPOT else 0

    def ping(self, now_ms: int, market: Market | None = None) -> None:
        return None

    def classify(self, message: Any, market: Market) -> MessageKind:
        if type(message) is dict and "status" in message and "id" in message:
            return self._response(message)
        name = event_name(message)
        if name in ORDER_EVENTS[market] or name in ACCOUNT_CHANNELS[market]:
            return MessageKind.EVENT
        if name in STREAM_ENDED:
            return MessageKind.LISTEN_KEY_EXPIRED
        return MessageKind.IGNORE

    def _response(self, message: dict) -> MessageKind:
        """A WebSocket-API reply: 200 is the subscription's ACK, anything else a refusal."""
        status = message["status"]
        if status == 200:
            return MessageKind.ACK
        code, text = _refusal(message.get("error"))
        if status in (401, 403) or code in AUTH_ERROR_CODES:
            raise AuthError(EXCHANGE, f"user data subscription refused ({status}, {text}): {CHECK_KEY}")
        raise SubscriptionError(EXCHANGE, f"user data subscription refused ({status}, {text})")

    async def open_listen_key(
        self, http: aiohttp.ClientSession, credentials: Credentials, market: Market, endpoints: Endpoints, now_ms: int
    ) -> str | None:
        if market is Market.SPOT:
            return None
        body = await self._listen_key_call(http, "POST", credentials, endpoints)
        listen_key = body.get("listenKey") if type(body) is dict else None
        if type(listen_key) is not str or not listen_key:
            raise ConnectionLost(EXCHANGE, f"POST {LISTEN_KEY_PATH} answered without a listenKey")
        return listen_key

    async def keep_listen_key(
        self,
        http: aiohttp.ClientSession,
        credentials: Credentials,
        market: Market,
        endpoints: Endpoints,
        listen_key: str,
        now_ms: int,
    ) -> None:
        if market is Market.FUTURE:
            await self._listen_key_call(http, "PUT", credentials, endpoints)

    async def _listen_key_call(
        self, http: aiohttp.ClientSession, method: str, credentials: Credentials, endpoints: Endpoints
    ) -> Any:
        url = endpoints.rest.rstrip("/") + LISTEN_KEY_PATH
        try:
            async with http.request(method, url, headers=api_key_headers(credentials.api_key or "")) as response:
                status, text, retry_after = response.status, await response.text(), response.headers.get("Retry-After")
        except aiohttp.ClientError as exc:
            raise ConnectionLost(EXCHANGE, f"{method} {LISTEN_KEY_PATH} failed: {exc!r}") from exc
        try:
            body = json.loads(text)
        except ValueError:
            body = text[:200]
        if status == 200:
            return body
        code, reason = _refusal(body)
        if status in (401, 403) or code in AUTH_ERROR_CODES:
            raise AuthError(EXCHANGE, f"{method} {LISTEN_KEY_PATH} refused ({status}, {reason}): {CHECK_KEY}")
        if code == LISTEN_KEY_GONE:
            raise ConnectionLost(EXCHANGE, f"the listenKey is gone ({reason}): reconnect with a new one")
        if status in (418, 429):
            seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
            raise RateLimited(EXCHANGE, f"{method} {LISTEN_KEY_PATH} rate limited ({status}, {reason})", seconds)
        raise ConnectionLost(EXCHANGE, f"{method} {LISTEN_KEY_PATH} failed ({status}, {reason})")
