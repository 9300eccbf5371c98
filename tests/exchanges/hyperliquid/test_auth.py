"""Hyperliquid identity and signing input: address checks, the action payload, the SDK's signature vectors."""

from __future__ import annotations

import pytest

from exchanges.hyperliquid.auth import action_payload, wallet_address
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


# --- the SDK vectors, with keccak256 and secp256k1 from ccxt's own dependencies ----------------


@pytest.fixture(scope="module")
def keccak():
    module = pytest.importorskip("ccxt.static_dependencies.keccak")
    return lambda data: bytes(module.SHA3(data))


def test_phantom_agent_connection_id_is_keccak_of_our_payload(keccak):
    vector = VECTORS["hl-action-hash-phantom-agent"]
    payload = action_payload(vector["action"], vector["nonce"], vector["vault_address"])
    assert "0x" + keccak(payload).hex() == vector["expected_signature"]


@pytest.mark.parametrize(
    "vector_id",
    ["hl-l1-dummy-mainnet", "hl-l1-dummy-testnet", "hl-l1-order-mainnet", "hl-l1-order-testnet", "hl-l1-order-cloid-mainnet"],
)
def test_l1_signature_vector_is_reproduced_from_our_payload(keccak, vector_id):
    coincurve = pytest.importorskip("coincurve")
    vector = VECTORS[vector_id]
    connection_id = keccak(action_payload(vector["action"], vector["nonce"], vector["vault_address"]))
    domain_type = keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    domain = keccak(domain_type + keccak(b"Exchange") + keccak(b"1") + (1337).to_bytes(32, "big") + bytes(32))
    agent = keccak(keccak(b"Agent(string source,bytes32 connectionId)") + keccak(b"a" if vector["is_mainnet"] else b"b") + connection_id)
    digest = keccak(b"\x19\x01" + domain + agent)
    signature = coincurve.PrivateKey(bytes.fromhex(vector["private_key"][2:])).sign_recoverable(digest, hasher=None)
    expected = vector["expected_signature"]
    assert int.from_bytes(signature[:32], "big") == int(expected["r"], 16)
    assert int.from_bytes(signature[32:64], "big") == int(expected["s"], 16)
    assert 27 + signature[64] == expected["v"]
