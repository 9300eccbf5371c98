"""audit_trades.py as an operator runs it: a standalone simulator, run_strategy.py attached to it, then the audit."""

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from framework.events import now_ms

ROOT = Path(__file__).resolve().parents[2]
AUDIT = [sys.executable, str(ROOT / "scripts" / "audit_trades.py")]
RUN = [sys.executable, str(ROOT / "scripts" / "run_strategy.py")]
SYMBOL = "BTC/USDT"


@pytest.fixture
def simulator(tmp_path):
    """`python -m exchanges.simulator` in its own process (Bitget: every fill comes on `orders` and `fill`)."""
    state_file = tmp_path / "sim.json"
    proc = subprocess.Popen([sys.executable, "-m", "exchanges.simulator", "--exchange", "bitget", "--port", "0",
                             "--seed", "3", "--state-file", str(state_file)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not state_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the simulator did not start"
            time.sleep(0.05)
        yield json.loads(state_file.read_text())
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def sim_fills(http, control, n, parts=1) -> int:
    """Orders filled at the simulator; returns how many fills the venue made."""
    made = 0
    for i in range(n):
        async with http.post(f"{control}/fill", json={
            "exchange": "bitget", "market": "spot", "symbol": SYMBOL, "side": "buy" if i % 2 else "sell",
            "amount": "0.01", "price": f"65{i:03d}.5", "parts": parts}) as response:
            assert response.status == 200, await response.text()
            made += len((await response.json())["fills"])
        await asyncio.sleep(0.01)
    return made


def sim_env(state) -> dict[str, str]:
    """The environment `python -m exchanges.simulator` tells an operator to export for Bitget."""
    creds = state["keys"]["bitget_spot"]["credentials"]
    return dict(os.environ, BITGET_API_KEY=creds["api_key"], BITGET_API_SECRET=creds["secret"],
                BITGET_PASSPHRASE=creds["passphrase"], PYTHONUNBUFFERED="1")


async def run_strategy_window(state, workdir) -> tuple[int, int, int]:
    """run_strategy.py attached to the running simulator (--sim-url); fills before, during and after its
    run. Returns the window it ran (ms) and the fills the venue made in it."""
    async with aiohttp.ClientSession() as http:
        await sim_fills(http, state["control"], 2)  # before the start: the start-up backfill reads them
        since = now_ms()
        runner = await asyncio.create_subprocess_exec(
            *RUN, "--sim-url", state["base_url"], "--exchange", "bitget", "--market", "spot", "--symbol", SYMBOL,
            "--duration", "4", "--strategy", "position_tracker", cwd=workdir, env=sim_env(state), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        first = await runner.stdout.readline()  # "tradesync: PositionTracker ... against the running simulator"
        assert b"running simulator" in first, first + await runner.stderr.read()
        await asyncio.sleep(0.5)  # subscribed
        made = await sim_fills(http, state["control"], 6, parts=2)
        out, err = await runner.communicate()
        until = now_ms()
        assert runner.returncode == 0, (out + err).decode()
        assert f"fills stored: {made + 2},".encode() in out  # the 2 before the start came by backfill
        await asyncio.sleep(0.01)
        await sim_fills(http, state["control"], 3)  # after the strategy stopped: not in the store
    return since, until, made


def audit(state, db, *args):
    return subprocess.run(AUDIT + ["--exchange", "bitget", "--market", "spot", "--db", str(db),
                                   "--rest-url", state["keys"]["bitget_spot"]["rest"], *args],
                          capture_output=True, text=True, timeout=60, env=sim_env(state), cwd=db.parent)


def test_audit_of_the_window_a_strategy_ran_finds_nothing_missing_or_duplicated(simulator, tmp_path):
    since, until, made = asyncio.run(asyncio.wait_for(run_strategy_window(simulator, tmp_path), 60))
    db = tmp_path / "data" / "trades.sqlite"  # run_strategy.py's default store

    result = audit(simulator, db, "--since", str(since), "--until", str(until))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert made >= 6 and lines[0] == f"venue fills: {made}, stored fills: {made}"
    assert lines[1] == "missing: 0, duplicated: 0, mismatched: 0, not at the venue: 0"

    later = audit(simulator, db, "--since", str(since))  # up to now: the 3 fills made after the stop
    assert later.returncode == 1
    assert "missing: 3, duplicated: 0" in later.stdout
    assert len(re.findall(r"^  missing BTC/USDT trade ", later.stdout, re.M)) == 3


def test_a_database_that_does_not_exist_is_refused_in_one_line_with_exit_2(tmp_path):
    result = subprocess.run(AUDIT + ["--exchange", "bitget", "--market", "spot", "--since", "24h",
                                     "--rest-url", "http://127.0.0.1:9/bitget_spot", "--db", "nope.sqlite"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("audit_trades.py: error: no database at nope.sqlite")
    assert not (tmp_path / "nope.sqlite").exists() and result.stdout == ""


def test_until_before_since_is_refused_in_one_line_with_exit_2(tmp_path):
    (tmp_path / "t.sqlite").touch()
    result = subprocess.run(AUDIT + ["--exchange", "bitget", "--market", "spot", "--since", "1h", "--until", "2h",
                                     "--rest-url", "http://127.0.0.1:9/bitget_spot", "--db", "t.sqlite"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert re.fullmatch(r"audit_trades\.py: error: --until \(\d+\) must be after --since \(\d+\)", line)
