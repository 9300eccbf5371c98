"""The simulator one streamer hosts for a whole namespace (offline scale-out): where it is and its paper
credentials, in the namespace's config bucket, for every streamer and strategy process to attach to."""

from __future__ import annotations

import json
from typing import Any

from framework.events import ConnectionKey
from framework.scaleout.jetstream import Namespace

SIMULATOR_TTL = 10.0  # seconds the shared simulator's entry lives without its streamer rewriting it
SIMULATOR_ENTRY = "simulator"


async def shared_simulator(js: Any, ns: Namespace) -> dict | None:
    """The simulator a streamer of this namespace hosts: its endpoints and paper credentials (None: none runs)."""
    try:
        config = await js.key_value(ns.config_bucket)
        entry = await config.get(SIMULATOR_ENTRY)
    except Exception:  # noqa: BLE001 - no bucket, no entry, expired
        return None
    return json.loads(entry.value) if entry.value else None


def simulator_connector(state: dict, key: ConnectionKey) -> Any:
    """A venue connector for a key of a shared simulator (None: it does not serve that key)."""
    from exchanges.connector import ExchangeConnector
    from framework.venue import Endpoints

    entry = state.get("keys", {}).get(f"{key.exchange}_{key.market.value}")
    if entry is None or key.account != "default":
        return None
    return ExchangeConnector(key.exchange, key.market, credentials=entry["credentials"],
                             endpoints=Endpoints(ws=entry["ws"], rest=entry["rest"]))
