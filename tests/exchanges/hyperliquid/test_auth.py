"""Hyperliquid identity and L1 signing: address checks, the action payload, the SDK's signature vectors."""

from __future__ import annotations

import coincurve
import pytest
from Crypto.Hash import keccak

from exchanges.hyperliquid.auth import (
    action_hash,
    action_payload,
    l1_digest,
    sign,
    sign_l1_action,
    wallet_address,
)
from framework.errors import ConfigError
from tests.exchanges.conftest import load_auth_vectors

VECTORS = {v["id"]: v for v in load_auth_vectors("hyperliquid")}


def test_auth_vectors_file_holds_the_six_sdk_vectors():
    assert sorted(VECTORS) == [
        "hl-action-hash-phantom-agent",
        "hl-l1-dummy-mainnet",
        "hl-l1-dummy-testnet",
        "hl-l1-order-cloid-mainnet",
        "hl-l1-order-mainnet",
        "hl-l1-order-testnet",
    ]


# --- the wallet address ------------------------------------------------------------------------


def test_wallet_address_keeps_a_lowercase_address():
    address = "0x15f43d1f2dee81424afd891943262aa90f22cc2a"
    assert wallet_address(address) == address


def test_wallet_address_lowercases_a_checksummed_address_and_trims_it():
    assert wallet_address(" 0x15F43D1f2DEE81424AFd891943262aa90F22cc2A\n") == "0x15f43d1f2dee81424afd891943262aa90f22cc2a"


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "",
        "15f43d1f2dee81424afd891943262aa90f22cc2a",  # no 0x
        "0x15f43d1f2dee81424afd891943262aa90f22cc2",  # 39 hex digits
        "0x15f43d1f2dee81424afd891943262aa90f22cc2a0",  # 41 hex digits
        "0x15f43d1f2dee81424afd891943262aa90f22cc2g",  # not hex
        "0x0123456789012345678901234567890123456789012345678901234567890123",  # a private key
        1234,
    ],
)
def test_wallet_address_refuses_what_is_not_an_address(bad):
    with pytest.raises(ConfigError, match="HYPERLIQUID_WALLET_ADDRESS"):
        wallet_address(bad)


# --- the action payload (the keccak-free half of L1 signing) -----------------------------------


def test_action_payload_of_the_dummy_action_written_out_by_hand():
    payload = action_payload({"type": "dummy", "num": 100000000000}, 0)
    assert payload == bytes.fromhex(
        "82"  # map of 2
        "a4" + b"type".hex() + "a5" + b"dummy".hex() +
        "a3" + b"num".hex() + "cf" "000000174876e800"  # uint64 100000000000
        "0000000000000000"  # nonce 0, 8 bytes big-endian
        "00"  # no vault
    )


def test_action_payload_with_vault_and_expiry_appends_them_after_the_nonce():
    payload = action_payload({"a": 1}, 1677777606040, vault_address="0x" + "AB" * 20, expires_after=1677777666040)
    assert payload == bytes.fromhex(
        "81a16101"  # {"a": 1}
        "00000186a3569598"  # nonce 1677777606040 = 0x186a3569598
        "01" + "ab" * 20  # vault flag + 20 address bytes
        + "00" "00000186a3577ff8"  # expiry flag + 1677777666040 = 0x186a3577ff8
    )


@pytest.mark.parametrize(
    ("value", "packed"),
    [
        (None, "c0"),
        (True, "c3"),
        (False, "c2"),
        (0, "00"),
        (127, "7f"),
        (128, "cc80"),
        (255, "ccff"),
        (256, "cd0100"),
        (65536, "ce00010000"),
        (2**32, "cf0000000100000000"),
        (-1, "ff"),
        (-32, "e0"),
        (-33, "d0df"),
        (-129, "d1ff7f"),
        (-(2**31) - 1, "d3ffffffff7fffffff"),
        ("a" * 31, "bf" + "61" * 31),
        ("a" * 32, "d920" + "61" * 32),
        ("é", "a2c3a9"),
        (list(range(15)), "9f" + "".join(f"{i:02x}" for i in range(15))),
        (list(range(16)), "dc0010" + "".join(f"{i:02x}" for i in range(16))),
    ],
)
def test_action_payload_packs_values_in_msgpack_smallest_form(value, packed):
    assert action_payload({"v": value}, 0) == bytes.fromhex("81a176" + packed) + bytes(9)


