"""Binance stream rules: handshake messages, URLs, classify, and the USD-M listenKey calls against a loopback server."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

import aiohttp
import pytest
from aiohttp import web

from exchanges import get_exchange
from exchanges.binance.stream import BinanceStream, handshake
from exchanges.connector import Credentials
from framework.venue import Endpoints, MessageKind
from framework.errors import AuthError, ConnectionLost, RateLimited, SubscriptionError
from framework.events import Market

STREAM = BinanceStream()
CREDENTIALS = Credentials(api_key="my-api-key", secret="my-secret")
NOW_MS = 1747385641636
LISTEN_KEY = "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"


# --- handshake ---

def test_spot_handshake_is_one_signed_subscribe_request():
    payload = b"apiKey=my-api-key&timestamp=1747385641636"
    signature = hmac.new(b"my-secret", payload, hashlib.sha256).hexdigest()
    assert handshake(CREDENTIALS, Market.SPOT, NOW_MS) == [
        {
            "id": 1747385641636,
            "method": "userDataStream.subscribe.signature",
            "params": {"apiKey": "my-api-key", "timestamp": 1747385641636, "signature": signature},
        }
    ]


def test_spot_handshake_is_pure_for_the_same_inputs():
    assert handshake(CREDENTIALS, Market.SPOT, NOW_MS) == handshake(CREDENTIALS, Market.SPOT, NOW_MS)
    assert handshake(CREDENTIALS, Market.SPOT, NOW_MS) != handshake(CREDENTIALS, Market.SPOT, NOW_MS + 1)


def test_future_handshake_sends_nothing():
    assert handshake(CREDENTIALS, Market.FUTURE, NOW_MS, LISTEN_KEY) == []


def test_spec_exports_both_markets_and_needs_key_and_secret():
    spec = get_exchange("binance")
    assert spec.name == "binance"
    assert spec.markets == frozenset({Market.SPOT, Market.FUTURE})
    assert spec.credentials_required == ("api_key", "secret")
    assert isinstance(spec.stream, BinanceStream)


# --- URLs, acks, keepalive ---

def test_live_endpoints():
    assert STREAM.endpoints(Market.SPOT) == Endpoints(
        ws="wss://ws-api.binance.com:443/ws-api/v3", rest="https://api.binance.com"
    )
    assert STREAM.endpoints(Market.FUTURE) == Endpoints(
        ws="wss://fstream.binance.com/private", rest="https://fapi.binance.com"
    )


def test_future_ws_url_puts_listen_key_under_ws_of_the_private_base():
    url = STREAM.ws_url(Market.FUTURE, STREAM.endpoints(Market.FUTURE), LISTEN_KEY)
    assert url == f"wss://fstream.binance.com/private/ws/{LISTEN_KEY}"


def test_ws_url_composes_onto_an_overridden_simulator_base():
    spot = Endpoints(ws="ws://127.0.0.1:5555/binance_spot", rest="http://127.0.0.1:5555/binance_spot")
    future = Endpoints(ws="ws://127.0.0.1:5555/binance_future/", rest="http://127.0.0.1:5555/binance_future")
    assert STREAM.ws_url(Market.SPOT, spot, None) == "ws://127.0.0.1:5555/binance_spot"
    assert STREAM.ws_url(Market.FUTURE, future, "abc") == "ws://127.0.0.1:5555/binance_future/ws/abc"


def test_future_ws_url_without_listen_key_raises_connection_lost():
    with pytest.raises(ConnectionLost):
        STREAM.ws_url(Market.FUTURE, STREAM.endpoints(Market.FUTURE), None)


def test_spot_expects_one_ack_future_none():
    assert (STREAM.acks_expected(Market.SPOT), STREAM.acks_expected(Market.FUTURE)) == (1, 0)


def test_keepalive_uses_websocket_ping_frames_and_documented_intervals():
    assert STREAM.ping(NOW_MS) is None
    assert (STREAM.ping_interval, STREAM.silence_limit, STREAM.listen_key_interval) == (20.0, 60.0, 1800.0)


# --- classify ---

CLASSIFIED = [
    ({"id": NOW_MS, "status": 200, "result": {"subscriptionId": 0}}, Market.SPOT, MessageKind.ACK),
    ({"subscriptionId": 0, "event": {"e": "executionReport", "E": 1}}, Market.SPOT, MessageKind.EVENT),
    ({"e": "executionReport", "E": 1}, Market.SPOT, MessageKind.EVENT),
    ({"subscriptionId": 0, "event": {"e": "outboundAccountPosition"}}, Market.SPOT, MessageKind.EVENT),
    ({"subscriptionId": 0, "event": {"e": "balanceUpdate"}}, Market.SPOT, MessageKind.EVENT),
    ({"subscriptionId": 0, "event": {"e": "eventStreamTerminated", "E": 1}}, Market.SPOT,
     MessageKind.LISTEN_KEY_EXPIRED),
    ({"event": {"e": "serverShutdown", "E": 1770123456789}}, Market.SPOT, MessageKind.LISTEN_KEY_EXPIRED),
    ({"e": "ORDER_TRADE_UPDATE", "o": {}}, Market.FUTURE, MessageKind.EVENT),
    ({"e": "TRADE_LITE"}, Market.FUTURE, MessageKind.EVENT),
    ({"e": "listenKeyExpired", "E": 1, "listenKey": LISTEN_KEY}, Market.FUTURE, MessageKind.LISTEN_KEY_EXPIRED),
    ({"e": "ACCOUNT_UPDATE"}, Market.FUTURE, MessageKind.EVENT),
    ({"e": "ALGO_UPDATE"}, Market.FUTURE, MessageKind.IGNORE),
    ({"e": "ORDER_TRADE_UPDATE"}, Market.SPOT, MessageKind.IGNORE),
    ({"e": "ACCOUNT_UPDATE"}, Market.SPOT, MessageKind.IGNORE),  # another market's account event
    ({"id": 1, "result": None}, Market.FUTURE, MessageKind.IGNORE),
    ("not json", Market.SPOT, MessageKind.IGNORE),
    ([1, 2], Market.FUTURE, MessageKind.IGNORE),
]


@pytest.mark.parametrize("message, market, kind", CLASSIFIED)
def test_classify(message, market, kind):
    assert STREAM.classify(message, market) is kind


@pytest.mark.parametrize(
    "status, code, msg",
    [
        (400, -1022, "Signature for this request is not valid."),
        (401, -2015, "Invalid API-key, IP, or permissions for action."),
        (400, -2014, "API-key format invalid."),
        (403, None, "WAF limit violated"),
    ],
)
def test_classify_refused_credentials_raise_auth_error(status, code, msg):
    reply = {"id": NOW_MS, "status": status, "error": {"code": code, "msg": msg}}
    with pytest.raises(AuthError, match=msg.rstrip(".")):
        STREAM.classify(reply, Market.SPOT)


def test_classify_other_refusal_raises_subscription_error():
    error = {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
    reply = {"id": NOW_MS, "status": 400, "error": error}
    with pytest.raises(SubscriptionError, match="-1021"):
        STREAM.classify(reply, Market.SPOT)


# --- listenKey REST calls against a loopback server ---

class FakeFapi:
    """A loopback `/fapi/v1/listenKey` that answers what each test scripts, and records what it got."""

    def __init__(self, status: int = 200, body: str = f'{{"listenKey": "{LISTEN_KEY}"}}', headers=None):
        self.status, self.body, self.headers = status, body, headers or {}
        self.calls: list[tuple[str, str | None]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((request.method, request.headers.get("X-MBX-APIKEY")))
        return web.Response(status=self.status, text=self.body, headers=self.headers, content_type="application/json")


@pytest.fixture
async def fapi():
    fake = FakeFapi()
    app = web.Application()
    app.router.add_route("*", "/prefix/fapi/v1/listenKey", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.endpoints = Endpoints(ws=f"ws://127.0.0.1:{port}/prefix", rest=f"http://127.0.0.1:{port}/prefix")
    try:
        async with aiohttp.ClientSession() as http:
            fake.http = http
            yield fake
    finally:
        await runner.cleanup()


async def open_key(fapi, market=Market.FUTURE):
    return await asyncio.wait_for(STREAM.open_listen_key(fapi.http, CREDENTIALS, market, fapi.endpoints, NOW_MS), 5)


async def keep_key(fapi, market=Market.FUTURE):
    keep = STREAM.keep_listen_key(fapi.http, CREDENTIALS, market, fapi.endpoints, LISTEN_KEY, NOW_MS)
    await asyncio.wait_for(keep, 5)


async def test_open_listen_key_posts_with_api_key_header(fapi):
    assert await open_key(fapi) == LISTEN_KEY
    assert fapi.calls == [("POST", "my-api-key")]


async def test_keep_listen_key_puts_with_api_key_header(fapi):
    fapi.body = "{}"
    await keep_key(fapi)
    assert fapi.calls == [("PUT", "my-api-key")]


async def test_spot_has_no_listen_key_and_makes_no_call(fapi):
    assert await open_key(fapi, Market.SPOT) is None
    await keep_key(fapi, Market.SPOT)
    assert fapi.calls == []


async def test_keep_listen_key_gone_raises_connection_lost(fapi):
    fapi.status, fapi.body = 400, '{"code": -1125, "msg": "This listenKey does not exist."}'
    with pytest.raises(ConnectionLost, match="-1125"):
        await keep_key(fapi)


async def test_open_listen_key_with_bad_api_key_raises_auth_error(fapi):
    fapi.status, fapi.body = 401, '{"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}'
    with pytest.raises(AuthError, match="-2015"):
        await open_key(fapi)


async def test_open_listen_key_rate_limited_carries_retry_after(fapi):
    fapi.status, fapi.body, fapi.headers = 429, '{"code": -1003, "msg": "Too many requests."}', {"Retry-After": "7"}
    with pytest.raises(RateLimited) as caught:
        await open_key(fapi)
    assert caught.value.retry_after == 7.0


async def test_open_listen_key_server_error_with_html_body_raises_connection_lost(fapi):
    fapi.status, fapi.body = 502, "<html>Bad Gateway</html>"
    with pytest.raises(ConnectionLost, match="502"):
        await open_key(fapi)


async def test_open_listen_key_answer_without_key_raises_connection_lost(fapi):
    fapi.body = '{"something": "else"}'
    with pytest.raises(ConnectionLost, match="without a listenKey"):
        await open_key(fapi)


async def test_open_listen_key_unreachable_server_raises_connection_lost():
    closed = Endpoints(ws="ws://127.0.0.1:9/x", rest="http://127.0.0.1:9/x")  # port 9 (discard): nothing listens
    async with aiohttp.ClientSession() as http:
        with pytest.raises(ConnectionLost, match="POST /fapi/v1/listenKey failed"):
            await asyncio.wait_for(STREAM.open_listen_key(http, CREDENTIALS, Market.FUTURE, closed, NOW_MS), 5)
