"""`scripts/run_dashboard.py` as a user runs it: a subprocess, the URL and token it prints, the live page socket, a
clean stop on Ctrl-C, and one line with exit 2 for a bad option or a port in use."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = [sys.executable, str(ROOT / "scripts" / "run_dashboard.py")]


def _get(url: str, token: str | None = None) -> tuple[int, object]:
    request = Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _lines_until(proc: subprocess.Popen, prefix: str, timeout: float = 60) -> dict[str, str]:
    """Read stdout lines until one starts with `prefix`; every line read, by its first word."""
    seen: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.setdefault(line.split(":")[0].split("=")[0], line.strip())
        if line.startswith(prefix):
            return seen
    raise AssertionError(f"no line starting {prefix!r} within {timeout} s: {seen}, stderr: {proc.stderr.read()}")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("env_token", [None, "from-the-environment-1234"])
def test_run_dashboard_prints_url_and_token_serves_the_live_page_and_stops_on_ctrl_c(tmp_path, env_token):
    env = {k: v for k, v in os.environ.items() if k != "TRADESYNC_DASHBOARD_TOKEN"}
    if env_token:
        env["TRADESYNC_DASHBOARD_TOKEN"] = env_token
    proc = subprocess.Popen(DASHBOARD + ["--port", "0", "--seed", "3"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = _lines_until(proc, "token=")
        url = lines["dashboard"].removeprefix("dashboard: ")
        assert url.startswith("http://127.0.0.1:") and "/?token=" in url
        base, _, token = url.partition("/?token=")
        assert lines["token"] == f"token={token}" and len(token) >= 20
        if env_token:
            assert token == env_token
        assert _get(base + "/api/status")[0] == 401
        deadline = time.monotonic() + 30
        while True:  # the Quoter against the simulator: its fills reach the dashboard
            status, fills = _get(base + "/api/fills?since=0", token)
            assert status == 200
            if fills or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert fills and all(f["key"] == "binance_spot" and f["strategy_id"] == "quoter" for f in fills)
        status, report = _get(base + "/api/status", token)
        assert report["connections"]["binance_spot"]["status"] == "connected"
        with urlopen(base + "/", timeout=5) as page:  # the page itself needs no token
            assert page.status == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "strategy state: stopped" in out and token not in err
    with pytest.raises(OSError):  # the port is closed
        urlopen(base + "/api/status", timeout=2)


@pytest.mark.parametrize("args, says", [
    (["--port", "http"], "argument --port: not a port number: 'http'"),
    (["--port", "70000"], "argument --port: must be 0..65535"),
    (["--exchange", "kraken"], "unknown exchange 'kraken'"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["--host", "no-such-host.invalid", "--port", "8123"], "--host no-such-host.invalid"),
])
def test_run_dashboard_bad_option_exits_2_with_one_line(tmp_path, args, says):
    result = subprocess.run(DASHBOARD + args, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("run_dashboard.py: error:") and says in lines[0], lines


def test_run_dashboard_on_a_port_in_use_exits_2_with_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(DASHBOARD + ["--port", str(port)], cwd=tmp_path, capture_output=True, text=True,
                                timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--port {port}: cannot listen on 127.0.0.1:{port}" in lines[0], lines
    assert result.stdout == "" and not (tmp_path / "data").exists()  # nothing started


def test_run_dashboard_help_names_its_options(tmp_path):
    result = subprocess.run(DASHBOARD + ["--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: run_dashboard.py [")
    for option in ("--port", "--host", "--db", "--log-dir", "--exchange", "--duration"):
        assert option in result.stdout
    assert "default 0: until Ctrl-C" in result.stdout
