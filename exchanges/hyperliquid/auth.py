"""Hyperliquid identity: the wallet address that names the private streams, and the keccak-free half of L1 signing.

The private streams need no signature. Orders are signed over keccak256(`action_payload(...)`) with
EIP-712 and secp256k1; keccak256 is not in this Python's hashlib (OpenSSL < 3.2), so `sign` is not here.
"""

from __future__ import annotations

from typing import Any

from framework.errors import ConfigError

_HEX_DIGITS = frozenset("0123456789abcdef")


def wallet_address(text: Any) -> str:
    """The address as the streams want it (lowercase `0x` + 40 hex digits); a ConfigError says how to fix it."""
    address = text.strip().lower() if isinstance(text, str) else ""
    if len(address) != 42 or not address.startswith("0x") or not _HEX_DIGITS.issuperset(address[2:]):
        raise ConfigError(
            f"hyperliquid wallet_address {text!r} is not an address: set HYPERLIQUID_WALLET_ADDRESS "
            "to the account's public 0x address (0x followed by 40 hex digits), not a private key"
        )
    return address


def action_payload(action: dict, nonce: int, vault_address: str | None = None, expires_after: int | None = None) -> bytes:
    """The bytes whose keccak256 is an L1 action's `connectionId`: msgpack(action), nonce, vault, expiry."""
    payload = _pack(action) + nonce.to_bytes(8, "big")
    payload += b"\x00" if vault_address is None else b"\x01" + bytes.fromhex(wallet_address(vault_address)[2:])
    if expires_after is not None:
        payload += b"\x00" + expires_after.to_bytes(8, "big")
    return payload


def _pack(value: Any) -> bytes:
    """MessagePack of the JSON-like values actions hold, in the smallest form (as `msgpack.packb` writes)."""
    if value is None:
        return b"\xc0"
    if value is True or value is False:
        return b"\xc3" if value else b"\xc2"
    if type(value) is int:
        if 0 <= value < 0x80:
            return bytes((value,))
        if -32 <= value < 0:
            return (value & 0xFF).to_bytes(1, "big")
        for width, unsigned, signed in ((1, 0xCC, 0xD0), (2, 0xCD, 0xD1), (4, 0xCE, 0xD2), (8, 0xCF, 0xD3)):
            if 0 <= value < 1 << (8 * width):
                return bytes((unsigned,)) + value.to_bytes(width, "big")
            if -(1 << (8 * width - 1)) <= value < 0:
                return bytes((signed,)) + value.to_bytes(width, "big", signed=True)
        raise ValueError(f"integer {value} does not fit in 64 bits")
    if isinstance(value, str):
        data = value.encode()
        return _header(len(data), 0xA0, 32, (0xD9, 1), (0xDA, 2), (0xDB, 4)) + data
    if isinstance(value, (list, tuple)):
        return _header(len(value), 0x90, 16, (0xDC, 2), (0xDD, 4)) + b"".join(map(_pack, value))
    if isinstance(value, dict):
        body = b"".join(_pack(k) + _pack(v) for k, v in value.items())
        return _header(len(value), 0x80, 16, (0xDE, 2), (0xDF, 4)) + body
    raise TypeError(f"cannot put {type(value).__name__} {value!r} in an action: use str, int, bool, list, dict")


def _header(size: int, fix: int, fix_limit: int, *wider: tuple[int, int]) -> bytes:
    if size < fix_limit:
        return bytes((fix | size,))
    for marker, width in wider:
        if size < 1 << (8 * width):
            return bytes((marker,)) + size.to_bytes(width, "big")
    raise ValueError(f"{size} items or bytes is too many for MessagePack")
