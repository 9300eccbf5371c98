"""MEXC stream rules: URLs, the handshake, pings, frame classes, and the signed listenKey calls against a fake REST."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from urllib.parse import parse_qsl

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from exchanges import get_exchange
from exchanges.connector import Credentials
from exchanges.mexc import SPEC
from exchanges.mexc.stream import MexcStream, handshake
from framework.venue import Endpoints, MessageKind
from framework.errors import AuthError, ConfigError, ConnectionLost, RateLimited, SubscriptionError
from framework.events import Market

CREDS = Credentials(api_key="mx0aBYs33eIilxBW5C", secret="45d0b3c26f2644f19bfb98b07741b2f5")
STREAM = MexcStream()


def _hmac_hex(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def test_spec_is_registered_with_both_markets_and_key_plus_secret():
    assert get_exchange("mexc") is SPEC
    assert SPEC.markets == {Market.SPOT, Market.FUTURE}
    assert SPEC.credentials_required == ("api_key", "secret")
    assert isinstance(SPEC.stream, MexcStream)


def test_spot_handshake_subscribes_to_protobuf_orders_deals_and_the_account():
    assert handshake(CREDS, Market.SPOT, 1700000000000, "lk") == [
        {"method": "SUBSCRIPTION", "params": ["spot@private.orders.v3.api.pb", "spot@private.deals.v3.api.pb",
                                              "spot@private.account.v3.api.pb"]}
    ]


def test_contract_handshake_logs_in_then_filters_to_orders_fills_and_the_account():
    messages = handshake(CREDS, Market.FUTURE, 1657186536762)
    assert messages == [
        {
            "method": "login",
            "param": {
                "apiKey": "mx0aBYs33eIilxBW5C",
                "reqTime": "1657186536762",
                "signature": _hmac_hex("45d0b3c26f2644f19bfb98b07741b2f5", "mx0aBYs33eIilxBW5C1657186536762"),
            },
        },
        {"method": "personal.filter", "param": {"filters": [{"filter": "order"}, {"filter": "order.deal"},
                                                            {"filter": "asset"}, {"filter": "position"}]}},
    ]
    assert handshake(CREDS, Market.FUTURE, 1657186536762) == messages  # pure: same inputs, same messages


def test_live_endpoints_and_socket_urls():
    spot, future = STREAM.endpoints(Market.SPOT), STREAM.endpoints(Market.FUTURE)
    assert (spot.rest, future.rest) == ("https://api.mexc.com", "https://contract.mexc.com")
    assert STREAM.ws_url(Market.SPOT, spot, "abc123") == "wss://wbs-api.mexc.com/ws?listenKey=abc123"
    assert STREAM.ws_url(Market.FUTURE, future, None) == "wss://contract.mexc.com/edge"


def test_socket_urls_compose_onto_an_overridden_base():
    local = Endpoints(ws="ws://127.0.0.1:5555/mexc_spot/", rest="http://127.0.0.1:5555/mexc_spot")
    assert STREAM.ws_url(Market.SPOT, local, "k/1") == "ws://127.0.0.1:5555/mexc_spot/ws?listenKey=k%2F1"
    local = Endpoints(ws="ws://127.0.0.1:5555/mexc_future", rest="http://127.0.0.1:5555/mexc_future")
    assert STREAM.ws_url(Market.FUTURE, local, None) == "ws://127.0.0.1:5555/mexc_future/edge"


def test_spot_url_without_listen_key_is_a_config_error():
    with pytest.raises(ConfigError):
        STREAM.ws_url(Market.SPOT, STREAM.endpoints(Market.SPOT), None)


def test_keepalive_rules():
    assert (STREAM.acks_expected(Market.SPOT), STREAM.acks_expected(Market.FUTURE)) == (1, 2)
    assert 10 <= STREAM.ping_interval <= 20  # contract: every 10-20 s; both drop a link after 60 s
    assert STREAM.ping_interval < STREAM.silence_limit < 60
    assert STREAM.listen_key_interval == 30 * 60


def test_ping_is_the_documented_text_of_each_market():
    assert STREAM.ping(1, Market.SPOT) == {"method": "PING"}
    assert STREAM.ping(1, Market.FUTURE) == {"method": "ping"}
    assert STREAM.ping(1) == {"method": "ping"}  # market unknown: the form both servers answer


@pytest.mark.parametrize(
    "market, message, kind",
    [
        (Market.SPOT, {"id": 0, "code": 0, "msg": "spot@private.orders.v3.api.pb,spot@private.deals.v3.api.pb"},
         MessageKind.ACK),
        (Market.SPOT, {"id": 0, "code": 0, "msg": "PONG"}, MessageKind.PONG),
        (Market.SPOT, b"\x0a\x1c" b"spot@private.deals.v3.api.pb", MessageKind.EVENT),
        (Market.SPOT, {"c": "spot@private.deals.v3.api", "d": {}, "s": "MXUSDT", "t": 1}, MessageKind.EVENT),
        (Market.SPOT, {"c": "spot@public.deals.v3.api@BTCUSDT", "d": {}}, MessageKind.IGNORE),
        (Market.SPOT, "Invalid listen key", MessageKind.LISTEN_KEY_EXPIRED),
        (Market.SPOT, {"something": "else"}, MessageKind.IGNORE),
        (Market.FUTURE, {"channel": "rs.login", "data": "success", "ts": "1587442022003"}, MessageKind.ACK),
        (Market.FUTURE, {"channel": "rs.personal.filter", "data": "success"}, MessageKind.ACK),
        (Market.FUTURE, {"channel": "pong", "data": 1587453241453}, MessageKind.PONG),
        (Market.FUTURE, {"channel": "push.personal.order", "data": {}}, MessageKind.EVENT),
        (Market.FUTURE, {"channel": "push.personal.order.deal", "data": {}}, MessageKind.EVENT),
        (Market.FUTURE, {"channel": "push.personal.position", "data": {}}, MessageKind.EVENT),
        (Market.FUTURE, {"channel": "push.personal.asset", "data": {}}, MessageKind.EVENT),
        (Market.FUTURE, {"channel": "push.personal.adl.level", "data": {}}, MessageKind.IGNORE),
        (Market.FUTURE, [1, 2], MessageKind.IGNORE),
    ],
)  # fmt: skip
def test_classify_tells_acks_pongs_and_events_apart(market, message, kind):
    assert STREAM.classify(message, market) is kind


@pytest.mark.parametrize(
    "message",
    [{"channel": "rs.error", "data": "Signature verification failed!"}, {"channel": "rs.login", "data": "failed"}],
)
def test_classify_refused_contract_login_raises_auth_error_with_venue_text(message):
    with pytest.raises(AuthError, match=message["data"]):
        STREAM.classify(message, Market.FUTURE)


@pytest.mark.parametrize(
    "market, message",
    [
        (Market.SPOT, {"id": 0, "code": 0,
                       "msg": "Not Subscribed successfully! [spot@private.orders.v3.api.pb].  Reason： Blocked!"}),
        (Market.SPOT, {"id": 0, "code": 1, "msg": "bad request"}),
        (Market.FUTURE, {"channel": "rs.personal.filter", "data": "failed"}),
    ],
)  # fmt: skip
def test_classify_refused_subscription_raises_subscription_error(market, message):
    with pytest.raises(SubscriptionError):
        STREAM.classify(message, market)


class FakeMexcRest:
    """A loopback stand-in for `api.mexc.com/api/v3/userDataStream` that checks our signature."""

    def __init__(self, status: int = 200, body: str | None = None) -> None:
        self.status, self.body, self.requests = status, body, []

    async def handle(self, request: web.Request) -> web.Response:
        query = request.query_string
        self.requests.append((request.method, dict(parse_qsl(query)), request.headers.get("X-MEXC-APIKEY")))
        payload, _, signature = query.partition("&signature=")
        if signature != _hmac_hex(CREDS.secret, payload):
            return web.json_response({"code": 700002, "msg": "Signature for this request is not valid."}, status=400)
        if self.body is not None:
            return web.Response(status=self.status, text=self.body, content_type="application/json")
        return web.json_response({"listenKey": "pqia91ma19a5s61cv6a81va65sdf19v8a65a1"})

    async def __aenter__(self) -> Endpoints:
        app = web.Application()
        app.router.add_route("*", "/api/v3/userDataStream", self.handle)
        self.server = TestServer(app, host="127.0.0.1", port=0)
        await self.server.start_server()
        base = str(self.server.make_url("")).rstrip("/")
        return Endpoints(ws=base.replace("http", "ws"), rest=base)

    async def __aexit__(self, *exc) -> None:
        await self.server.close()


async def test_open_listen_key_posts_a_signed_request_and_returns_the_key():
    fake = FakeMexcRest()
    async with asyncio.timeout(5), fake as endpoints, aiohttp.ClientSession() as http:
        key = await STREAM.open_listen_key(http, CREDS, Market.SPOT, endpoints, 1700000000123)
    assert key == "pqia91ma19a5s61cv6a81va65sdf19v8a65a1"
    (method, params, api_key), = fake.requests  # fmt: skip
    assert (method, api_key, params["timestamp"]) == ("POST", "mx0aBYs33eIilxBW5C", "1700000000123")


async def test_keep_listen_key_puts_the_key_signed():
    fake = FakeMexcRest()
    async with asyncio.timeout(5), fake as endpoints, aiohttp.ClientSession() as http:
        await STREAM.keep_listen_key(http, CREDS, Market.SPOT, endpoints, "lk-42", 1700000000123)
    (method, params, _), = fake.requests  # fmt: skip
    assert (method, params["listenKey"], params["timestamp"]) == ("PUT", "lk-42", "1700000000123")


async def test_contract_market_needs_no_listen_key_and_calls_nothing():
    fake = FakeMexcRest()
    async with asyncio.timeout(5), fake as endpoints, aiohttp.ClientSession() as http:
        assert await STREAM.open_listen_key(http, CREDS, Market.FUTURE, endpoints, 1) is None
        await STREAM.keep_listen_key(http, CREDS, Market.FUTURE, endpoints, "lk", 1)
    assert fake.requests == []


async def test_wrong_secret_is_an_auth_error():
    wrong = Credentials(api_key=CREDS.api_key, secret="not-the-secret")
    async with asyncio.timeout(5), FakeMexcRest() as endpoints, aiohttp.ClientSession() as http:
        with pytest.raises(AuthError, match="Signature for this request is not valid"):
            await STREAM.open_listen_key(http, wrong, Market.SPOT, endpoints, 1)


@pytest.mark.parametrize(
    "status, body, error",
    [
        (401, '{"code": 401, "msg": "No authority"}', AuthError),
        (403, "<html>forbidden</html>", AuthError),
        (400, '{"code": 10072, "msg": "Api key info invalid"}', AuthError),
        (429, '{"code": 429, "msg": "Too many requests"}', RateLimited),
        (400, '{"code": 730002, "msg": "listenKey does not exist"}', ConnectionLost),
        (503, "Service Unavailable", ConnectionLost),
        (200, '{"code": 0}', ConnectionLost),  # answered without a listenKey
        (200, "[]", ConnectionLost),
    ],
)
async def test_listen_key_failures_map_to_framework_errors(status, body, error):
    async with asyncio.timeout(5), FakeMexcRest(status, body) as endpoints, aiohttp.ClientSession() as http:
        with pytest.raises(error):
            await STREAM.open_listen_key(http, CREDS, Market.SPOT, endpoints, 1)


async def test_unreachable_rest_is_connection_lost():
    nowhere = Endpoints(ws="ws://127.0.0.1:9", rest="http://127.0.0.1:9")
    async with asyncio.timeout(5), aiohttp.ClientSession() as http:
        with pytest.raises(ConnectionLost):
            await STREAM.keep_listen_key(http, CREDS, Market.SPOT, nowhere, "lk", 1)


class KeyedMexcRest(FakeMexcRest):
    """userDataStream with MEXC's key rules: POST makes a new key, PUT echoes a live key, else 730708."""

    def __init__(self) -> None:
        super().__init__()
        self.live: list[str] = []
        self.put_failures: list[tuple[int, str]] = []  # (status, body) for the next PUTs

    async def handle(self, request: web.Request) -> web.Response:
        params = dict(parse_qsl(request.query_string))
        self.requests.append((request.method, params, request.headers.get("X-MEXC-APIKEY")))
        if request.method == "POST":
            self.live.append(f"lk-{len(self.requests)}")
            return web.json_response({"listenKey": self.live[-1]})
        if self.put_failures:
            status, body = self.put_failures.pop(0)
            return web.Response(status=status, text=body, content_type="application/json")
        if params.get("listenKey") in self.live:
            return web.json_response({"listenKey": params["listenKey"]})
        return web.json_response({"code": 730708, "msg": "listen key information error"}, status=400)


