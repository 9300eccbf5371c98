"""Hyperliquid's private socket: one URL for perps and spot, subscriptions by wallet address, `{"method":"ping"}` keepalive."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from exchanges.hyperliquid.account import ACCOUNT_CHANNELS
from exchanges.hyperliquid.auth import wallet_address
from exchanges.hyperliquid.normalize import EXCHANGE
from framework.venue import Endpoints, MessageKind, NoListenKey
from framework.errors import RateLimited, SubscriptionError
from framework.events import Market

if TYPE_CHECKING:

    from framework.venue import Credentials

LIVE = Endpoints(ws="wss://api.hyperliquid.xyz", rest="https://api.hyperliquid.xyz")
CHANNELS = ("userFills", "orderUpdates", *ACCOUNT_CHANNELS)  # fills and orders, then the account state
_KINDS = {
    "userFills": MessageKind.EVENT,
    "orderUpdates": MessageKind.EVENT,
    "clearinghouseState": MessageKind.EVENT,  # the account state: the account normalize reads it
    "subscriptionResponse": MessageKind.ACK,  # one per subscription, echoing it
    "pong": MessageKind.PONG,
}
_RATE_LIMIT = "Cannot send more than"  # "Cannot send more than 2000 messages per minute."


def handshake(credentials: Credentials, market: Market, now_ms: int, listen_key: str | None = None) -> list:
    """The subscriptions (fills, orders, the perp account state), by address: no login, no signature. A
    malformed address is a ConfigError."""
    user = wallet_address(credentials.wallet_address)
    return [{"method": "subscribe", "subscription": {"type": channel, "user": user}} for channel in CHANNELS]


class HyperliquidStream(NoListenKey):
    """Keepalive per the docs' "Timeouts and heartbeats": the server drops a socket quiet for 60 s; we ping every 50 s."""

    ping_interval = 50.0
    silence_limit = 60.0
    # The greeting on every new socket (the official SDK's websocket_manager skips it too); all else is JSON.
    plain_text = frozenset({"Websocket connection established."})
    binary_markets: frozenset[Market] = frozenset()

    def endpoints(self, market: Market) -> Endpoints:
        return LIVE

    def ws_url(self, market: Market, endpoints: Endpoints, listen_key: str | None) -> str:
        return f"{endpoints.ws.rstrip('/')}/ws"

    def acks_expected(self, market: Market) -> int:
        return len(CHANNELS)

    def ping(self, now_ms: int, market: Market | None = None) -> dict:
        return {"method": "ping"}

    def classify(self, message: Any, market: Market) -> MessageKind:
        """Events, acks, pongs; `{"channel":"error","data":"…"}` raises (there is no login to refuse)."""
        channel = message.get("channel") if type(message) is dict else None
        if type(channel) is not str:
            return MessageKind.IGNORE
        if channel == "error":
            text = str(message.get("data"))
            if text.startswith(_RATE_LIMIT):
                raise RateLimited(EXCHANGE, text, retry_after=60.0)
            raise SubscriptionError(EXCHANGE, text)
        return _KINDS.get(channel, MessageKind.IGNORE)
