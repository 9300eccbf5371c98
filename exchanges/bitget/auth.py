"""Bitget v2 WebSocket login: the pre-sign string, its base64 HMAC-SHA256 signature and the login op. Pure.

Docs: https://www.bitget.com/api-doc/common/websocket-intro (Login). The string signed is
`timestamp + "GET" + "/user/verify"`; the timestamp is sent in **seconds** as text. The zh page says
"milliseconds", but the page's own example (`"1538054050"`), ccxt (`str(self.seconds())`) and the official
SDKs send seconds: the server checks the string we signed, within 30 s of its clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

VERIFY_METHOD = "GET"
VERIFY_PATH = "/user/verify"


def sign(secret: str, payload: str) -> str:
    """Base64 of HMAC-SHA256(secret, payload): Bitget's signing primitive (REST and WebSocket alike)."""
    digest = hmac.new(secret.encode("utf-8"), payload.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def login_timestamp(now_ms: int) -> str:
    """The login timestamp: whole seconds since the epoch, as text."""
    return str(now_ms // 1000)


def login_payload(timestamp: str) -> str:
    """The exact string the login signs, e.g. `1700000000GET/user/verify`."""
    return f"{timestamp}{VERIFY_METHOD}{VERIFY_PATH}"


def login_message(api_key: str, secret: str, passphrase: str, now_ms: int) -> dict:
    """The `login` op, signed at `now_ms` (clock passed in, never read here)."""
    timestamp = login_timestamp(now_ms)
    return {
        "op": "login",
        "args": [
            {
                "apiKey": api_key,
                "passphrase": passphrase,
                "timestamp": timestamp,
                "sign": sign(secret, login_payload(timestamp)),
            }
        ],
    }
