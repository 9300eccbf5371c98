"""Hyperliquid socket rules: the handshake's exact messages, URLs, keepalive, classify, and the SPEC."""

from __future__ import annotations

import pytest

from exchanges import get_exchange
from exchanges.connector import Credentials, ExchangeConnector
from exchanges.hyperliquid import SPEC
from exchanges.hyperliquid.stream import HyperliquidStream, handshake
from framework.venue import Endpoints, MessageKind
from framework.errors import AuthError, ConfigError, RateLimited, SubscriptionError
from framework.events import Market

USER = "0x15f43d1f2dee81424afd891943262aa90f22cc2a"
STREAM = HyperliquidStream()


def test_handshake_subscribes_user_fills_order_updates_then_the_account_state_by_address():
    assert handshake(Credentials(wallet_address=USER), Market.FUTURE, 1710000000000) == [
        {"method": "subscribe", "subscription": {"type": "userFills", "user": USER}},
        {"method": "subscribe", "subscription": {"type": "orderUpdates", "user": USER}},
        {"method": "subscribe", "subscription": {"type": "clearinghouseState", "user": USER}},
    ]


def test_handshake_sends_a_checksummed_address_in_lowercase():
    credentials = Credentials(wallet_address="0x15F43D1f2DEE81424AFd891943262aa90F22cc2A")
    messages = handshake(credentials, Market.FUTURE, 0)
    assert [m["subscription"]["user"] for m in messages] == [USER, USER, USER]


def test_handshake_is_pure_whatever_the_clock():
    credentials = Credentials(wallet_address=USER)
    assert handshake(credentials, Market.FUTURE, 1) == handshake(credentials, Market.FUTURE, 2)


@pytest.mark.parametrize("address", [None, "", "0x123", "0x" + "ab" * 32])
def test_handshake_refuses_a_missing_or_malformed_address_as_config_error(address):
    with pytest.raises(ConfigError, match="HYPERLIQUID_WALLET_ADDRESS"):
        handshake(Credentials(wallet_address=address), Market.FUTURE, 0)


def test_acks_expected_one_per_subscription():
    assert STREAM.acks_expected(Market.FUTURE) == len(handshake(Credentials(wallet_address=USER), Market.FUTURE, 0)) == 3


def test_live_endpoints_and_ws_url():
    endpoints = STREAM.endpoints(Market.FUTURE)
    assert endpoints == Endpoints(ws="wss://api.hyperliquid.xyz", rest="https://api.hyperliquid.xyz")
    assert STREAM.ws_url(Market.FUTURE, endpoints, None) == "wss://api.hyperliquid.xyz/ws"


@pytest.mark.parametrize("base", ["ws://127.0.0.1:5555/hyperliquid_future", "ws://127.0.0.1:5555/hyperliquid_future/"])
def test_ws_url_composes_onto_an_overridden_base(base):
    endpoints = Endpoints(ws=base, rest="http://127.0.0.1:5555/hyperliquid_future")
    assert STREAM.ws_url(Market.FUTURE, endpoints, None) == "ws://127.0.0.1:5555/hyperliquid_future/ws"


def test_keepalive_pings_every_50_seconds_within_the_60_second_server_timeout():
    assert STREAM.ping(1710000000000) == {"method": "ping"}
    assert (STREAM.ping_interval, STREAM.silence_limit, STREAM.listen_key_interval) == (50.0, 60.0, None)


async def test_there_is_no_listen_key():
    credentials = Credentials(wallet_address=USER)
    endpoints = STREAM.endpoints(Market.FUTURE)
    assert await STREAM.open_listen_key(None, credentials, Market.FUTURE, endpoints, 0) is None
    assert await STREAM.keep_listen_key(None, credentials, Market.FUTURE, endpoints, "unused", 0) is None


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ({"channel": "subscriptionResponse", "data": {"method": "subscribe", "subscription": {"type": "userFills", "user": USER}}}, MessageKind.ACK),
        ({"channel": "pong"}, MessageKind.PONG),
        ({"channel": "userFills", "data": {"isSnapshot": True, "user": USER, "fills": []}}, MessageKind.EVENT),
        ({"channel": "orderUpdates", "data": []}, MessageKind.EVENT),
        ({"channel": "clearinghouseState", "data": {"dex": "", "user": USER, "clearinghouseState": {}}}, MessageKind.EVENT),
        ({"channel": "user", "data": {"fills": []}}, MessageKind.IGNORE),
        ({"channel": "post", "data": {"id": 1}}, MessageKind.IGNORE),
        ({"channel": ["pong"]}, MessageKind.IGNORE),
        ({}, MessageKind.IGNORE),
        ([], MessageKind.IGNORE),
        ("Websocket connection established.", MessageKind.IGNORE),
    ],
)
def test_classify(message, kind):
    assert STREAM.classify(message, Market.FUTURE) is kind


@pytest.mark.parametrize(
    "text",
    ['Invalid subscription {"type":"userFills","user":"0x12"}', "Cannot track more than 10 total users.", "Already subscribed"],
)
def test_classify_error_channel_raises_subscription_error_with_the_venues_text(text):
    with pytest.raises(SubscriptionError) as caught:
        STREAM.classify({"channel": "error", "data": text}, Market.FUTURE)
    assert not isinstance(caught.value, AuthError)
    assert (caught.value.exchange, str(caught.value)) == ("hyperliquid", f"hyperliquid: {text}")


def test_classify_message_rate_error_raises_rate_limited_for_a_minute():
    with pytest.raises(RateLimited) as caught:
        STREAM.classify({"channel": "error", "data": "Cannot send more than 2000 messages per minute."}, Market.FUTURE)
    assert caught.value.retry_after == 60.0


def test_spec_is_the_registered_future_only_venue_keyed_by_wallet_address():
    assert get_exchange("hyperliquid") is SPEC
    assert (SPEC.name, SPEC.markets, SPEC.credentials_required) == ("hyperliquid", frozenset({Market.FUTURE}), ("wallet_address",))
    assert SPEC.stream.classify({"channel": "pong"}, Market.FUTURE) is MessageKind.PONG


def test_connector_takes_the_wallet_address_and_refuses_spot():
    connector = ExchangeConnector("hyperliquid", "perp", credentials={"wallet_address": USER})
    assert (str(connector.key), connector.credentials.wallet_address) == ("hyperliquid_future", USER)
    with pytest.raises(ConfigError, match="no spot market"):
        ExchangeConnector("hyperliquid", "spot", credentials={"wallet_address": USER})
