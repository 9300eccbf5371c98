"""replay_dead_letters.py as an operator runs it: what still fails is named with its reason, exit 1; a
consumer's missed events are requested for it (--consumer) or listed, never re-normalized."""

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from framework.events import OrderUpdate, Trade
from framework.spool import encode
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


def missed_fill(trade_id: str) -> Trade:
    return Trade(exchange="binance", market="spot", account="sub1", symbol="BNB/USDT", symbol_raw="BNBUSDT",
                 trade_id=trade_id, order_id="1296882607", side="buy", amount="0.33200000", price="46.86600000",
                 cost="15.55951200", timestamp=1611063861488, received_at=1611063861489)


def make_consumer_store(path: Path) -> None:
    """A frame any version can read, and events two consumers missed while their breakers were open."""
    update = OrderUpdate(exchange="binance", market="spot", symbol="BNB/USDT", symbol_raw="BNBUSDT",
                         order_id="1296882607", side="buy", order_type="limit", status="partially_filled",
                         status_raw="PARTIALLY_FILLED", amount="2.00000000", price="46.90000000",
                         filled="0.33200000", timestamp=1611063861488, received_at=1611063861489)

    async def fill():
        store = open_store(f"sqlite:///{path}")
        await store.start()
        try:
            await store.add_dead_letter("binance_spot", json.dumps(GOOD), "old version could not read it", 1)
            for consumer, kind, event in [("risk", "trade", missed_fill("1")), ("risk", "order", update),
                                          ("dashboard", "trade", missed_fill("2"))]:
                await store.add_dead_letter(str(event.key), encode(kind, event), "breaker open",
                                            event.received_at, consumer)
        finally:
            await store.stop()

    asyncio.run(asyncio.wait_for(fill(), 30))


def letters_of(path: Path, consumer: str) -> list[dict]:
    async def read():
        store = open_store(f"sqlite:///{path}")
        await store.start()
        try:
            return await store.fetch_dead_letters(consumer=consumer)
        finally:
            await store.stop()

    return asyncio.run(asyncio.wait_for(read(), 30))


def test_consumer_replay_is_requested_for_that_consumer_only_and_says_who_hands_them_over(tmp_path):
    db = tmp_path / "dl.sqlite"
    make_consumer_store(db)
    result = run(["--db", str(db), "--consumer", "risk"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "replay requested for 2 dead letters of consumer 'risk': the running process hands them to risk "
        "(or at risk's next registration)"]
    assert [letter["replay_requested_at"] is not None for letter in letters_of(db, "risk")] == [True, True]
    assert [letter["replay_requested_at"] for letter in letters_of(db, "dashboard")] == [None]
    assert [letter["replayed_at"] for letter in letters_of(db, "risk")] == [None, None]  # the pipeline's job


def test_consumer_list_shows_each_missed_event_and_requests_nothing(tmp_path):
    db = tmp_path / "dl.sqlite"
    make_consumer_store(db)
    result = run(["--db", str(db), "--consumer", "risk", "--list"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    header, fill_line, order_line = result.stdout.splitlines()
    assert header == "dead letters of consumer 'risk' not yet replayed: 2 (0 replay requested)"
    assert fill_line == ("  dead letter 2 (binance_spot@sub1) fill 1 of order 1296882607: BNB/USDT buy "
                         "0.33200000 @ 46.86600000; missed 2021-01-19 13:44:21 UTC: breaker open; "
                         "waiting for a request")
    assert order_line.startswith("  dead letter 3 (binance_spot) order 1296882607: BNB/USDT partially_filled, "
                                 "0.33200000 of 2.00000000; ")
    assert [letter["replay_requested_at"] for letter in letters_of(db, "risk")] == [None, None]

    run(["--db", str(db), "--consumer", "risk"], tmp_path)
    listed = run(["--db", str(db), "--consumer", "risk", "--list"], tmp_path).stdout.splitlines()
    assert listed[0] == "dead letters of consumer 'risk' not yet replayed: 2 (2 replay requested)"
    assert all(line.endswith("; replay requested") for line in listed[1:])


def test_a_consumer_with_no_letters_is_told_which_consumers_have_some(tmp_path):
    db = tmp_path / "dl.sqlite"
    make_consumer_store(db)
    result = run(["--db", str(db), "--consumer", "rsik"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "no dead letters of consumer 'rsik' wait for a replay; consumers with letters: dashboard 1, risk 2"]


def test_replay_without_consumer_stores_frames_and_leaves_consumer_letters_alone(tmp_path):
    db = tmp_path / "dl.sqlite"
    make_consumer_store(db)
    result = run(["--db", str(db)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dead letters replayed: 1 of 1; still failing: 0" in result.stdout
    assert "fills stored: 1 new, 0 already stored" in result.stdout
    assert result.stdout.splitlines()[-1] == "left for their consumers (replay with --consumer NAME): dashboard 1, risk 2"
    assert [(letter["replayed_at"], letter["replay_result"]) for letter in letters_of(db, "risk")] == [
        (None, None), (None, None)]


@pytest.mark.parametrize("args, message", [
    (["--list"], "--list needs --consumer NAME"),
    (["--consumer", " "], "--consumer needs a consumer name, as given to register_component"),
    (["--consumer"], "argument --consumer: expected one argument"),
])
def test_a_consumer_argument_mistake_is_one_line_with_exit_2(tmp_path, args, message):
    db = tmp_path / "dl.sqlite"
    make_consumer_store(db)
    result = run(["--db", str(db), *args], tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"replay_dead_letters.py: error: {message}"]
    assert [letter["replay_requested_at"] for letter in letters_of(db, "risk")] == [None, None]


def test_consumer_dry_run_counts_and_marks_nothing(tmp_path):
    db = tmp_path / "dl.sqlite"
    make_consumer_store(db)
    result = run(["--db", str(db), "--consumer", "risk", "--dry-run"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "would request a replay of 2 dead letters of consumer 'risk' (dry run: nothing marked)"]
    assert [letter["replay_requested_at"] for letter in letters_of(db, "risk")] == [None, None]
