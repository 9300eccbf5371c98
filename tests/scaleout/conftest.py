"""Scale-out fixtures: the machine's NATS with JetStream (CI fails without it; elsewhere the tests skip) and a
unique namespace per test (its stream and KV buckets deleted afterwards)."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

import pytest

from tests.conftest import IN_CI

NATS_URL = os.environ.get("TRADESYNC_TEST_NATS", "nats://127.0.0.1:4222")


def _nats_problem() -> str | None:
    host, port = NATS_URL.removeprefix("nats://").rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        return None
    except OSError as exc:
        return str(exc)


@pytest.fixture(scope="session")
def nats_url() -> str:
    problem = _nats_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"NATS with JetStream at {NATS_URL} is required in CI: {problem}")
        pytest.skip(f"NATS at {NATS_URL} not reachable: {problem}")
    return NATS_URL


async def drop_namespace(url: str, name: str) -> None:
    """Delete a namespace's stream and KV buckets (what a test made on the machine's NATS)."""
    from framework.scaleout.jetstream import Namespace, connect, remove_namespace

    client = await connect(url, "tradesync-test-cleanup")
    try:
        await remove_namespace(client.jetstream(), Namespace(name))
    finally:
        await client.close()


@pytest.fixture
def namespace(nats_url):
    """A namespace of this test's own on the machine's NATS, removed afterwards."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    asyncio.run(drop_namespace(nats_url, name))
