"""Golden data for venue tests: the official sample messages and signature vectors kept in tests/data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data" / "exchanges"


def load_samples(venue: str) -> list[dict]:
    return json.loads((DATA / f"{venue}.samples.json").read_text())


def load_auth_vectors(venue: str) -> list[dict]:
    return [v for v in json.loads((DATA / "auth_vectors.json").read_text()) if v["venue"] == venue]


@pytest.fixture
def samples(request) -> list[dict]:
    return load_samples(request.param)
