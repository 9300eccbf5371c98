"""Binance request signing: HMAC-SHA256 hex over the exact parameter string (pure; the clock is a parameter).

Rules (binance-spot-api-docs web-socket-api.md, "SIGNED request security" / "SIGNED request example (HMAC)"):
a WebSocket-API request signs all its `params` except `signature`, sorted by name and joined `k=v&k=v`
(raw UTF-8, no percent-encoding); `apiKey` is one of the signed params. listenKey REST calls are not
signed at all: they carry the API key in the `X-MBX-APIKEY` header only.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

API_KEY_HEADER = "X-MBX-APIKEY"


def sign(secret: str, payload: str) -> str:
    """Lowercase hex HMAC-SHA256 of `payload` keyed by `secret` (both UTF-8)."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def ws_api_payload(params: Mapping[str, Any]) -> str:
    """The string a WebSocket-API request signs: every param but `signature`, sorted by name, `k=v&k=v`."""
    return "&".join(f"{name}={params[name]}" for name in sorted(params) if name != "signature")


def signed_params(api_key: str, secret: str, now_ms: int) -> dict[str, Any]:
    """`apiKey` + `timestamp` + their `signature`: the params of `userDataStream.subscribe.signature`."""
    params: dict[str, Any] = {"apiKey": api_key, "timestamp": now_ms}
    params["signature"] = sign(secret, ws_api_payload(params))
    return params


def api_key_headers(api_key: str) -> dict[str, str]:
    """Headers of a listenKey REST call (security type USER_STREAM: API key, no signature)."""
    return {API_KEY_HEADER: api_key}
