"""Gate signing: the APIv4 docs' published REST examples, and the WebSocket channel string built by hand."""

from __future__ import annotations

import hashlib
import hmac

from exchanges.gate.auth import (
    channel_auth,
    channel_payload,
    rest_headers,
    rest_payload,
    seconds,
    sign,
)

# APIv4 docs, "API Signature string generation" → Examples: key "key", secret "secret", time 1541993715.
DOC_SECRET = "secret"
EMPTY_BODY_SHA512 = (
    "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
)
DOC_LIST_ORDERS_SIGN = (
    "55f84ea195d6fe57ce62464daaa7c3c02fa9d1dde954e4c898289c9a2407a3d6"
    "fb3faf24deff16790d726b66ac9f74526668b13bd01029199cc4fcc522418b8a"
)
DOC_CREATE_ORDER_BODY = '{"contract":"BTC_USD","type":"limit","size":100,"price":6800,"time_in_force":"gtc"}'
DOC_CREATE_ORDER_BODY_SHA512 = (
    "ad3c169203dc3026558f01b4df307641fa1fa361f086b2306658886d5708767b"
    "1854797c68d9e62fef2f991645aa82673622ebf417e091d0bd22bafe5d956cca"
)
DOC_CREATE_ORDER_SIGN = (
    "eae42da914a590ddf727473aff25fc87d50b64783941061f47a3fdb92742541f"
    "c4c2c14017581b4199a1418d54471c269c03a38d788d802e2c306c37636389f0"
)


def test_rest_payload_of_docs_list_orders_example_is_the_published_string():
    payload = rest_payload("get", "/api/v4/futures/orders", "contract=BTC_USD&status=finished&limit=50", "", 1541993715)
    assert payload == (
        "GET\n/api/v4/futures/orders\ncontract=BTC_USD&status=finished&limit=50\n" + EMPTY_BODY_SHA512 + "\n1541993715"
    )


def test_sign_reproduces_docs_list_orders_signature():
    payload = rest_payload("GET", "/api/v4/futures/orders", "contract=BTC_USD&status=finished&limit=50", "", 1541993715)
    assert sign(DOC_SECRET, payload) == DOC_LIST_ORDERS_SIGN


def test_sign_reproduces_docs_create_order_signature_with_hashed_body():
    payload = rest_payload("POST", "/api/v4/futures/orders", "", DOC_CREATE_ORDER_BODY, 1541993715)
    assert payload == "POST\n/api/v4/futures/orders\n\n" + DOC_CREATE_ORDER_BODY_SHA512 + "\n1541993715"
    assert sign(DOC_SECRET, payload) == DOC_CREATE_ORDER_SIGN


def test_rest_headers_use_whole_seconds_of_now_ms():
    headers = rest_headers(
        "key", DOC_SECRET, "GET", "/api/v4/futures/orders", "contract=BTC_USD&status=finished&limit=50", "",
        1541993715999,
    )
    assert headers == {"KEY": "key", "Timestamp": "1541993715", "SIGN": DOC_LIST_ORDERS_SIGN}


def test_channel_payload_is_channel_event_time_joined_by_ampersands():
    payload = channel_payload("spot.orders", "subscribe", 1611541000)
    assert payload == "channel=spot.orders&event=subscribe&time=1611541000"


def test_channel_auth_signs_the_channel_string_with_hex_hmac_sha512():
    by_hand = hmac.new(
        b"my-secret", b"channel=futures.usertrades&event=subscribe&time=1700000000", hashlib.sha512
    ).hexdigest()
    auth = channel_auth("my-key", "my-secret", "futures.usertrades", "subscribe", 1700000000)
    assert auth == {"method": "api_key", "KEY": "my-key", "SIGN": by_hand}
    assert len(auth["SIGN"]) == 128 and auth["SIGN"] == auth["SIGN"].lower()


def test_sign_differs_when_event_differs():
    subscribe = channel_auth("k", "s", "spot.orders", "subscribe", 1)["SIGN"]
    unsubscribe = channel_auth("k", "s", "spot.orders", "unsubscribe", 1)["SIGN"]
    assert subscribe != unsubscribe


def test_seconds_floors_milliseconds():
    assert seconds(1_700_000_000_999) == 1_700_000_000
    assert seconds(1_700_000_001_000) == 1_700_000_001
