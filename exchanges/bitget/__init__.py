"""Bitget (v2 private WebSocket): spot and USDT-margined futures fills and order updates."""

from __future__ import annotations

from exchanges.bitget.normalize import normalize
from exchanges.bitget.rest import BACKFILL
from exchanges.bitget.stream import BitgetStream, handshake
from framework.venue import ExchangeSpec
from framework.events import Market

SPEC = ExchangeSpec(
    name="bitget",
    markets=frozenset({Market.SPOT, Market.FUTURE}),
    credentials_required=("api_key", "secret", "passphrase"),
    handshake=handshake,
    normalize=normalize,
    stream=BitgetStream(),
    backfill=BACKFILL,
)
