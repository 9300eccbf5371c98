"""Venue packages and connectors. `get_exchange(name)` returns a venue's frozen SPEC."""

from __future__ import annotations

import importlib

from framework.errors import ConfigError

EXCHANGES = ("binance", "bybit", "mexc", "gate", "bitget", "hyperliquid")
_ALIASES = {"gateio": "gate", "gate.io": "gate"}


def get_exchange(name: str):
    """The venue's `SPEC`; a ConfigError lists the known venues for an unknown name."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in EXCHANGES:
        raise ConfigError(f"unknown exchange {name!r}: use one of {', '.join(EXCHANGES)}")
    try:
        module = importlib.import_module(f"exchanges.{key}")
    except ModuleNotFoundError as exc:
        if exc.name != f"exchanges.{key}":
            raise
        raise ConfigError(f"exchange {key!r} is not built yet in this version") from None
    return module.SPEC
