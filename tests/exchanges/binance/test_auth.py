"""Binance signing: the docs' published HMAC vectors, the WS-API sort rule, and the subscription params."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from exchanges.binance.auth import api_key_headers, sign, signed_params, ws_api_payload
from tests.exchanges.conftest import load_auth_vectors

VECTORS = load_auth_vectors("binance")
DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


def test_all_four_published_binance_vectors_are_present():
    assert sorted(v["id"] for v in VECTORS) == [
        "binance-rest-hmac-ascii",
        "binance-rest-hmac-nonascii",
        "binance-wsapi-hmac-ascii",
        "binance-wsapi-hmac-nonascii",
    ]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_sign_reproduces_published_vector(vector):
    assert sign(vector["secret"], vector["payload"]) == vector["expected_signature"]


def test_ws_api_payload_sorts_params_by_name_as_the_docs_example():
    # web-socket-api.md "SIGNED request example (HMAC)": the order.place params, in the docs' request order.
    params = {
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01000000",
        "price": "52000.00",
        "recvWindow": 100,
        "timestamp": 1645423376532,
        "apiKey": DOC_KEY,
    }
    payload = ws_api_payload(params)
    assert payload == (
        f"apiKey={DOC_KEY}&price=52000.00&quantity=0.01000000&recvWindow=100&side=SELL"
        "&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT"
    )
    assert sign(DOC_SECRET, payload) == "aa1b5712c094bc4e57c05a1a5c1fd8d88dcd628338ea863fec7b88e59fe2db24"


def test_ws_api_payload_keeps_non_ascii_raw_as_the_docs_second_example():
    params = {
        "symbol": "１２３４５６",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "1.00000000",
        "price": "0.10000000",
        "recvWindow": 5000,
        "timestamp": 1645423376532,
        "apiKey": DOC_KEY,
    }
    signature = sign(DOC_SECRET, ws_api_payload(params))
    assert signature == "b33892ae8e687c939f4468c6268ddd4c40ac1af18ad19a064864c47bae0752cd"


def test_ws_api_payload_leaves_out_the_signature_param():
    assert ws_api_payload({"timestamp": 2, "signature": "ff", "apiKey": "k"}) == "apiKey=k&timestamp=2"


def test_signed_params_for_subscription_sign_apikey_and_timestamp():
    params = signed_params("my-key", "my-secret", 1747385641636)
    by_hand = hmac.new(b"my-secret", b"apiKey=my-key&timestamp=1747385641636", hashlib.sha256).hexdigest()
    assert params == {"apiKey": "my-key", "timestamp": 1747385641636, "signature": by_hand}


def test_signed_params_with_doc_key_gives_known_signature():
    params = signed_params(DOC_KEY, DOC_SECRET, 1747385641636)
    payload = f"apiKey={DOC_KEY}&timestamp=1747385641636".encode()
    assert params["signature"] == hmac.new(DOC_SECRET.encode(), payload, hashlib.sha256).hexdigest()
    assert len(params["signature"]) == 64 and params["signature"] == params["signature"].lower()


def test_listen_key_headers_carry_only_the_api_key():
    assert api_key_headers("my-key") == {"X-MBX-APIKEY": "my-key"}
