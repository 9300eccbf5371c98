"""Bybit login signing: the HMAC primitive against published vectors and a hand-rolled HMAC, and the exact payload."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from exchanges.bybit.auth import EXPIRES_WINDOW_MS, auth_args, auth_payload, expires_at, sign
from tests.exchanges.conftest import load_auth_vectors


def _hmac_sha256_by_hand(key: bytes, message: bytes) -> str:
    """RFC 2104 HMAC written out with hashlib only: an independent check of `sign`."""
    block = 64
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + message).digest()
    return hashlib.sha256(bytes(b ^ 0x5C for b in key) + inner).hexdigest()


def test_sign_reproduces_rfc4231_test_case_2():
    # RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?"
    assert sign("Jefe", "what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_sign_reproduces_published_hex_hmac_sha256_vector():
    # Bybit publishes no vector; its primitive is the same hex HMAC-SHA256 as Binance's verified one.
    vector = next(v for v in load_auth_vectors("binance") if v["algorithm"] == "HMAC-SHA256 hex")
    assert sign(vector["secret"], vector["payload"]) == vector["expected_signature"]


def test_auth_payload_is_get_realtime_then_expires():
    assert auth_payload(1662350400000) == "GET/realtime1662350400000"


def test_expires_lies_ten_seconds_after_now():
    assert EXPIRES_WINDOW_MS == 10_000
    assert expires_at(1_700_000_000_000) == 1_700_000_010_000


def test_auth_args_sign_the_hand_built_payload():
    api_key, secret = "XXXXXXXXXX", "YYYYYYYYYYYYYYYYYYYY"
    args = auth_args(api_key, secret, now_ms=1_662_350_390_000)
    assert args == [
        "XXXXXXXXXX",
        1_662_350_400_000,
        _hmac_sha256_by_hand(b"YYYYYYYYYYYYYYYYYYYY", b"GET/realtime1662350400000"),
    ]
    assert isinstance(args[1], int)


@given(secret=st.text(min_size=1, max_size=200), payload=st.text(max_size=300))
def test_sign_agrees_with_hand_rolled_hmac(secret, payload):
    expected = _hmac_sha256_by_hand(secret.encode(), payload.encode())
    assert sign(secret, payload) == expected
    assert len(expected) == 64 and expected == expected.lower()
