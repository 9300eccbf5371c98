"""MEXC signing: lowercase hex HMAC-SHA256, for spot REST listenKey calls and the contract WebSocket login.

Pure: the clock comes in as `now_ms`. Spot signs the query string (totalParams = query + body, and
our listenKey calls have no body); the contract login signs `apiKey + reqTime`.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode


def sign(secret: str, payload: str) -> str:
    """Lowercase hex HMAC-SHA256 of `payload` keyed with `secret`."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def spot_query(params: dict[str, str], now_ms: int) -> str:
    """The spot query string to sign: `params` in order, then `timestamp=<now_ms>`."""
    return urlencode({**params, "timestamp": now_ms})


def signed_spot_query(secret: str, params: dict[str, str], now_ms: int) -> str:
    """`spot_query(...)` followed by `&signature=<hex over it>`, ready to put after `?`."""
    query = spot_query(params, now_ms)
    return f"{query}&signature={sign(secret, query)}"


def login_payload(api_key: str, now_ms: int) -> str:
    """The contract login's string to sign: the API key then reqTime (ms), no separator."""
    return f"{api_key}{now_ms}"


def login_message(api_key: str, secret: str, now_ms: int) -> dict:
    """The contract WebSocket `login` request for these credentials at `now_ms`."""
    return {
        "method": "login",
        "param": {"apiKey": api_key, "reqTime": str(now_ms), "signature": sign(secret, login_payload(api_key, now_ms))},
    }
