"""Gate stream rules: the exact handshake, endpoints, classify, and the futures user-id lookup on a loopback server."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from exchanges import get_exchange
from exchanges.connector import Credentials
from exchanges.gate import SPEC
from exchanges.gate.stream import GateStream, handshake
from framework.venue import Endpoints, MessageKind
from framework.errors import AuthError, ConfigError, ConnectionLost, SubscriptionError
from framework.events import Market

CREDS = Credentials(api_key="gate-key-1234", secret="gate-secret-5678")
NOW_MS = 1_700_000_000_456
STREAM = GateStream()


def by_hand(text: str) -> str:
    return hmac.new(b"gate-secret-5678", text.encode(), hashlib.sha512).hexdigest()


def test_spec_is_gate_with_spot_and_future_markets():
    assert get_exchange("gate.io") is SPEC
    assert (SPEC.name, SPEC.markets, SPEC.credentials_required) == (
        "gate", frozenset({Market.SPOT, Market.FUTURE}), ("api_key", "secret"),
    )


def test_spot_handshake_subscribes_orders_then_usertrades_for_all_pairs():
    assert handshake(CREDS, Market.SPOT, NOW_MS)[:2] == [
        {
            "time": 1700000000, "id": 1700000000457, "channel": "spot.orders", "event": "subscribe",
            "payload": ["!all"],
            "auth": {
                "method": "api_key", "KEY": "gate-key-1234",
                "SIGN": by_hand("channel=spot.orders&event=subscribe&time=1700000000"),
            },
        },
        {
            "time": 1700000000, "id": 1700000000458, "channel": "spot.usertrades", "event": "subscribe",
            "payload": ["!all"],
            "auth": {
                "method": "api_key", "KEY": "gate-key-1234",
                "SIGN": by_hand("channel=spot.usertrades&event=subscribe&time=1700000000"),
            },
        },
    ]


def test_futures_handshake_payload_leads_with_user_id():
    messages = handshake(CREDS, Market.FUTURE, NOW_MS, "1667201533")
    assert [(m["channel"], m["payload"]) for m in messages] == [
        ("futures.orders", ["1667201533", "!all"]),
        ("futures.usertrades", ["1667201533", "!all"]),
        ("futures.balances", ["1667201533"]),
        ("futures.positions", ["1667201533", "!all"]),
    ]
    assert messages[1]["auth"]["SIGN"] == by_hand("channel=futures.usertrades&event=subscribe&time=1700000000")


def test_handshake_is_pure():
    assert handshake(CREDS, Market.FUTURE, NOW_MS, "7") == handshake(CREDS, Market.FUTURE, NOW_MS, "7")


def test_futures_handshake_without_user_id_is_a_config_error():
    with pytest.raises(ConfigError, match="user id"):
        handshake(CREDS, Market.FUTURE, NOW_MS)


def test_live_endpoints_and_ws_url_follow_override():
    spot = Endpoints(ws="wss://api.gateio.ws/ws/v4/", rest="https://api.gateio.ws/api/v4")
    assert STREAM.endpoints(Market.SPOT) == spot
    assert STREAM.endpoints(Market.FUTURE).ws == "wss://fx-ws.gateio.ws/v4/ws/usdt"
    live = STREAM.endpoints(Market.FUTURE)
    assert STREAM.ws_url(Market.FUTURE, live, "1667201533") == "wss://fx-ws.gateio.ws/v4/ws/usdt"
    simulator = Endpoints(ws="ws://127.0.0.1:5555/gate_spot", rest="http://127.0.0.1:5555/gate_spot")
    assert STREAM.ws_url(Market.SPOT, simulator, None) == "ws://127.0.0.1:5555/gate_spot"


def test_keepalive_is_the_markets_application_ping_every_ten_seconds():
    assert (STREAM.acks_expected(Market.SPOT), STREAM.acks_expected(Market.FUTURE)) == (3, 4)
    assert STREAM.ping(NOW_MS, Market.SPOT) == {"time": 1700000000, "channel": "spot.ping"}
    assert STREAM.ping(NOW_MS, Market.FUTURE) == {"time": 1700000000, "channel": "futures.ping"}
    assert (STREAM.ping_interval, STREAM.silence_limit, STREAM.listen_key_interval) == (10.0, 30.0, None)
    # a pong is due every interval; two may go missing before the socket counts as lost, and that is decided
    # well before Gate itself closes a socket silent for a minute (gateio/gatews#34)
    assert STREAM.ping_interval * 2 < STREAM.silence_limit < 60


def test_ping_without_market_is_a_config_error():
    with pytest.raises(ConfigError, match="spot.ping"):
        STREAM.ping(NOW_MS)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ({"time": 1, "time_ms": 1000, "channel": "spot.orders", "event": "subscribe", "error": None,
          "result": {"status": "success"}}, MessageKind.ACK),
        ({"time": 1, "channel": "futures.usertrades", "event": "subscribe", "result": {"status": "success"}},
         MessageKind.ACK),
        ({"time": 1, "channel": "spot.pong", "event": "", "error": None, "result": None}, MessageKind.PONG),
        ({"time": 1, "time_ms": 1000, "channel": "futures.pong", "event": "", "result": None}, MessageKind.PONG),
        ({"time": 1, "channel": "spot.usertrades", "event": "update", "result": []}, MessageKind.EVENT),
        ({"time": 1, "channel": "futures.orders", "event": "update", "result": []}, MessageKind.EVENT),
        ({"time": 1, "channel": "spot.balances", "event": "update", "result": []}, MessageKind.EVENT),
        ({"time": 1, "channel": "spot.orders", "event": "unsubscribe", "result": {"status": "success"}},
         MessageKind.IGNORE),
        ([1, 2, 3], MessageKind.IGNORE),
        ("pong", MessageKind.IGNORE),
    ],
)
def test_classify_kinds(message, kind):
    assert STREAM.classify(message, Market.SPOT) is kind


@pytest.mark.parametrize(
    "error",
    [
        {"code": 4, "message": "Authentication fail"},
        {"code": 4, "message": '{"label":"INVALID_KEY","message":"Invalid key provided"}\n'},
        {"code": 2, "message": "INVALID_SIGNATURE"},
    ],
)
def test_classify_auth_refusal_raises_auth_error(error):
    message = {"time": 1, "channel": "futures.orders", "event": "subscribe", "error": error, "result": None}
    with pytest.raises(AuthError, match="futures.orders") as caught:
        STREAM.classify(message, Market.FUTURE)
    assert caught.value.exchange == "gate"


def test_classify_bad_argument_raises_subscription_error():
    message = {
        "time": 1647274664, "channel": "futures.orders", "event": "subscribe",
        "error": {"code": 2, "message": "unknown contract BTC_USDT_20220318"}, "result": {"status": "fail"},
    }
    with pytest.raises(SubscriptionError, match="unknown contract"):
        STREAM.classify(message, Market.FUTURE)


def test_classify_subscribe_without_success_raises_subscription_error():
    message = {"time": 1, "channel": "spot.orders", "event": "subscribe", "error": None, "result": {"status": "fail"}}
    with pytest.raises(SubscriptionError):
        STREAM.classify(message, Market.SPOT)


def account_detail_app(status: int, body: str) -> web.Application:
    """A fake Gate REST endpoint that answers only a correctly signed `GET <base>/account/detail`."""

    async def detail(request: web.Request) -> web.Response:
        empty_sha512 = hashlib.sha512(b"").hexdigest()
        signed = f"GET\n/gate_future/account/detail\n\n{empty_sha512}\n{request.headers['Timestamp']}"
        if request.headers["KEY"] != "gate-key-1234" or request.headers["SIGN"] != by_hand(signed):
            return web.Response(status=401, text='{"label":"INVALID_SIGNATURE","message":"Signature mismatch"}')
        assert request.headers["Timestamp"] == "1700000000"
        return web.Response(status=status, text=body)

    app = web.Application()
    app.router.add_get("/gate_future/account/detail", detail)
    return app


async def lookup(app: web.Application, market: Market = Market.FUTURE, creds: Credentials = CREDS) -> str | None:
    async with asyncio.timeout(10), TestServer(app) as server, aiohttp.ClientSession() as http:
        base = str(server.make_url("/gate_future"))
        endpoints = Endpoints(ws=base.replace("http", "ws"), rest=base)
        return await STREAM.open_listen_key(http, creds, market, endpoints, NOW_MS)


async def test_futures_user_id_comes_from_signed_account_detail():
    app = account_detail_app(200, '{"user_id": 1667201533, "ip_whitelist": [], "tier": 2}')
    assert await lookup(app) == "1667201533"


async def test_spot_needs_no_user_id_and_sends_no_request():
    hits: list[str] = []

    async def record(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(status=500)

    app = web.Application()
    app.router.add_get("/{tail:.*}", record)
    assert await lookup(app, Market.SPOT) is None
    assert hits == []


async def test_user_id_lookup_with_wrong_secret_raises_auth_error():
    with pytest.raises(AuthError, match="401"):
        await lookup(account_detail_app(200, '{"user_id": 1}'), creds=Credentials(api_key="gate-key-1234", secret="x"))


@pytest.mark.parametrize(("status", "body"), [(500, "oops"), (200, '{"tier": 2}'), (200, "not json")])
async def test_user_id_lookup_failure_is_connection_lost(status, body):
    with pytest.raises(ConnectionLost):
        await lookup(account_detail_app(status, body))


async def test_user_id_lookup_against_closed_port_is_connection_lost():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoints = Endpoints(ws=f"ws://127.0.0.1:{port}/gate_future", rest=f"http://127.0.0.1:{port}/gate_future")
    async with asyncio.timeout(10), aiohttp.ClientSession() as http:
        with pytest.raises(ConnectionLost):
            await STREAM.open_listen_key(http, CREDS, Market.FUTURE, endpoints, NOW_MS)


async def test_keep_listen_key_does_nothing():
    async with aiohttp.ClientSession() as http:
        endpoints = STREAM.endpoints(Market.FUTURE)
        assert await STREAM.keep_listen_key(http, CREDS, Market.FUTURE, endpoints, "1667201533", NOW_MS) is None