@pytest.mark.parametrize("bad", [1.5, b"raw", 2**64, {1, 2}])
def test_action_payload_refuses_values_an_action_cannot_hold(bad):
    with pytest.raises((TypeError, ValueError)):
        action_payload({"v": bad}, 0)


# --- signing: the SDK vectors reproduced by our code alone -------------------------------------

L1_VECTOR_IDS = [
    "hl-l1-dummy-mainnet",
    "hl-l1-dummy-testnet",
    "hl-l1-order-mainnet",
    "hl-l1-order-testnet",
    "hl-l1-order-cloid-mainnet",
]
SDK_KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
# The address eth_account / ethers derive for SDK_KEY, as published with it in public ethers examples
# (auth_vectors.json gives no address, so this is the independent anchor for recovery).
SDK_KEY_ADDRESS = "0x14791697260e4c9a71f18484c9f997b308e59325"
OTHER_KEY = "0x" + "11" * 32
ORDER_ACTION = VECTORS["hl-l1-order-mainnet"]["action"]
# hyperliquid-python-sdk tests/signing_test.py test_l1_action_signing_matches_with_vault (dummy action, nonce 0):
# not in auth_vectors.json; kept here because they sign through the vault branch of the payload.
VAULT_VECTORS = [
    (True, {"r": "0x3c548db75e479f8012acf3000ca3a6b05606bc2ec0c29c50c515066a326239",
            "s": "0x4d402be7396ce74fbba3795769cda45aec00dc3125a984f2a9f23177b190da2c", "v": 28}),
    (False, {"r": "0xe281d2fb5c6e25ca01601f878e4d69c965bb598b88fac58e475dd1f5e56c362b",
             "s": "0x7ddad27e9a238d045c035bc606349d075d5c5cd00a6cd1da23ab5c39d4ef0f60", "v": 27}),
]


def address_of_signer(signature: str, digest: str) -> str:
    """Recover the signing address from `sign`'s output, independently of our code: libsecp256k1 + keccak."""
    raw = bytes.fromhex(signature[2:])
    recoverable = raw[:64] + bytes((raw[64] - 27,))  # libsecp256k1 wants the recovery id 0|1, not v 27|28
    public = coincurve.PublicKey.from_signature_and_message(recoverable, bytes.fromhex(digest[2:]), hasher=None)
    return "0x" + keccak.new(digest_bits=256, data=public.format(compressed=False)[1:]).digest()[-20:].hex()


def l1_digest_of(vector: dict) -> str:
    return l1_digest(action_hash(vector["action"], vector["nonce"], vector["vault_address"]), vector["is_mainnet"])


def test_phantom_agent_connection_id_is_our_action_hash():
    vector = VECTORS["hl-action-hash-phantom-agent"]
    assert action_hash(vector["action"], vector["nonce"], vector["vault_address"]) == vector["expected_signature"]


@pytest.mark.parametrize("vector_id", L1_VECTOR_IDS)
def test_sign_l1_action_reproduces_the_sdk_vector(vector_id):
    vector = VECTORS[vector_id]
    signature = sign_l1_action(vector["private_key"], vector["action"], vector["nonce"], vector["vault_address"],
                               is_mainnet=vector["is_mainnet"])
    assert signature == vector["expected_signature"]


@pytest.mark.parametrize(("is_mainnet", "expected"), VAULT_VECTORS, ids=["mainnet", "testnet"])
def test_sign_l1_action_for_a_vault_reproduces_the_sdk_vector(is_mainnet, expected):
    action = {"type": "dummy", "num": 100000000000}
    vault = "0x1719884eb866cb12b2287399b15f7db5e7d775ea"
    assert sign_l1_action(SDK_KEY, action, 0, vault, is_mainnet=is_mainnet) == expected


@pytest.mark.parametrize("vector_id", L1_VECTOR_IDS)
def test_sign_returns_r_s_v_as_65_bytes_of_0x_hex_matching_the_vector(vector_id):
    vector = VECTORS[vector_id]
    signature = sign(vector["private_key"], l1_digest_of(vector))
    expected = vector["expected_signature"]
    assert len(signature) == 2 + 130 and signature == signature.lower()
    assert int(signature[2:66], 16) == int(expected["r"], 16)
    assert int(signature[66:130], 16) == int(expected["s"], 16)
    assert int(signature[130:], 16) == expected["v"]


