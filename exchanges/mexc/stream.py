"""MEXC private sockets: endpoints, spot listenKey calls, the handshake, pings, and what each frame is.

Spot: signed `POST /api/v3/userDataStream` → listenKey; `<ws>/ws?listenKey=…`; one SUBSCRIPTION of orders,
deals and the account (balances), one JSON ack (`msg` lists the channels); binary protobuf pushes. A reconnect
reuses the key it opened last for these credentials when a `PUT` still extends it (MEXC allows 60 keys per
account and a key lives 60 min without one: a new key per reconnect would pile up), and POSTs a new one only
when the old one is gone.
Contract: `<ws>/edge`; `login` (ack `rs.login`), then `personal.filter` to order, order.deal, asset and position
(ack `rs.personal.filter`; unfiltered, MEXC pushes every private channel: plan orders, ADL levels, risk limits…).
Account pushes are EVENTs: normalize.py gives nothing for them, so the connection hands them to account.py.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp

from exchanges.mexc.account import ACCOUNT_CHANNELS, ACCOUNT_FILTERS
from exchanges.mexc.auth import login_message, signed_spot_query
from framework.venue import Endpoints, MessageKind
from framework.errors import AuthError, ConfigError, ConnectionLost, RateLimited, SubscriptionError
from framework.events import Market

if TYPE_CHECKING:
    from framework.venue import Credentials

NAME = "mexc"
ORDER_CHANNELS = ("spot@private.orders.v3.api.pb", "spot@private.deals.v3.api.pb")
SPOT_CHANNELS = (*ORDER_CHANNELS, *ACCOUNT_CHANNELS[Market.SPOT])
FUTURE_FILTERS = ("order", "order.deal", *ACCOUNT_FILTERS)  # personal.filter names: orders, fills, the account
_LIVE = {
    Market.SPOT: Endpoints(ws="wss://wbs-api.mexc.com", rest="https://api.mexc.com"),
    Market.FUTURE: Endpoints(ws="wss://contract.mexc.com", rest="https://contract.mexc.com"),
}
_LISTEN_KEY_PATH = "/api/v3/userDataStream"
# Key refused/expired, bad signature, unknown key, IP not whitelisted, no permission (ccxt's MEXC table).
_AUTH_CODES = frozenset({401, 402, 602, 10072, 700001, 700002, 700006, 700007})
_CLOCK_CODE = 700003  # "Timestamp for this request is outside of the recvWindow.": a retry with this clock fails too
_FUTURE_EVENTS = frozenset({"push.personal.order", "push.personal.order.deal", *ACCOUNT_CHANNELS[Market.FUTURE]})


def handshake(credentials: Credentials, market: Market, now_ms: int, listen_key: str | None = None) -> list:
    """Spot: the SUBSCRIPTION to orders, deals and the account (the listenKey is in the URL), acked once.
    Contract: login, then the filter to orders, fills, assets and positions, acked once."""
    if market is Market.SPOT:
        return [{"method": "SUBSCRIPTION", "params": list(SPOT_CHANNELS)}]
    wanted = {"filters": [{"filter": name} for name in FUTURE_FILTERS]}
    return [login_message(credentials.api_key, credentials.secret, now_ms),
            {"method": "personal.filter", "param": wanted}]  # fmt: skip


class MexcStream:
    ping_interval = 15.0  # contract: ping every 10–20 s; spot: a link without data dies after 60 s
    silence_limit = 45.0  # three pings without a pong
    listen_key_interval = 1800.0  # a spot listenKey lives 60 min; the docs advise a PUT every 30 min
    plain_text = frozenset({"Invalid listen key"})  # spot's refusal of an expired key, as text; else JSON objects
    binary_markets = frozenset({Market.SPOT})  # spot pushes are protobuf; contract frames are JSON

    def __init__(self) -> None:
        # (API key, REST base) -> the listenKey last opened for them: one stream object serves every connection.
        self._listen_keys: dict[tuple[str, str], str] = {}

    def endpoints(self, market: Market) -> Endpoints:
        return _LIVE[market]

    def ws_url(self, market: Market, endpoints: Endpoints, listen_key: str | None) -> str:
        base = endpoints.ws.rstrip("/")
        if market is not Market.SPOT:
            return f"{base}/edge"
        if not listen_key:
            raise ConfigError("mexc spot needs a listenKey in its socket URL: call open_listen_key first")
        return f"{base}/ws?listenKey={quote(listen_key, safe='')}"

    def acks_expected(self, market: Market) -> int:
        return 1 if market is Market.SPOT else 2

    def ping(self, now_ms: int, market: Market | None = None) -> dict:
        """Spot documents `PING`, the contract `ping`; spot answers the lowercase one too (ccxt sends it)."""
        return {"method": "PING"} if market is Market.SPOT else {"method": "ping"}

    def classify(self, message: Any, market: Market) -> MessageKind:
        if isinstance(message, (bytes, bytearray, memoryview)):
            return MessageKind.EVENT
        if isinstance(message, str):
            if "listen key" in message.lower():
                self._listen_keys.clear()  # the socket refused a key: the next connect POSTs a new one
                return MessageKind.LISTEN_KEY_EXPIRED
            return MessageKind.IGNORE
        if not isinstance(message, dict):
            return MessageKind.IGNORE
        if market is not Market.SPOT:
            return _classify_future(message)
        kind = _classify_spot(message)
        if kind is MessageKind.LISTEN_KEY_EXPIRED:
            self._listen_keys.clear()
        return kind

    async def open_listen_key(
        self, http: aiohttp.ClientSession, credentials: Credentials, market: Market, endpoints: Endpoints, now_ms: int
    ) -> str | None:
        """Spot: the last key opened for these credentials if a PUT still extends it, else a new one (POST)."""
        if market is not Market.SPOT:
            return None
        slot = (credentials.api_key, endpoints.rest.rstrip("/"))
        known = self._listen_keys.get(slot)
        if known is not None:  # AuthError / RateLimited from the PUT propagate, and the key is kept
            try:
                body = await _listen_key_call(http, "PUT", credentials, endpoints, {"listenKey": known}, now_ms)
            except ConnectionLost:  # unknown or expired (730708), or the call failed: a new key (or the same error)
                body = {}
            if body.get("listenKey") == known:  # MEXC's PUT echoes the key it extended
                return known
            self._listen_keys.pop(slot, None)
        body = await _listen_key_call(http, "POST", credentials, endpoints, {}, now_ms)
        listen_key = body.get("listenKey")
        if not isinstance(listen_key, str) or not listen_key:
            raise ConnectionLost(NAME, f"POST {_LISTEN_KEY_PATH} answered without a listenKey")
        self._listen_keys[slot] = listen_key
        return listen_key

    async def keep_listen_key(
        self, http: aiohttp.ClientSession, credentials: Credentials, market: Market, endpoints: Endpoints,
        listen_key: str, now_ms: int,
    ) -> None:  # fmt: skip
        if market is Market.SPOT:
            await _listen_key_call(http, "PUT", credentials, endpoints, {"listenKey": listen_key}, now_ms)


def _classify_spot(message: dict) -> MessageKind:
    if "c" in message:  # legacy JSON push
        return MessageKind.EVENT if str(message["c"]).startswith("spot@private.") else MessageKind.IGNORE
    msg = str(message.get("msg", ""))
    if msg == "PONG":
        return MessageKind.PONG
    if "listen key" in msg.lower():
        return MessageKind.LISTEN_KEY_EXPIRED
    if message.get("code") not in (0, None) or msg.startswith("Not Subscribed"):
        raise SubscriptionError(NAME, f"spot subscription refused: {msg or message}")
    return MessageKind.ACK if "spot@" in msg else MessageKind.IGNORE


def _classify_future(message: dict) -> MessageKind:
    channel, data = message.get("channel"), message.get("data")
    if channel in _FUTURE_EVENTS:
        return MessageKind.EVENT
    if channel == "pong":
        return MessageKind.PONG
    if channel in ("rs.login", "rs.personal.filter") and data == "success":
        return MessageKind.ACK
    if channel in ("rs.login", "rs.error"):  # the docs: a refused login answers on rs.error
        raise AuthError(NAME, f"contract login refused: {data}: check MEXC_API_KEY / MEXC_API_SECRET")
    if channel == "rs.personal.filter":
        raise SubscriptionError(NAME, f"contract personal.filter refused: {data}")
    return MessageKind.IGNORE


async def _listen_key_call(
    http: aiohttp.ClientSession, method: str, credentials: Credentials, endpoints: Endpoints, params: dict, now_ms: int
) -> dict:
    """One signed listenKey request; errors mapped to AuthError / RateLimited / ConnectionLost."""
    url = f"{endpoints.rest.rstrip('/')}{_LISTEN_KEY_PATH}?{signed_spot_query(credentials.secret, params, now_ms)}"
    headers = {"X-MEXC-APIKEY": credentials.api_key, "Content-Type": "application/json"}
    try:
        async with http.request(method, url, headers=headers) as r:
            status, text = r.status, await r.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ConnectionLost(NAME, f"{method} {_LISTEN_KEY_PATH} failed: {type(exc).__name__}") from exc
    try:
        body = dict(json.loads(text))
    except (ValueError, TypeError):
        body = {}
    code, detail = body.get("code"), body.get("msg") or text[:200]
    if code == _CLOCK_CODE:
        raise AuthError(NAME, f"{method} {_LISTEN_KEY_PATH} refused ({code}: {detail}): "
                        "this machine's clock is off from MEXC's: sync it (NTP)")  # fmt: skip
    if status in (401, 403) or code in _AUTH_CODES:
        raise AuthError(NAME, f"{method} {_LISTEN_KEY_PATH} refused (HTTP {status}, {code}: {detail}): "
                        "check MEXC_API_KEY / MEXC_API_SECRET and the key's SPOT_ACCOUNT_R permission")  # fmt: skip
    if status == 429:
        raise RateLimited(NAME, f"{method} {_LISTEN_KEY_PATH} rate limited: {detail}")
    if status != 200 or code not in (None, 0, 200):
        raise ConnectionLost(NAME, f"{method} {_LISTEN_KEY_PATH} failed (HTTP {status}, {code}: {detail})")
    return body
