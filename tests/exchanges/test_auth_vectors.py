"""Every HMAC signature vector in auth_vectors.json is reproduced by its venue's `auth.sign`.

(The Hyperliquid vectors are EIP-712 secp256k1 signatures, reproduced in tests/exchanges/hyperliquid.)
"""

import importlib
import json

import pytest

from tests.exchanges.conftest import DATA

VECTORS = [v for v in json.loads((DATA / "auth_vectors.json").read_text()) if v["algorithm"].startswith("HMAC")]


def test_the_file_holds_the_expected_hmac_vectors():
    assert sorted({v["venue"] for v in VECTORS}) == ["binance", "mexc"] and len(VECTORS) == 6


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_sign_reproduces_the_published_vector(vector):
    sign = importlib.import_module(f"exchanges.{vector['venue']}.auth").sign
    assert sign(vector["secret"], vector["payload"]) == vector["expected_signature"]
