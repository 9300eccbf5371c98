"""Bitget stream rules: URLs, the exact handshake, the text ping, and how each frame is classified."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac

import pytest

from exchanges import get_exchange
from exchanges.bitget import SPEC
from exchanges.bitget.account import account_subscribe
from exchanges.bitget.stream import BitgetStream, handshake
from exchanges.connector import Credentials
from framework.venue import Endpoints, MessageKind
from framework.errors import AuthError, RateLimited, SubscriptionError
from framework.events import Market

STREAM = BitgetStream()
CREDENTIALS = Credentials(api_key="bg_test_key", secret="test-secret", passphrase="pass phrase")


def test_get_exchange_returns_the_bitget_spec():
    assert get_exchange("bitget") is SPEC
    assert SPEC.name == "bitget"
    assert SPEC.markets == frozenset({Market.SPOT, Market.FUTURE})
    assert SPEC.credentials_required == ("api_key", "secret", "passphrase")


@pytest.mark.parametrize("market", [Market.SPOT, Market.FUTURE])
def test_live_private_url_is_v2_ws_private(market):
    endpoints = STREAM.endpoints(market)
    assert endpoints == Endpoints(ws="wss://ws.bitget.com", rest="https://api.bitget.com")
    assert STREAM.ws_url(market, endpoints, None) == "wss://ws.bitget.com/v2/ws/private"


def test_simulator_override_keeps_host_and_prefix():
    endpoints = Endpoints(ws="ws://127.0.0.1:5555/bitget_spot/", rest="http://127.0.0.1:5555/bitget_spot")
    assert STREAM.ws_url(Market.SPOT, endpoints, None) == "ws://127.0.0.1:5555/bitget_spot/v2/ws/private"


@pytest.mark.parametrize("market, inst_type", [(Market.SPOT, "SPOT"), (Market.FUTURE, "USDT-FUTURES")])
def test_handshake_is_login_then_orders_and_fill_then_account_subscription(market, inst_type):
    messages = handshake(CREDENTIALS, market, 1_700_000_000_456)
    expected_sign = base64.b64encode(
        hmac.new(b"test-secret", b"1700000000GET/user/verify", hashlib.sha256).digest()
    ).decode()
    assert messages == [
        {
            "op": "login",
            "args": [
                {"apiKey": "bg_test_key", "passphrase": "pass phrase", "timestamp": "1700000000", "sign": expected_sign}
            ],
        },
        {
            "op": "subscribe",
            "args": [
                {"instType": inst_type, "channel": "orders", "instId": "default"},
                {"instType": inst_type, "channel": "fill", "instId": "default"},
            ],
        },
        account_subscribe(market),
    ]


def test_handshake_is_the_same_for_the_same_inputs():
    first = handshake(CREDENTIALS, Market.SPOT, 1_700_000_000_000)
    assert handshake(CREDENTIALS, Market.SPOT, 1_700_000_000_000) == first
    assert handshake(CREDENTIALS, Market.SPOT, 1_700_000_001_000) != first


def test_keepalive_is_text_ping_every_30_seconds_with_a_pong_deadline():
    assert STREAM.ping(1_700_000_000_000) == "ping"
    assert STREAM.ping_interval == 30.0
    assert STREAM.ping_interval < STREAM.silence_limit <= 120.0
    assert STREAM.listen_key_interval is None


@pytest.mark.parametrize("market", [Market.SPOT, Market.FUTURE])
def test_handshake_produces_login_and_one_ack_per_channel(market):
    assert STREAM.acks_expected(market) == {Market.SPOT: 4, Market.FUTURE: 5}[market]  # + account (+ positions)


@pytest.mark.parametrize(
    "frame",
    [
        {"event": "login", "code": 0},
        {"event": "login", "code": "0", "msg": ""},
        {"event": "subscribe", "arg": {"instType": "SPOT", "channel": "orders", "instId": "default"}},
        {"event": "subscribe", "arg": {"instType": "USDT-FUTURES", "channel": "fill", "instId": "default"}},
    ],
)
def test_login_and_subscribe_answers_are_acks(frame):
    assert STREAM.classify(frame, Market.SPOT) is MessageKind.ACK


def test_text_pong_is_pong():
    assert STREAM.classify("pong", Market.FUTURE) is MessageKind.PONG


@pytest.mark.parametrize("channel", ["orders", "fill"])
def test_orders_and_fill_pushes_are_events(channel):
    frame = {"action": "update", "arg": {"instType": "SPOT", "channel": channel, "instId": "default"}, "data": []}
    assert STREAM.classify(frame, Market.SPOT) is MessageKind.EVENT


@pytest.mark.parametrize(
    "frame",
    [
        "hello",
        b"\x00",
        [1, 2],
        {"action": "snapshot", "arg": {"instType": "SPOT", "channel": "positions", "instId": "default"}, "data": []},
        {"event": "unsubscribe", "arg": {"instType": "SPOT", "channel": "orders", "instId": "default"}},
        {"data": []},
    ],
)
def test_other_frames_are_ignored(frame):
    assert STREAM.classify(frame, Market.SPOT) is MessageKind.IGNORE


@pytest.mark.parametrize(
    "frame",
    [
        {"event": "error", "code": 30005, "msg": "login failed"},
        {"event": "error", "code": "30015", "msg": "Invalid sign"},
        {"event": "error", "code": 30012, "msg": "invalid ACCESS_PASSPHRASE"},
        {"event": "login", "code": "30013", "msg": "invalid ACCESS_TIMESTAMP"},
    ],
)
def test_login_refusal_raises_auth_error_with_venue_message(frame):
    with pytest.raises(AuthError) as caught:
        STREAM.classify(frame, Market.SPOT)
    assert caught.value.exchange == "bitget"
    assert frame["msg"] in str(caught.value)


def test_refused_subscription_raises_subscription_error():
    frame = {
        "event": "error",
        "arg": {"instType": "SPOT", "channel": "orderz", "instId": "default"},
        "code": 30001,
        "msg": "instType:SPOT,channel:orderz,instId:default doesn't exist",
    }
    with pytest.raises(SubscriptionError, match="doesn't exist"):
        STREAM.classify(frame, Market.SPOT)


def test_too_many_requests_raises_rate_limited():
    with pytest.raises(RateLimited):
        STREAM.classify({"event": "error", "code": 30006, "msg": "request too many"}, Market.FUTURE)


async def test_no_listen_key_is_needed():
    endpoints = STREAM.endpoints(Market.SPOT)
    key = await asyncio.wait_for(STREAM.open_listen_key(None, CREDENTIALS, Market.SPOT, endpoints, 0), timeout=1)
    assert key is None
    kept = await asyncio.wait_for(STREAM.keep_listen_key(None, CREDENTIALS, Market.SPOT, endpoints, "k", 0), timeout=1)
    assert kept is None
