"""replay_dead_letters.py as an operator runs it: what still fails is named with its reason, exit 1."""

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from framework.store import open_store

ROOT = Path(__file__).resolve().parents[2]
REPLAY = [sys.executable, str(ROOT / "scripts" / "replay_dead_letters.py")]

GOOD = {"subscriptionId": 0, "event": {  # a Binance fill a past version could not read: normalizes today
    "e": "executionReport", "E": 1611063861489, "s": "BNBUSDT", "c": "m4M6AD5MF3b1ERe65l4SPq", "S": "BUY",
    "o": "LIMIT", "f": "GTC", "q": "2.00000000", "p": "46.90000000", "P": "0", "F": "0", "g": -1, "C": "",
    "x": "TRADE", "X": "PARTIALLY_FILLED", "r": "NONE", "i": 1296882607, "l": "0.33200000", "z": "0.33200000",
    "L": "46.86600000", "n": "0.00033200", "N": "BNB", "T": 1611063861488, "t": 109747654, "I": 1, "w": False,
    "m": False, "M": True, "O": 1611063861488, "Z": "15.55951200", "Y": "15.55951200", "Q": "0"}}
BROKEN = '{"subscriptionId": 0, "event": {"e": "executionReport", "s": 5}}'


def make_store(path: Path, frames: list[str]) -> None:
    async def fill():
        store = open_store(f"sqlite:///{path}")
        await store.start()
        try:
            for frame in frames:
                await store.add_dead_letter("binance_spot", frame, "old version could not read it", 1611063861489)
        finally:
            await store.stop()

    asyncio.run(asyncio.wait_for(fill(), 30))


def run(args, cwd):
    return subprocess.run(REPLAY + args, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_a_letter_that_still_fails_is_printed_with_its_reason_and_exits_1(tmp_path):
    db = tmp_path / "dl.sqlite"
    make_store(db, [json.dumps(GOOD), BROKEN])
    result = run(["--db", str(db)], tmp_path)
    assert result.returncode == 1, result.stderr
    assert "dead letters replayed: 1 of 2; still failing: 1" in result.stdout
    assert "fills stored: 1 new" in result.stdout
    (failing,) = [line for line in result.stdout.splitlines() if "still fails" in line]
    assert failing.startswith("  dead letter 2 (binance_spot) still fails: NormalizeError: ")
    assert "binance" in failing and len(failing) < 400


def test_every_letter_replayed_exits_0(tmp_path):
    db = tmp_path / "dl.sqlite"
    make_store(db, [json.dumps(GOOD)])
    result = run(["--db", str(db)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dead letters replayed: 1 of 1; still failing: 0" in result.stdout
    assert "still fails" not in result.stdout


def test_a_database_that_does_not_exist_is_refused_in_one_line_with_exit_2(tmp_path):
    result = run(["--db", str(tmp_path / "nope.sqlite")], tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("replay_dead_letters.py: error: no database at ") and "nope.sqlite" in line
    assert not (tmp_path / "nope.sqlite").exists() and result.stdout == ""
