"""Every mistake a user can make on run_strategy.py's command line: one line naming it and what to do, exit 2, < 3 s."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = [sys.executable, str(ROOT / "scripts" / "run_strategy.py")]
LIMIT_S = 6.0  # before any socket, database or simulator: well under this even on a loaded 2-core machine


def run_cli(args, cwd, env=None):
    started = time.monotonic()
    result = subprocess.run(RUN + args, cwd=cwd, capture_output=True, text=True, timeout=30, env=env)
    return result, time.monotonic() - started


def assert_one_line_exit_2(result, elapsed, *phrases):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("run_strategy.py: error: "), lines[0]
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    assert elapsed < LIMIT_S, f"took {elapsed:.2f} s"
    return lines[0]


def env_without_credentials():
    return {k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "HYPERLIQUID_"))}


def test_strategy_file_with_a_syntax_error_is_one_line(tmp_path):
    (tmp_path / "broken.py").write_text("from framework.strategy import BaseStrategy\n\nclass Broken(BaseStrategy)\n"
                                        "    pass\n")
    line = assert_one_line_exit_2(*run_cli(["--strategy", "broken.py"], tmp_path), "strategy broken.py has a syntax "
                                  "error (broken.py, line 3)")
    assert line.endswith("fix it (see --help)")


def test_strategy_file_importing_a_missing_package_is_one_line(tmp_path):
    (tmp_path / "needs.py").write_text("import no_such_package_for_tradesync\n")
    assert_one_line_exit_2(*run_cli(["--strategy", "needs.py"], tmp_path),
                           "strategy needs.py cannot import what it needs: No module named "
                           "'no_such_package_for_tradesync': install it")


def test_strategy_module_raising_at_import_is_one_line(tmp_path):
    (tmp_path / "raises.py").write_text("raise RuntimeError('config.yaml missing')\n")
    assert_one_line_exit_2(*run_cli(["--strategy", "raises.py"], tmp_path),
                           "strategy raises.py failed while loading: RuntimeError: config.yaml missing")


def test_log_dir_that_cannot_be_created_is_one_line(tmp_path):
    (tmp_path / "a_file").write_text("not a directory\n")
    assert_one_line_exit_2(*run_cli(["--log-dir", "a_file/logs"], tmp_path),
                           "--log-dir a_file/logs cannot be created", "choose a directory you can write to")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("rate", ["0", "-3"])
def test_rate_that_is_not_positive_is_one_line(tmp_path, rate):
    assert_one_line_exit_2(*run_cli(["--rate", rate], tmp_path), f"argument --rate: must be > 0, got {rate}")


def test_unsupported_db_url_is_one_line(tmp_path):
    assert_one_line_exit_2(*run_cli(["--db", "foo://bar"], tmp_path),
                           "unsupported store URL 'foo://bar': use sqlite:///")


def test_live_without_credentials_names_the_variable(tmp_path):
    result, elapsed = run_cli(["--live"], tmp_path, env=env_without_credentials())
    assert_one_line_exit_2(result, elapsed, "BINANCE_API_KEY is not set: export it")


def test_sim_url_without_credentials_says_to_export_what_the_simulator_printed(tmp_path):
    import socket

    with socket.socket() as listener:  # something answers on the port: only the credentials are missing
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        result, elapsed = run_cli(["--sim-url", url, "--exchange", "hyperliquid"], tmp_path,
                                  env=env_without_credentials())
    assert_one_line_exit_2(result, elapsed, "HYPERLIQUID_WALLET_ADDRESS is not set: export it (the `export` lines")


def test_sim_url_where_nothing_listens_is_one_line(tmp_path):
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert_one_line_exit_2(*run_cli(["--sim-url", f"http://127.0.0.1:{port}"], tmp_path),
                           f"no simulator answers at http://127.0.0.1:{port}", "python -m exchanges.simulator")


def test_symbol_the_venue_does_not_list_is_refused_with_the_nearest(tmp_path):
    line = assert_one_line_exit_2(*run_cli(["--exchange", "hyperliquid", "--symbol", "BTC/USDT"], tmp_path),
                                  "BTC/USDT is not listed on hyperliquid future (simulator): nearest BTC/USDC:USDC")
    assert "ETH/USDC:USDC" not in line
    assert not (tmp_path / "data").exists()


def test_spot_symbol_on_a_futures_market_is_refused_with_the_futures_spelling(tmp_path):
    assert_one_line_exit_2(*run_cli(["--exchange", "gate", "--market", "future", "--symbol", "ETH/USDT"], tmp_path),
                           "ETH/USDT is not listed on gate future (simulator): nearest ETH/USDT:USDT")


def test_exchange_help_lists_venues_markets_and_that_venues_symbols(tmp_path):
    result, elapsed = run_cli(["--exchange", "hyperliquid", "--help"], tmp_path)
    assert result.returncode == 0 and elapsed < LIMIT_S
    out = result.stdout
    assert "venues and markets:" in out
    assert "  bybit        future, spot" in out and "  hyperliquid  future" in out
    assert "hyperliquid future symbols (simulator; --live: any base quoted in USDC):" in out
    assert "BTC/USDC:USDC ETH/USDC:USDC" in out and "BTC/USDT" not in out.split("venues and markets:")[1]


def _pg_variant(pg_server, *, user=None, database=None):
    parts = urlsplit(pg_server)
    netloc = parts.netloc if user is None else f"{user}@{parts.hostname}:{parts.port or 5432}"
    path = parts.path if database is None else f"/{database}"
    return urlunsplit((parts.scheme, netloc, path, "", ""))


@pytest.mark.postgres
def test_postgres_database_that_does_not_exist_is_one_line(tmp_path, pg_server):
    url = _pg_variant(pg_server, database="no_such_db")
    assert_one_line_exit_2(*run_cli(["--db", url], tmp_path),
                           'database "no_such_db" does not exist: create it (createdb) or fix the database in the URL')


@pytest.mark.postgres
def test_postgres_refusing_the_user_is_one_line(tmp_path, pg_server):
    url = _pg_variant(pg_server, user="no_such_role_tradesync")
    assert_one_line_exit_2(*run_cli(["--db", url], tmp_path),
                           'role "no_such_role_tradesync" does not exist: fix the user in the URL')


def test_sim_url_of_a_simulator_without_that_venue_is_one_line(tmp_path):
    state = tmp_path / "sim.json"
    sim = subprocess.Popen([sys.executable, "-m", "exchanges.simulator", "--exchange", "binance", "--state-file",
                            str(state)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not state.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        url = json.loads(state.read_text())["base_url"]
        env = {**env_without_credentials(), "HYPERLIQUID_WALLET_ADDRESS": "0x" + "1" * 40}
        result, elapsed = run_cli(["--sim-url", url, "--exchange", "hyperliquid"], tmp_path, env=env)
    finally:
        sim.send_signal(signal.SIGINT)
        sim.wait(timeout=10)
    assert_one_line_exit_2(result, elapsed, f"the simulator at {url} does not serve hyperliquid future",
                           "this simulator serves binance")
