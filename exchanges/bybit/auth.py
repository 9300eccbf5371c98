"""Bybit v5 private-stream signing: hex HMAC-SHA256 of `GET/realtime<expires>` (pure; the clock is a parameter).

Doc: https://bybit-exchange.github.io/docs/v5/ws/connect (section "Authentication").
"""

from __future__ import annotations

import hashlib
import hmac

# How far ahead of our clock the signature's `expires` lies. Bybit refuses an `expires` that is already
# past on its clock, so the window is the local clock lag we tolerate (ccxt uses the same 10 s; the docs'
# example uses 1 s). It is also how long a captured auth frame could be replayed: keep it short.
EXPIRES_WINDOW_MS = 10_000


def sign(secret: str, payload: str) -> str:
    """Bybit's signing primitive: lowercase hex HMAC-SHA256 of `payload` keyed by the API secret."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def expires_at(now_ms: int) -> int:
    """The `expires` (ms) to sign for a login made at `now_ms`."""
    return now_ms + EXPIRES_WINDOW_MS


def auth_payload(expires: int) -> str:
    """The exact text Bybit signs for a WebSocket login: `GET/realtime` followed by `expires` in ms."""
    return f"GET/realtime{expires}"


def auth_args(api_key: str, secret: str, now_ms: int) -> list:
    """The `args` of the `auth` op: `[api_key, expires, signature]` (expires as a JSON number)."""
    expires = expires_at(now_ms)
    return [api_key, expires, sign(secret, auth_payload(expires))]
