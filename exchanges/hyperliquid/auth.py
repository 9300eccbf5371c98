"""Hyperliquid identity and L1 signing: the wallet address that names the private streams, and the
EIP-712 secp256k1 signature an order (any L1 action) carries. Pure: no I/O, the nonce is a parameter."""

from __future__ import annotations

from typing import Any

import coincurve
from Crypto.Hash import keccak

from framework.errors import ConfigError

_HEX_DIGITS = frozenset("0123456789abcdef")
_CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141  # secp256k1 n


def _keccak(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


# EIP-712 domain of L1 actions {name "Exchange", version "1", chainId 1337, verifyingContract 0x0}, and the Agent type.
_L1_DOMAIN = _keccak(_keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
                     + _keccak(b"Exchange") + _keccak(b"1") + (1337).to_bytes(32, "big") + bytes(32))
_AGENT_TYPE = _keccak(b"Agent(string source,bytes32 connectionId)")


def wallet_address(text: Any) -> str:
    """The address as the streams want it (lowercase `0x` + 40 hex digits); a ConfigError says how to fix it."""
    if not _is_hex(text, 20):
        raise ConfigError(
            f"hyperliquid wallet_address {text!r} is not an address: set HYPERLIQUID_WALLET_ADDRESS "
            "to the account's public 0x address (0x followed by 40 hex digits), not a private key"
        )
    return text.strip().lower()


def sign(secret: str, payload: str) -> str:
    """Sign a 32-byte digest with secp256k1, deterministically (RFC 6979), the way Ethereum writes it.

    `secret`: the private key of the wallet, or of the API wallet approved for it, as `0x` + 64 hex digits.
    `payload`: the digest, `0x` + 64 hex digits, signed as it is (not hashed again); for an L1 action it is
    `l1_digest(action_hash(...), is_mainnet)`. Returns `0x` + 130 hex digits: r (32 bytes) ‖ s (32 bytes,
    low-s) ‖ v (1 byte, 27 or 28). A ValueError names what is wrong (never echoing the key).
    """
    digest = _bytes32(payload, "payload (the 32-byte digest to sign)")
    key = _bytes32(secret, "secret (the signing wallet's private key)")
    if not 0 < int.from_bytes(key, "big") < _CURVE_ORDER:
        raise ValueError("hyperliquid secret is not a secp256k1 private key (zero or not below the curve order)")
    signature = coincurve.PrivateKey(key).sign_recoverable(digest, hasher=None)
    return "0x" + signature[:64].hex() + f"{27 + signature[64]:02x}"


def sign_l1_action(secret: str, action: dict, nonce: int, vault_address: str | None = None,
                   expires_after: int | None = None, is_mainnet: bool = True) -> dict[str, Any]:
    """An /exchange request's `signature`: {"r": hex, "s": hex, "v": 27|28}, hex without leading zeros (as the SDK)."""
    signature = sign(secret, l1_digest(action_hash(action, nonce, vault_address, expires_after), is_mainnet))
    return {"r": hex(int(signature[2:66], 16)), "s": hex(int(signature[66:130], 16)), "v": int(signature[130:], 16)}


def l1_digest(connection_id: str, is_mainnet: bool) -> str:
    """The EIP-712 digest of `Agent{source: "a" (mainnet) | "b" (testnet), connectionId}` in the L1 domain (0x-hex)."""
    agent = _keccak(_AGENT_TYPE + _keccak(b"a" if is_mainnet else b"b") + _bytes32(connection_id, "connection_id"))
    return "0x" + _keccak(b"\x19\x01" + _L1_DOMAIN + agent).hex()


def action_hash(action: dict, nonce: int, vault_address: str | None = None, expires_after: int | None = None) -> str:
    """An L1 action's `connectionId`: keccak256 of `action_payload(...)`, as 0x-hex."""
    return "0x" + _keccak(action_payload(action, nonce, vault_address, expires_after)).hex()


def action_payload(action: dict, nonce: int, vault_address: str | None = None, expires_after: int | None = None) -> bytes:
    """The bytes whose keccak256 is an L1 action's `connectionId`: msgpack(action), nonce, vault, expiry."""
    payload = _pack(action) + _uint64(nonce, "nonce")
    if vault_address is not None and not _is_hex(vault_address, 20):
        raise ValueError(f"hyperliquid vault_address {vault_address!r} is not an address: pass 0x and 40 hex digits")
    payload += b"\x00" if vault_address is None else b"\x01" + bytes.fromhex(vault_address.strip()[2:])
    if expires_after is not None:
        payload += b"\x00" + _uint64(expires_after, "expires_after")
    return payload


def _is_hex(text: Any, size: int) -> bool:
    digits = text.strip().lower() if isinstance(text, str) else ""
    return len(digits) == 2 + 2 * size and digits.startswith("0x") and _HEX_DIGITS.issuperset(digits[2:])


def _bytes32(text: Any, what: str) -> bytes:
    if not _is_hex(text, 32):
        got = f"{len(text)} characters" if isinstance(text, str) else type(text).__name__
        raise ValueError(f"hyperliquid {what} must be 0x followed by 64 hex digits, got {got}")
    return bytes.fromhex(text.strip()[2:])


def _uint64(value: Any, what: str) -> bytes:
    if type(value) is not int or not 0 <= value < 1 << 64:
        raise ValueError(f"hyperliquid {what} must be an int from 0 to 2**64 - 1 (milliseconds), got {value!r}")
    return value.to_bytes(8, "big")


def _pack(value: Any) -> bytes:
    """MessagePack of the JSON-like values actions hold, in the smallest form (as `msgpack.packb` writes)."""
    if value is None:
        return b"\xc0"
    if value is True or value is False:
        return b"\xc3" if value else b"\xc2"
    if type(value) is int:
        if -32 <= value < 0x80:  # positive and negative fixint
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
