"""Bybit v5 private stream rules: endpoints, login + subscribe handshake, ping, and frame classification.

The handshake subscribes the order topics and, in a request of its own, the market's account topics
(account.py's `wallet`, and `position` on futures): Bybit pushes neither until asked, and acks each request.

Doc: https://bybit-exchange.github.io/docs/v5/ws/connect (authentication, ping/pong, subscription acks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exchanges.bybit.account import ACCOUNT_CHANNELS, ACCOUNT_REQUEST, account_subscribe
from exchanges.bybit.auth import auth_args
from exchanges.bybit.normalize import EXCHANGE
from framework.venue import Endpoints, MessageKind, NoListenKey
from framework.errors import AuthError, SubscriptionError
from framework.events import Market

if TYPE_CHECKING:

    from framework.venue import Credentials

# One private socket for every category (normalize keeps the market's own). An override (testnet, the
# simulator's `ws://127.0.0.1:<port>/bybit_<market>`) replaces the whole private-stream URL.
LIVE = Endpoints(ws="wss://stream.bybit.com/v5/private", rest="https://api.bybit.com")
TOPICS = ("order", "execution")  # all-in-one topics: every category, one subscribe ack
_EVENT_TOPICS = frozenset({*TOPICS, *(topic for topics in ACCOUNT_CHANNELS.values() for topic in topics)})


def handshake(credentials: Credentials, market: Market, now_ms: int, listen_key: str | None = None) -> list:
    """Login, then the two subscribes, sent back to back: Bybit handles a socket's requests in order."""
    return [
        {"req_id": f"auth-{now_ms}", "op": "auth", "args": auth_args(credentials.api_key, credentials.secret, now_ms)},
        {"req_id": f"subscribe-{now_ms}", "op": "subscribe", "args": list(TOPICS)},
        *account_subscribe(market, now_ms),
    ]


class BybitStream(NoListenKey):
    """Bybit has no listenKey: the login signature is all the socket needs."""

    ping_interval = 20.0  # Bybit recommends a ping every 20 s
    silence_limit = 60.0  # three pings without a pong (or any frame): the socket is gone
    plain_text: frozenset[str] = frozenset()  # every frame is a JSON object (pongs too)
    binary_markets: frozenset[Market] = frozenset()

    def endpoints(self, market: Market) -> Endpoints:
        return LIVE

    def ws_url(self, market: Market, endpoints: Endpoints, listen_key: str | None) -> str:
        return endpoints.ws  # no listenKey or per-market path: the endpoint is the URL

    def acks_expected(self, market: Market) -> int:
        return 3  # auth, the order topics' subscribe, the account topics' subscribe

    def ping(self, now_ms: int, market: Market | None = None) -> dict:
        return {"req_id": f"ping-{now_ms}", "op": "ping"}

    def classify(self, message: Any, market: Market) -> MessageKind:
        """Sort a decoded frame; a refused login raises AuthError, a refused subscription SubscriptionError."""
        if not isinstance(message, dict):
            return MessageKind.IGNORE
        topic = message.get("topic")
        if isinstance(topic, str):
            return MessageKind.EVENT if topic.partition(".")[0] in _EVENT_TOPICS else MessageKind.IGNORE
        op = message.get("op")
        if op == "pong" or (op == "ping" and message.get("success") is True):
            return MessageKind.PONG
        if op not in ("auth", "subscribe"):
            return MessageKind.IGNORE
        # Private acks say {"success": true}; the v5 trade-socket shape {"retCode": 0} is accepted too.
        if message.get("success") is True or message.get("retCode") == 0:
            return MessageKind.ACK
        reason = message.get("ret_msg") or message.get("retMsg") or "no reason given"
        if op == "auth":
            raise AuthError(EXCHANGE, f"login refused ({reason}): check the API key and secret, and this machine's clock")
        request = message.get("req_id")  # echoed: which of the two subscribes was refused
        account = isinstance(request, str) and request.startswith(ACCOUNT_REQUEST)
        topics = ACCOUNT_CHANNELS[market] if account else TOPICS
        raise SubscriptionError(EXCHANGE, f"subscription to {', '.join(topics)} refused: {reason}")
