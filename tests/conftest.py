"""Shared fixtures: console logging, a real PostgreSQL schema per test, stores and pools on temp files."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from pathlib import Path

import psycopg
import pytest

from framework.console import configure_console
from framework.pool import ConnectionPool
from framework.store import open_store

PG_URL = os.environ.get("TRADESYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

configure_console("WARNING")

# Hypothesis keeps its example database and caches out of the repository (an explicit
# HYPOTHESIS_STORAGE_DIRECTORY wins); read before any test asks Hypothesis for storage.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "tradesync-hypothesis"))


def _pg_available() -> str | None:
    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The PostgreSQL URL for tests. In CI an unreachable server fails the run; elsewhere it skips."""
    problem = _pg_available()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is required in CI: {problem}")
        pytest.skip(f"PostgreSQL at {PG_URL} not reachable: {problem}")
    return PG_URL


def make_schema_url(base: str, schema: str) -> str:
    return f"{base}{'&' if '?' in base else '?'}schema={schema}"


@pytest.fixture
def pg_url(pg_server):
    """A fresh schema in the test database for this test, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield make_schema_url(pg_server, schema)
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'trades.sqlite'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
async def store(store_url):
    store = open_store(store_url)
    await store.start()
    yield store
    await store.stop()


@pytest.fixture
async def pool(tmp_path):
    pool = ConnectionPool(f"sqlite:///{tmp_path / 'trades.sqlite'}", tmp_path / "logs")
    await pool.start()
    yield pool
    await asyncio.wait_for(pool.stop(), 10)
