"""Bybit stream rules: URLs, the login + subscribe handshake, ping, classify, and the exported SPEC."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from exchanges import get_exchange
from exchanges.bybit import SPEC
from exchanges.bybit.normalize import normalize
from exchanges.bybit.stream import BybitStream, handshake
from exchanges.connector import Credentials
from framework.venue import Endpoints, MessageKind
from framework.errors import AuthError, SubscriptionError
from framework.events import Market

STREAM = BybitStream()
CREDENTIALS = Credentials(api_key="qQ3eXaMpLeKeY12345", secret="s3cr3t-ExAmPlE-0987654321abcdef")


def test_spec_exports_spot_and_future_with_key_and_secret():
    assert get_exchange("bybit") is SPEC
    assert SPEC.name == "bybit"
    assert SPEC.markets == frozenset({Market.SPOT, Market.FUTURE})
    assert SPEC.credentials_required == ("api_key", "secret")
    assert SPEC.normalize is normalize and SPEC.handshake is handshake
    assert isinstance(SPEC.stream, BybitStream)


@pytest.mark.parametrize("market", [Market.SPOT, Market.FUTURE])
def test_live_endpoints_share_one_private_socket_url(market):
    endpoints = STREAM.endpoints(market)
    assert endpoints == Endpoints(ws="wss://stream.bybit.com/v5/private", rest="https://api.bybit.com")
    assert STREAM.ws_url(market, endpoints, None) == "wss://stream.bybit.com/v5/private"


@pytest.mark.parametrize(
    "ws", ["ws://127.0.0.1:5555/bybit_spot", "wss://stream-testnet.bybit.com/v5/private"]
)
def test_ws_url_is_the_overridden_endpoint_as_given(ws):
    endpoints = Endpoints(ws=ws, rest="http://127.0.0.1:5555/bybit_spot")
    assert STREAM.ws_url(Market.SPOT, endpoints, None) == ws


def test_handshake_logs_in_then_subscribes_to_all_in_one_topics_then_account_topics():
    messages = handshake(CREDENTIALS, Market.FUTURE, 1_700_000_000_000)
    expires = 1_700_000_010_000
    signature = hmac.new(
        b"s3cr3t-ExAmPlE-0987654321abcdef", b"GET/realtime1700000010000", hashlib.sha256
    ).hexdigest()
    assert messages == [
        {"req_id": "auth-1700000000000", "op": "auth", "args": ["qQ3eXaMpLeKeY12345", expires, signature]},
        {"req_id": "subscribe-1700000000000", "op": "subscribe", "args": ["order", "execution"]},
        {"req_id": "account-1700000000000", "op": "subscribe", "args": ["wallet", "position"]},
    ]


def test_handshake_is_pure_and_only_the_account_topics_depend_on_the_market():
    first = handshake(CREDENTIALS, Market.SPOT, 1_700_000_000_000)
    future = handshake(CREDENTIALS, Market.FUTURE, 1_700_000_000_000)
    assert first[:2] == future[:2] and first[2] == {**future[2], "args": ["wallet"]}
    assert first == handshake(CREDENTIALS, Market.SPOT, 1_700_000_000_000, None)
    assert first != handshake(CREDENTIALS, Market.SPOT, 1_700_000_000_001)


def test_handshake_acks_are_auth_and_two_subscribes():
    assert STREAM.acks_expected(Market.SPOT) == STREAM.acks_expected(Market.FUTURE) == 3


def test_keepalive_is_an_op_ping_every_20_seconds():
    assert STREAM.ping(1_700_000_000_000) == {"req_id": "ping-1700000000000", "op": "ping"}
    assert STREAM.ping_interval == 20.0
    assert STREAM.silence_limit > STREAM.ping_interval * 2
    assert STREAM.listen_key_interval is None


async def test_bybit_needs_no_listen_key():
    endpoints = STREAM.endpoints(Market.SPOT)
    assert await STREAM.open_listen_key(None, CREDENTIALS, Market.SPOT, endpoints, 0) is None
    assert await STREAM.keep_listen_key(None, CREDENTIALS, Market.SPOT, endpoints, "none", 0) is None


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ({"success": True, "ret_msg": "", "op": "auth", "conn_id": "cejreaspqfh3sjdnldmg-p"}, MessageKind.ACK),
        ({"success": True, "ret_msg": "", "op": "subscribe", "conn_id": "cejreassvfrsfvb9v1a0-2m"}, MessageKind.ACK),
        ({"retCode": 0, "retMsg": "OK", "op": "auth", "connId": "cjvi8gqhpo9tmfnp2ps0-4"}, MessageKind.ACK),
        ({"req_id": "test", "op": "pong", "args": ["1675418560633"], "conn_id": "cfcb820tfqr7sql"}, MessageKind.PONG),
        ({"success": True, "ret_msg": "pong", "conn_id": "0970e817-426e", "req_id": "", "op": "ping"},
         MessageKind.PONG),
        ({"topic": "execution", "id": "1", "creationTime": 1, "data": []}, MessageKind.EVENT),
        ({"topic": "execution.fast", "creationTime": 1, "data": []}, MessageKind.EVENT),
        ({"topic": "order", "id": "1", "creationTime": 1, "data": []}, MessageKind.EVENT),
        ({"topic": "order.spot", "id": "1", "creationTime": 1, "data": []}, MessageKind.EVENT),
        ({"topic": "wallet", "id": "1", "creationTime": 1, "data": []}, MessageKind.EVENT),
        ({"topic": "position.linear", "id": "1", "creationTime": 1, "data": []}, MessageKind.EVENT),
        ({"topic": "greeks", "id": "1", "creationTime": 1, "data": []}, MessageKind.IGNORE),
        ({"topic": "orderbook.50.BTCUSDT", "data": {}}, MessageKind.IGNORE),
        ({"success": True, "ret_msg": "", "op": "unsubscribe"}, MessageKind.IGNORE),
        ({"op": "ping"}, MessageKind.IGNORE),
        ([1, 2], MessageKind.IGNORE),
        ("pong", MessageKind.IGNORE),
        (b"\x00", MessageKind.IGNORE),
    ],
)
def test_classify_sorts_frames(message, kind):
    assert STREAM.classify(message, Market.SPOT) is kind


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"success": False, "ret_msg": "error:invalid signature", "op": "auth", "conn_id": "c1"},
         "error:invalid signature"),
        ({"success": False, "ret_msg": "Params Error", "op": "auth", "conn_id": "c2"}, "Params Error"),
        ({"retCode": 10004, "retMsg": "Invalid sign", "op": "auth"}, "Invalid sign"),
    ],
)
def test_classify_refused_login_raises_auth_error_with_venue_reason(message, reason):
    with pytest.raises(AuthError, match=reason) as info:
        STREAM.classify(message, Market.FUTURE)
    assert info.value.exchange == "bybit"


def test_classify_refused_subscription_raises_subscription_error():
    message = {"success": False, "ret_msg": "error:handler not found,topic:executions", "op": "subscribe",
               "conn_id": "c3"}
    with pytest.raises(SubscriptionError, match="handler not found") as info:
        STREAM.classify(message, Market.SPOT)
    assert not isinstance(info.value, AuthError)
    assert info.value.exchange == "bybit"