async def test_reconnects_extend_the_last_listen_key_and_post_only_when_it_is_gone():
    stream, fake = MexcStream(), KeyedMexcRest()
    other = Credentials(api_key="mx0another", secret=CREDS.secret)
    async with asyncio.timeout(5), fake as endpoints, aiohttp.ClientSession() as http:
        first = await stream.open_listen_key(http, CREDS, Market.SPOT, endpoints, 1)
        assert await stream.open_listen_key(http, CREDS, Market.SPOT, endpoints, 2) == first  # PUT, no new key
        assert await stream.open_listen_key(http, other, Market.SPOT, endpoints, 3) != first  # its own key
        fake.live.remove(first)  # expired (or deleted) on MEXC's side
        second = await stream.open_listen_key(http, CREDS, Market.SPOT, endpoints, 4)
        assert second not in (first, None)
        assert stream.classify("Invalid listen key", Market.SPOT) is MessageKind.LISTEN_KEY_EXPIRED
        third = await stream.open_listen_key(http, CREDS, Market.SPOT, endpoints, 5)  # refused by the socket: new
    assert third not in (first, second)
    assert [(method, params.get("listenKey")) for method, params, _ in fake.requests] == [
        ("POST", None), ("PUT", first), ("POST", None), ("PUT", first), ("POST", None), ("POST", None),
    ]


async def test_a_refused_put_keeps_the_listen_key_and_its_error():
    stream, fake = MexcStream(), KeyedMexcRest()
    async with asyncio.timeout(5), fake as endpoints, aiohttp.ClientSession() as http:
        key = await stream.open_listen_key(http, CREDS, Market.SPOT, endpoints, 1)
        fake.put_failures = [(429, '{"code": 429, "msg": "Too many requests"}'),
                             (400, '{"code": 10072, "msg": "Api key info invalid"}')]
        with pytest.raises(RateLimited):
            await stream.open_listen_key(http, CREDS, Market.SPOT, endpoints, 2)
        with pytest.raises(AuthError):
            await stream.open_listen_key(http, CREDS, Market.SPOT, endpoints, 3)
        assert await stream.open_listen_key(http, CREDS, Market.SPOT, endpoints, 4) == key
    assert [method for method, _, _ in fake.requests] == ["POST", "PUT", "PUT", "PUT"]
