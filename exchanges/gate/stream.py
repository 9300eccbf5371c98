"""Gate's socket rules: endpoints, signed subscriptions, keepalive, acks, errors, the futures user-id lookup.

A private socket subscribes to orders and fills, then to the account channels (`exchanges.gate.account`: spot
balances; futures balances and positions). Gate has no login and no listenKey: every private subscribe carries its
own signature. Futures channels want the account's user id first in the payload (docs "Orders API": `"payload":
["20011", "BTC_USD"]`), which `Credentials` does not hold, so `open_listen_key` fetches it (REST
`GET /account/detail`) and the connection hands it back to `handshake` as `listen_key`. Spot needs nothing:
`open_listen_key` gives None.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

from exchanges.gate.account import ACCOUNT_CHANNELS, account_subscriptions
from exchanges.gate.auth import channel_auth, rest_headers, seconds
from exchanges.gate.normalize import CHANNELS, EXCHANGE
from framework.venue import Endpoints, MessageKind, NoListenKey
from framework.errors import AuthError, ConfigError, ConnectionLost, SubscriptionError
from framework.events import Market

if TYPE_CHECKING:
    from framework.venue import Credentials

_LIVE = {
    Market.SPOT: Endpoints(ws="wss://api.gateio.ws/ws/v4/", rest="https://api.gateio.ws/api/v4"),
    Market.FUTURE: Endpoints(ws="wss://fx-ws.gateio.ws/v4/ws/usdt", rest="https://api.gateio.ws/api/v4"),
}
_SUBSCRIPTIONS = {
    Market.SPOT: ("spot.orders", "spot.usertrades"),
    Market.FUTURE: ("futures.orders", "futures.usertrades"),
}
# Frames whose `update` carries events: orders and fills (normalize), balances and positions (the account's).
_EVENT_CHANNELS = CHANNELS | {channel for channels in ACCOUNT_CHANNELS.values() for channel in channels}
_PINGS = {Market.SPOT: "spot.ping", Market.FUTURE: "futures.ping"}
_ALL = "!all"
_ACCOUNT_DETAIL = "/account/detail"
# Error code 4 is "authentication fail" in the docs; ccxt also treats 6 and 11 as auth failures.
_AUTH_CODES = frozenset({4, 6, 11})
_AUTH_MARKERS = ("INVALID_KEY", "SIGNATURE", "AUTHENTICATION")


def handshake(credentials: Credentials, market: Market, now_ms: int, listen_key: str | None = None) -> list[dict]:
    """One signed subscribe per private channel, all pairs (`!all`); futures payloads lead with the user id. Orders
    and fills first, then the account channels (`account_subscriptions`)."""
    if market is Market.FUTURE and not listen_key:
        raise ConfigError(
            "gate futures subscriptions need the account's user id: call GateStream.open_listen_key "
            "and pass its result as listen_key"
        )
    time_s = seconds(now_ms)
    return [
        {
            "time": time_s,
            "id": now_ms + number,
            "channel": channel,
            "event": "subscribe",
            "payload": [listen_key, _ALL] if market is Market.FUTURE else [_ALL],
            "auth": channel_auth(credentials.api_key, credentials.secret, channel, "subscribe", time_s),
        }
        for number, channel in enumerate(_SUBSCRIPTIONS[market], start=1)
    ] + account_subscriptions(credentials, market, now_ms, listen_key)


def _refusal(error: Any, message: dict) -> Exception:
    code = error.get("code") if isinstance(error, dict) else None
    text = str(error.get("message", error) if isinstance(error, dict) else error)
    channel = message.get("channel")
    if code in _AUTH_CODES or any(marker in text.upper() for marker in _AUTH_MARKERS):
        return AuthError(
            EXCHANGE, f"{channel} refused the API key or signature: {text}; check GATE_API_KEY / GATE_API_SECRET"
        )
    return SubscriptionError(EXCHANGE, f"{channel} subscription refused (code {code}): {text}")


def _user_id(text: str) -> str | None:
    try:
        value = json.loads(text)["user_id"]
    except (ValueError, KeyError, TypeError):
        return None
    return str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) and value != "" else None


class GateStream(NoListenKey):
    """Gate APIv4 private streams, kept alive by application pings (`spot.ping` / `futures.ping`).

    Gate closes a socket on which neither side sent a message for over a minute; its maintainer's remedy for private
    futures sockets dropping every minute was a timed `futures.ping` from the client (gateio/gatews#34). The docs'
    demo clients send the channel ping every 10 s and each gets a `*.pong`, so a socket silent for three ping
    intervals (two pongs missed) is treated as lost, well inside Gate's own minute.
    """

    ping_interval = 10.0  # the docs' demo clients: `spot.ping` / `futures.ping` every 10 s
    silence_limit = 30.0  # no frame (not even a pong) for three ping intervals: the socket is lost
    plain_text: frozenset[str] = frozenset()  # every frame is a JSON object (pongs too)
    binary_markets: frozenset[Market] = frozenset()

    def endpoints(self, market: Market) -> Endpoints:
        return _LIVE[market]

    def ws_url(self, market: Market, endpoints: Endpoints, listen_key: str | None) -> str:
        return endpoints.ws

    def acks_expected(self, market: Market) -> int:
        return len(_SUBSCRIPTIONS[market]) + len(ACCOUNT_CHANNELS[market])

    def ping(self, now_ms: int, market: Market | None = None) -> dict:
        """`{"time": <s>, "channel": "spot.ping"}` (docs "Application ping pong"); futures sockets: `futures.ping`."""
        if market is None:
            raise ConfigError("gate pings name their market's channel (spot.ping / futures.ping): pass the market")
        return {"time": seconds(now_ms), "channel": _PINGS[market]}

    def classify(self, message: Any, market: Market) -> MessageKind:
        if not isinstance(message, dict):
            return MessageKind.IGNORE
        error = message.get("error")
        if error:
            raise _refusal(error, message)
        channel, event = message.get("channel"), message.get("event")
        if event == "update":
            return MessageKind.EVENT if channel in _EVENT_CHANNELS else MessageKind.IGNORE
        if event == "subscribe":
            result = message.get("result")
            if isinstance(result, dict) and result.get("status") == "success":
                return MessageKind.ACK
            raise SubscriptionError(EXCHANGE, f"{channel} subscription not confirmed: {message}")
        if isinstance(channel, str) and channel.endswith(".pong"):
            return MessageKind.PONG
        return MessageKind.IGNORE

    async def open_listen_key(
        self, http: aiohttp.ClientSession, credentials: Credentials, market: Market, endpoints: Endpoints, now_ms: int
    ) -> str | None:
        """Futures: the account's user id (Gate's `GET /account/detail`), which futures subscriptions need."""
        if market is not Market.FUTURE:
            return None
        url = endpoints.rest.rstrip("/") + _ACCOUNT_DETAIL
        path = urlsplit(url).path
        headers = rest_headers(credentials.api_key, credentials.secret, "GET", path, "", "", now_ms)
        try:
            async with http.get(url, headers=headers) as response:
                status, text = response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ConnectionLost(EXCHANGE, f"user id lookup failed: {exc!r}") from exc
        if status in (401, 403):
            raise AuthError(
                EXCHANGE, f"user id lookup refused ({status}): {text}; check GATE_API_KEY / GATE_API_SECRET"
            )
        user_id = _user_id(text) if status == 200 else None
        if user_id is None:
            raise ConnectionLost(EXCHANGE, f"user id lookup answered {status}: {text[:200]}")
        return user_id
