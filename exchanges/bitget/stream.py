"""Bitget v2 private stream rules: URLs, login + subscribe handshake, text "ping" keepalive, frame classes.

Docs: https://www.bitget.com/api-doc/common/websocket-intro (login, keepalive: send the text "ping" every 30 s,
expect "pong" within 30 s; the server drops a socket that sent no "ping" for 2 min) and the private
Order-Channel / Fill-Channel pages. No listenKey: the login op authenticates the socket.

The account channels (account.py: `account` on both markets, `positions` on futures) are subscribed by a second
op after the `orders` / `fill` one; each arg is acked once, and their pushes are events like the order ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exchanges.bitget.account import ACCOUNT_CHANNELS, account_subscribe
from exchanges.bitget.auth import login_message
from framework.venue import Endpoints, MessageKind, NoListenKey
from framework.errors import AuthError, RateLimited, SubscriptionError
from framework.events import Market

if TYPE_CHECKING:

    from exchanges.connector import Credentials

EXCHANGE = "bitget"
WS_BASE = "wss://ws.bitget.com"
REST_BASE = "https://api.bitget.com"
PRIVATE_PATH = "/v2/ws/private"
CHANNELS = ("orders", "fill")
INST_TYPE = {Market.SPOT: "SPOT", Market.FUTURE: "USDT-FUTURES"}

# {"event": "error", "code": 30005, "msg": "..."}: codes that refuse the login (ccxt's table and the docs).
_AUTH_CODES = frozenset({"30002", "30004", "30005", "30011", "30012", "30013", "30014", "30015"})
_RATE_CODES = frozenset({"30006", "30007"})


def handshake(credentials: Credentials, market: Market, now_ms: int, listen_key: str | None = None) -> list:
    """Login, then one subscribe op for the `orders` and `fill` channels of every symbol of the market, and one
    for the market's account channels."""
    login = login_message(credentials.api_key, credentials.secret, credentials.passphrase, now_ms)
    inst_type = INST_TYPE[market]
    subscribe = {
        "op": "subscribe",
        "args": [{"instType": inst_type, "channel": channel, "instId": "default"} for channel in CHANNELS],
    }
    return [login, subscribe, account_subscribe(market)]


class BitgetStream(NoListenKey):
    """Socket-side rules of Bitget's v2 private stream (the same for spot and USDT futures)."""

    ping_interval = 30.0
    silence_limit = 60.0  # a ping every 30 s, and its pong is due within 30 s
    plain_text = frozenset({"pong"})  # the answer to our text "ping"; every other frame is a JSON object
    binary_markets: frozenset[Market] = frozenset()

    def endpoints(self, market: Market) -> Endpoints:
        return Endpoints(ws=WS_BASE, rest=REST_BASE)

    def ws_url(self, market: Market, endpoints: Endpoints, listen_key: str | None) -> str:
        return endpoints.ws.rstrip("/") + PRIVATE_PATH

    def acks_expected(self, market: Market) -> int:
        # the login, then one {"event": "subscribe"} per channel
        return 1 + len(CHANNELS) + len(ACCOUNT_CHANNELS[market])

    def ping(self, now_ms: int, market: Market | None = None) -> str:
        return "ping"

    def classify(self, message: Any, market: Market) -> MessageKind:
        if isinstance(message, str):
            return MessageKind.PONG if message == "pong" else MessageKind.IGNORE
        if not isinstance(message, dict):
            return MessageKind.IGNORE
        event = message.get("event")
        if event is None:
            arg = message.get("arg")
            channel = arg.get("channel") if isinstance(arg, dict) else None
            is_ours = channel in CHANNELS or channel in ACCOUNT_CHANNELS[market]
            return MessageKind.EVENT if is_ours else MessageKind.IGNORE
        code = str(message.get("code", "0"))
        if event == "subscribe" or (event == "login" and code == "0"):
            return MessageKind.ACK
        if event not in ("login", "error") or isinstance(message.get("arg"), list):
            return MessageKind.IGNORE  # a list arg: a trade op's answer (orders.py decodes it), not the stream's
        text = f"{message.get('msg', '')} (code {code})"
        if event == "login" or code in _AUTH_CODES:
            raise AuthError(EXCHANGE, f"login refused: {text}; check the API key, secret, passphrase and clock")
        if code in _RATE_CODES:
            raise RateLimited(EXCHANGE, f"too many requests: {text}; slow down")
        raise SubscriptionError(EXCHANGE, f"request refused: {text}, arg {message.get('arg')}")
