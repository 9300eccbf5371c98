"""No signature, signed URL, listenKey or secret in anything a run writes: console log records, the trade sync log
files, dead letters, connection errors. A pool and a strategy run against the simulator while REST calls fail
(429 / 500: ccxt's error text carries the whole signed URL) and listenKeys expire; then every byte is grepped for
every signature the simulator checked, every listenKey it issued, and the credentials."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from loguru import logger

from exchanges.simulator import Simulator
from framework.pool import ConnectionPool
from framework.retry import reconnect_policy, rest_call_policy
from framework.strategy import BaseStrategy
from framework.sync_log import redact, redact_exception

pytestmark = pytest.mark.timeout(90)
FAST_REST = rest_call_policy(initial=0.01, maximum=0.02, jitter=0.01, attempts=3)


class Recorder(BaseStrategy):
    def on_start(self):
        self.trades = []

    def on_trade(self, trade):
        self.trades.append(trade)


async def until(predicate, timeout=20.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def _captured() -> tuple[list[str], int]:
    """Every loguru record of the process, as a console sink would print it (message, fields, exception)."""
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG", format="{message} | {extra}\n{exception}",
                      backtrace=False, diagnose=False, catch=False)
    return lines, sink


async def test_no_signature_listen_key_or_secret_in_anything_a_failing_run_writes(tmp_path):
    """Binance spot's REST history fails (429 / 5xx) after a drop; Binance USD-M's listenKey expires."""
    spot, future = ("spot", "BTC/USDT"), ("future", "BTC/USDT:USDT")
    lines, sink = _captured()
    try:
        async with Simulator(exchanges=["binance"], seed=12) as sim:
            venue = sim.venue("binance")
            async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
                policy = reconnect_policy(initial=0.05, maximum=0.2, jitter=0.05, give_up_after=30)
                connectors = [sim.connector("binance", market, retry_policy=policy, backfill_retry_policy=FAST_REST)
                              for market, _ in (spot, future)]
                s1 = Recorder("s1", connectors[:1], symbols=[spot[1]], pool=pool)
                s2 = Recorder("s2", connectors[1:], symbols=[future[1]], pool=pool)
                await s1.start()
                await s2.start()
                trades = lambda: len(s1.trades) + len(s2.trades)  # noqa: E731
                for owner, (market, symbol) in (("s1", spot), ("s2", future)):
                    await sim.fill("binance", market, symbol, "buy", "0.010", "65000", client_order_id=f"{owner}-1")
                await until(lambda: trades() == 2)
                # Spot: the socket drops and every REST call fails for a while (the backfill's history and order
                # queries: ccxt's error text carries the whole signed URL).
                sim.fail_rest("binance", "spot", [429, 500, 500, 502, 500, 503, 500, 429, 500])
                await sim.drop("binance", "spot")
                await sim.fill("binance", "spot", spot[1], "sell", "0.004", "65010", client_order_id="s1-2")
                await until(lambda: not sim.faults.rest_failures[("binance", connectors[0].key.market)], 30)
                await until(lambda: trades() == 3, 30)
                # USD-M: the listenKey expires, the socket is told, a new key is made, the stream resumes.
                first_keys = set(venue.listen_keys)
                await sim.expire_listen_keys("binance", "future")
                await sim.fill("binance", "future", future[1], "buy", "0.002", "64990", client_order_id="s2-3")
                await until(lambda: trades() == 4, 30)
                await pool.flush(10)
                issued = first_keys | set(venue.listen_keys)
                status = pool.get_connection_status()
                errors = [repr(pool.connection(c.key).error) for c in connectors]
                dead = await pool.store.fetch_dead_letters()
                await s1.stop()
                await s2.stop()
    finally:
        logger.remove(sink)

    written = "\n".join(lines + errors + [repr(status), repr(dead)])
    written += "\n".join(p.read_text(errors="replace") for p in Path(tmp_path / "logs").rglob("*") if p.is_file())
    creds = sim.credentials_for("binance")
    assert first_keys and issued - first_keys and issued <= venue.secrets_seen  # a key, expired, then a new one
    assert len(venue.secrets_seen - issued) >= 6  # signatures the simulator checked
    assert "simulated failure" in written  # the failures were written down
    secrets = {s for s in venue.secrets_seen | {creds.secret, creds.api_key} if s}
    leaked = sorted(s[:12] + "…" for s in secrets if s in written)
    assert not leaked, f"{len(leaked)} secrets written: {leaked}"


def test_redact_masks_signed_urls_listen_keys_and_header_echoes():
    listen_key = "pqia91ma19a5s61cv6a81va65sdf19v8a65a1a5s61cv6a81va65sdf19v8a65a1"
    text = redact(
        "binance GET http://127.0.0.1:1/fapi/v1/userTrades?symbol=BTCUSDT&timestamp=1700000000000"
        "&signature=3f1e0c9b7a2d 500 Internal Server Error "
        f"ws://127.0.0.1:2/ws/{listen_key} http://h/ws?listenKey={listen_key}&x=1 "
        "{'X-MBX-APIKEY': 'simbinance0123456789', 'ACCESS-SIGN': 'c2lnbmF0dXJl', 'KEY': 'gatekey98765'} "
        f'{{"e":"listenKeyExpired","listenKey":"{listen_key}"}} key=binance_future '
        "postgresql://trader:pg-s3cret@127.0.0.1:5432/test"
    )
    for secret in ("3f1e0c9b7a2d", listen_key, "simbinance0123456789", "c2lnbmF0dXJl", "gatekey98765", "pg-s3cret"):
        assert secret not in text
    assert "signature=<redacted>" in text and "symbol=BTCUSDT&timestamp=1700000000000" in text
    assert "'ACCESS-SIGN': '<redacted>'" in text and listen_key[-4:] in text
    assert "key=binance_future" in text and "postgresql://trader:****@127.0.0.1" in text  # readable otherwise


def test_redact_exception_rewrites_a_ccxt_error_and_its_cause():
    import ccxt

    try:
        try:
            raise ccxt.ExchangeNotAvailable("mexc GET http://h/api/v3/myTrades?timestamp=1&signature=deadbeef01 503")
        except ccxt.BaseError as inner:
            raise RuntimeError("wrapped: GET http://h/api/v3/order?signature=deadbeef02") from inner
    except RuntimeError as exc:
        redact_exception(exc)
        assert "deadbeef02" not in str(exc) and "deadbeef01" not in str(exc.__cause__)
        assert "signature=<redacted>" in str(exc.__cause__)
