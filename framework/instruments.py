"""Contract sizes: market metadata the venues register and events read (base units per contract)."""

from __future__ import annotations

from decimal import Decimal

_contract_sizes: dict[str, dict[str, Decimal]] = {}


def register_contract_sizes(exchange: str, sizes: dict[str, Decimal]) -> None:
    """Teach the venue's contract multipliers (base units per contract), e.g. from market metadata.

    Register before fills of those contracts are read: a futures Trade / OrderUpdate takes its `contract_size`
    from here (1 when the symbol is not registered: a venue that counts coins needs nothing).
    """
    _contract_sizes.setdefault(exchange, {}).update(sizes)


def contract_size(exchange: str, raw: str) -> Decimal | None:
    """Base units per contract for a venue symbol, or None when unknown."""
    return _contract_sizes.get(exchange, {}).get(raw)
