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
    result = run(RUN + ["--duration", "3", "--seed", "7", "--strategy", "position_tracker"], tmp_path)
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
        (["--exchange"], "argument --exchange: expected one argument"),
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
    assert stored == made
    if (exchange, market) == ("mexc", "future"):  # MEXC refuses futures orders from API keys: the Quoter watches
        assert "no order entry on mexc_future (MEXC futures order entry is closed" in result.stdout
        assert made > 0  # the simulator's fills instead
    else:  # the Quoter's own orders, every one of them at the simulator as the gateway says
        placed = int(result.stdout.split("orders placed: ")[1].split(",")[0])
        assert placed >= 2 and "the simulator's orders: " in result.stdout
        assert "the same as the gateway's" in result.stdout, result.stdout
    log = next((tmp_path / "logs" / "trade_sync").glob("*.log")).read_text()
    assert f"key={exchange}_{market} status=connected" in log


class _Lines:
    """A process's output read line by line in a thread, so a silent process cannot hang the test."""

    def __init__(self, stream):
        import threading

        self.lines: list[str] = []
        self._thread = threading.Thread(target=lambda: [self.lines.append(line.rstrip("\n")) for line in stream],
                                        daemon=True)
        self._thread.start()

    def wait_for(self, done, timeout):
        deadline = time.monotonic() + timeout
        while not done(list(self.lines)) and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.lines)

    def rest(self, timeout=10):
        self._thread.join(timeout)
        return list(self.lines)


def test_simulator_prints_exports_and_run_strategy_attaches_with_sim_url(tmp_path):
    import os
    import shlex

    sim = subprocess.Popen([sys.executable, "-m", "exchanges.simulator", "--exchange", "binance", "--rate", "20",
                            "--seed", "3"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = _Lines(sim.stdout).wait_for(lambda got: any(line.startswith("#   binance_spot") for line in got), 20)
        exports = [line for line in lines if line.startswith("export ")]
        assert [line.split("=")[0] for line in exports] == ["export BINANCE_API_KEY", "export BINANCE_API_SECRET"]
        assert not any("api_key=" in line for line in lines)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BINANCE_")}
        for line in exports:
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = shlex.split(value)[0]
        url = lines[0].split("simulator on ")[1].split(":", 2)
        url = ":".join(url[:2]) + ":" + url[2].split(":")[0]  # http://127.0.0.1:PORT
        result = subprocess.run(RUN + ["--sim-url", url, "--duration", "3"], cwd=tmp_path, capture_output=True,
                                text=True, timeout=60, env=env)
    finally:
        sim.send_signal(signal.SIGINT)
        sim.communicate(timeout=10)
    assert result.returncode == 0, result.stderr
    assert f"against the running simulator at {url}" in result.stdout
    assert "fills made by the simulator" not in result.stdout  # it did not start one of its own
    stored = int(result.stdout.split("fills stored: ")[1].split(",")[0])
    assert stored > 0


def test_duration_0_prints_a_status_line_every_few_seconds(tmp_path):
    proc = subprocess.Popen(RUN + ["--duration", "0", "--status-every", "0.5"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        status = lambda got: [line for line in got if line.startswith("[") and "connections:" in line]  # noqa: E731
        out = _Lines(proc.stdout)
        out.wait_for(lambda got: len(status(got)) >= 3, 30)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        err = proc.stderr.read()
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    lines = out.rest()
    shown = status(lines)
    assert len(shown) >= 3, lines
    assert "connections: binance_spot connected; market data: binance_spot live; fills stored: " in shown[-1]
    assert "duplicates: " in shown[-1] and "dead letters: 0" in shown[-1]
    stored = [int(line.split("fills stored: ")[1].split(",")[0]) for line in shown]
    assert stored == sorted(stored) and stored[-1] > 0
    assert "strategy state: stopped" in lines


def test_a_timed_run_prints_no_status_lines(tmp_path):
    result = run(RUN + ["--duration", "1.5", "--status-every", "0.2"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "connections:" not in result.stdout and "fills stored: " in result.stdout
