"""Gate APIv4 signing (pure): hex HMAC-SHA512 over a private channel's string or a REST request's string.

Docs: https://www.gate.io/docs/developers/apiv4/ws/en/#authentication (WebSocket) and
https://www.gate.io/docs/developers/apiv4/en/#api-signature-string-generation (REST).
"""

from __future__ import annotations

import hashlib
import hmac


def sign(secret: str, payload: str) -> str:
    """Hex HMAC-SHA512 of `payload` keyed with the APIv4 secret."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha512).hexdigest()


def seconds(now_ms: int) -> int:
    """Gate's request time: whole seconds (it must be within 60 s of the server's clock)."""
    return now_ms // 1000


def channel_payload(channel: str, event: str, time_s: int) -> str:
    """What a private subscribe/unsubscribe signs: `channel=spot.orders&event=subscribe&time=1611541000`."""
    return f"channel={channel}&event={event}&time={time_s}"


def channel_auth(api_key: str, secret: str, channel: str, event: str, time_s: int) -> dict[str, str]:
    """The `auth` object every private channel request carries."""
    return {"method": "api_key", "KEY": api_key, "SIGN": sign(secret, channel_payload(channel, event, time_s))}


def rest_payload(method: str, path: str, query: str, body: str, time_s: int | str) -> str:
    """What a REST request signs: method, path, raw query, hex SHA-512 of the body, time; one per line.

    `time_s` is the `Timestamp` header: whole seconds, or the header's own text when checking a request.
    """
    body_hash = hashlib.sha512(body.encode()).hexdigest()
    return "\n".join((method.upper(), path, query, body_hash, str(time_s)))


def rest_headers(
    api_key: str, secret: str, method: str, path: str, query: str, body: str, now_ms: int
) -> dict[str, str]:
    """The `KEY` / `Timestamp` / `SIGN` headers of a signed REST request."""
    time_s = seconds(now_ms)
    return {
        "KEY": api_key,
        "Timestamp": str(time_s),
        "SIGN": sign(secret, rest_payload(method, path, query, body, time_s)),
    }