@pytest.mark.parametrize("vector_id", L1_VECTOR_IDS)
def test_sign_recovers_to_the_address_of_the_vector_key(vector_id):
    vector = VECTORS[vector_id]
    assert vector["private_key"] == SDK_KEY
    digest = l1_digest_of(vector)
    assert address_of_signer(sign(vector["private_key"], digest), digest) == SDK_KEY_ADDRESS


def test_sign_with_another_key_gives_another_signature_from_another_address():
    digest = l1_digest_of(VECTORS["hl-l1-order-mainnet"])
    ours, other = sign(SDK_KEY, digest), sign(OTHER_KEY, digest)
    assert other != ours
    assert address_of_signer(other, digest) != SDK_KEY_ADDRESS
    assert sign_l1_action(OTHER_KEY, ORDER_ACTION, 0) != VECTORS["hl-l1-order-mainnet"]["expected_signature"]


def test_mainnet_and_testnet_sign_different_digests_for_the_same_action():
    connection_id = action_hash(ORDER_ACTION, 0)
    assert l1_digest(connection_id, True) != l1_digest(connection_id, False)


def test_expires_after_changes_the_connection_id_and_the_signature():
    assert action_hash(ORDER_ACTION, 0, expires_after=1) != action_hash(ORDER_ACTION, 0)
    assert sign_l1_action(SDK_KEY, ORDER_ACTION, 0, expires_after=1) != sign_l1_action(SDK_KEY, ORDER_ACTION, 0)


def test_sign_accepts_uppercase_hex_and_surrounding_whitespace():
    digest = l1_digest_of(VECTORS["hl-l1-dummy-mainnet"])
    shouting = " 0x" + SDK_KEY[2:].upper() + "\n"
    assert sign(shouting, "0x" + digest[2:].upper()) == sign(SDK_KEY, digest)


# --- signing: bad inputs -----------------------------------------------------------------------

DIGEST = "0x" + "ab" * 32
BAD_HEX32 = [
    None,
    "",
    b"\x01" * 32,  # bytes, not 0x-hex
    "01" * 32,  # no 0x
    "0x" + "01" * 31,  # 31 bytes
    "0x" + "01" * 33,  # 33 bytes
    "0x" + "0g" * 32,  # not hex
    SDK_KEY_ADDRESS,  # an address
]


@pytest.mark.parametrize("bad", BAD_HEX32)
def test_sign_refuses_a_secret_that_is_not_32_bytes_of_hex_without_echoing_it(bad):
    with pytest.raises(ValueError, match="secret .* must be 0x followed by 64 hex digits") as caught:
        sign(bad, DIGEST)
    if isinstance(bad, str) and bad:
        assert bad not in str(caught.value)


@pytest.mark.parametrize(
    "bad", ["0x" + "00" * 32, "0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", "0x" + "ff" * 32],
    ids=["zero", "curve-order", "above-order"],
)
def test_sign_refuses_a_secret_outside_the_curve_without_echoing_it(bad):
    with pytest.raises(ValueError, match="not a secp256k1 private key") as caught:
        sign(bad, DIGEST)
    assert bad[2:] not in str(caught.value)


@pytest.mark.parametrize("bad", BAD_HEX32)
def test_sign_refuses_a_payload_that_is_not_a_32_byte_digest(bad):
    with pytest.raises(ValueError, match="payload .* must be 0x followed by 64 hex digits"):
        sign(SDK_KEY, bad)


@pytest.mark.parametrize("bad", [-1, 2**64, 1.0, "0", True, None])
def test_sign_l1_action_refuses_a_nonce_that_is_not_a_uint64(bad):
    with pytest.raises(ValueError, match="nonce must be an int from 0 to 2\\*\\*64 - 1"):
        sign_l1_action(SDK_KEY, ORDER_ACTION, bad)


@pytest.mark.parametrize("bad", [-1, 2**64, 1.5])
def test_sign_l1_action_refuses_an_expiry_that_is_not_a_uint64(bad):
    with pytest.raises(ValueError, match="expires_after must be an int"):
        sign_l1_action(SDK_KEY, ORDER_ACTION, 0, expires_after=bad)


@pytest.mark.parametrize("bad", ["", "0x1719884eb866cb12b2287399b15f7db5e7d775e", SDK_KEY, 1234])
def test_sign_l1_action_refuses_a_vault_that_is_not_an_address(bad):
    with pytest.raises(ValueError, match="vault_address .* is not an address"):
        sign_l1_action(SDK_KEY, ORDER_ACTION, 0, vault_address=bad)
