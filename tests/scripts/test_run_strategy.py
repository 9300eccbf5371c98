"""The main job as a user runs it: a subprocess, real files, real signals."""

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = [sys.executable, str(ROOT / "scripts" / "run_strategy.py")]
REPORT = [sys.executable, str(ROOT / "scripts" / "trade_sync_report.py")]


def run(args, cwd, timeout=60):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_run_strategy_for_three_seconds_stores_fills_and_writes_the_log(tmp_path):
    result = run(RUN + ["--duration", "3", "--seed", "7"], tmp_path)
    assert result.returncode == 0, result.stderr
    db = tmp_path / "data" / "trades.sqlite"
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM trades").fetchone()
        (distinct,) = conn.execute(
            "SELECT COUNT(*) FROM (SELECT DISTINCT exchange, market, account, symbol, trade_id, order_id FROM trades)"
        ).fetchone()
    assert count > 10 and distinct == count
    assert f"fills stored: {count}," in result.stdout
    logs = list((tmp_path / "logs" / "trade_sync").glob("trade_sync_*.log"))
    assert len(logs) == 1 and str(logs[0]) in result.stdout and str(db) in result.stdout
    report = run(REPORT, tmp_path)
    assert report.returncode == 0
    assert "binance      spot    BTC/USDT" in report.stdout and f"total: stored {count}," in report.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--market", "options"], "unknown market type 'options'"),
        (["--duration", "soon"], "not a number: 'soon'"),
        (["--exchange", "kraken"], "unknown exchange 'kraken'"),
        (["--strategy", "no_such_strategy"], "no strategy module 'no_such_strategy'"),
        (["--symbol", "BTCUSDT"], "not a unified symbol"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_argument_exits_2_with_one_line(tmp_path, args, message):
    result = run(RUN + args, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("run_strategy.py: error:")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_with_exit_0(tmp_path, sig):
    proc = subprocess.Popen(RUN + ["--duration", "0"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        db = tmp_path / "data" / "trades.sqlite"
        while time.monotonic() < deadline:  # wait until fills are being stored
            if db.exists():
                try:
                    with sqlite3.connect(db) as conn:
                        if conn.execute("SELECT COUNT(*) FROM trades").fetchone()[0] > 0:
                            break
                except sqlite3.OperationalError:
                    pass
            time.sleep(0.1)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "strategy state: stopped" in out
    stored = int(out.split("fills stored: ")[1].split(",")[0])
    with sqlite3.connect(tmp_path / "data" / "trades.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM trades").fetchone()[0] == stored > 0


def test_report_without_logs_says_so(tmp_path):
    result = run(REPORT, tmp_path)
    assert result.returncode == 1 and "run a strategy first" in result.stderr


@pytest.mark.postgres
def test_postgres_store_from_the_command_line(tmp_path, pg_url):
    result = run(RUN + ["--duration", "2", "--db", pg_url], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "postgresql://" in result.stdout
    stored = int(result.stdout.split("fills stored: ")[1].split(",")[0])
    assert stored > 0


PAIRS = [
    ("binance", "spot"), ("binance", "future"), ("bybit", "spot"), ("bybit", "future"), ("mexc", "spot"),
    ("mexc", "future"), ("gate", "spot"), ("gate", "future"), ("bitget", "spot"), ("bitget", "future"),
    ("hyperliquid", "future"),
]


@pytest.mark.parametrize("exchange, market", PAIRS, ids=[f"{e}_{m}" for e, m in PAIRS])
def test_run_strategy_against_the_simulator_for_every_pair(tmp_path, exchange, market):
    import importlib.util

    if importlib.util.find_spec(f"exchanges.simulator.venues.{exchange}") is None:
        pytest.skip(f"the {exchange} simulator plugin is not built")
    result = run(RUN + ["--exchange", exchange, "--market", market, "--duration", "2"], tmp_path)
    assert result.returncode == 0, result.stderr
    made = int(result.stdout.split("fills made by the simulator: ")[1].split()[0])
    stored = int(result.stdout.split("fills stored: ")[1].split(",")[0])
    assert made > 0 and stored == made
    log = next((tmp_path / "logs" / "trade_sync").glob("*.log")).read_text()
    assert f"key={exchange}_{market} status=connected" in log
