"""MEXC signing: the published spot vectors, and the exact strings we sign for listenKeys and the contract login."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from exchanges.mexc.auth import login_message, login_payload, sign, signed_spot_query, spot_query

VECTORS = [
    v
    for v in json.loads((Path(__file__).resolve().parents[2] / "data/exchanges/auth_vectors.json").read_text())
    if v["venue"] == "mexc"
]


def _hmac_hex(secret: str, payload: str) -> str:
    return hmac.new(secret.encode("utf-8"), msg=payload.encode("utf-8"), digestmod=hashlib.sha256).hexdigest()


def test_the_vector_file_holds_mexc_examples_2_and_3_only():
    assert sorted(v["id"] for v in VECTORS) == ["mexc-spot-example2-query", "mexc-spot-example3-mixed"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["id"])
def test_sign_reproduces_published_spot_vector(vector):
    assert sign(vector["secret"], vector["payload"]) == vector["expected_signature"]


def test_sign_is_lowercase_hex_of_64_chars():
    signature = sign("45d0b3c26f2644f19bfb98b07741b2f5", "timestamp=1644489390087")
    assert len(signature) == 64 and signature == signature.lower() and int(signature, 16) >= 0


def test_listen_key_create_query_signs_timestamp_only():
    assert spot_query({}, 1700000000123) == "timestamp=1700000000123"
    expected = "timestamp=1700000000123&signature=" + _hmac_hex("s3cr3t", "timestamp=1700000000123")
    assert signed_spot_query("s3cr3t", {}, 1700000000123) == expected


def test_listen_key_keepalive_query_puts_listen_key_before_timestamp():
    payload = "listenKey=pqia91ma19a5s61cv6a81va65sdf19v8a65a1&timestamp=1700000000123"
    expected = payload + "&signature=" + _hmac_hex("s3cr3t", payload)
    query = signed_spot_query("s3cr3t", {"listenKey": "pqia91ma19a5s61cv6a81va65sdf19v8a65a1"}, 1700000000123)
    assert query == expected


def test_contract_login_payload_matches_the_docs_example_string():
    # Contract docs, Private Channels / Signature: "mx0aBYs33eIilxBW5C1657186536762"
    assert login_payload("mx0aBYs33eIilxBW5C", 1657186536762) == "mx0aBYs33eIilxBW5C1657186536762"


def test_contract_login_message_is_exact_for_fixed_key_and_clock():
    message = login_message("mx0aBYs33eIilxBW5C", "45d0b3c26f2644f19bfb98b07741b2f5", 1657186536762)
    assert message == {
        "method": "login",
        "param": {
            "apiKey": "mx0aBYs33eIilxBW5C",
            "reqTime": "1657186536762",
            "signature": _hmac_hex("45d0b3c26f2644f19bfb98b07741b2f5", "mx0aBYs33eIilxBW5C1657186536762"),
        },
    }


def test_contract_login_signature_changes_with_the_clock():
    first = login_message("key", "secret", 1)["param"]["signature"]
    assert first != login_message("key", "secret", 2)["param"]["signature"]
