"""run_strategy.py --metrics-port: a real process serves the pipeline's figures at /metrics while it runs."""

import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import urlopen

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
RUN = [sys.executable, str(ROOT / "scripts" / "run_strategy.py")]


def _samples(text):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_port_serves_prometheus_text_while_the_strategy_runs(tmp_path):
    process = subprocess.Popen(
        RUN + ["--exchange", "bybit", "--market", "future", "--duration", "6", "--rate", "50", "--metrics-port", "0",
               "--strategy", "position_tracker",
               "--db", str(tmp_path / "t.sqlite"), "--log-dir", str(tmp_path / "logs"),
               "--perf-report", str(tmp_path / "perf.json")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if line.startswith("metrics: "):
                url = line.split(" ", 1)[1].strip()
        assert url and url.startswith("http://127.0.0.1:") and url.endswith("/metrics"), url
        handled = 0.0
        while handled == 0.0 and time.monotonic() < deadline:
            time.sleep(0.5)
            with urlopen(url, timeout=5) as response:
                assert response.headers["Content-Type"].startswith("text/plain")
                samples = _samples(response.read().decode())
            handled = sum(v for (name, labels), v in samples.items()
                          if name == "tradesync_events_published_total" and dict(labels).get("channel") == "trade")
        assert handled > 0, "no fill counted on /metrics"
        assert samples[("tradesync_process_rss_bytes", ())] > 10_000_000
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "performance report: " in out and (tmp_path / "perf.json").is_file()


def test_metrics_serve_order_entry_figures_while_the_quoter_trades(tmp_path):
    process = subprocess.Popen(
        RUN + ["--exchange", "bybit", "--market", "spot", "--duration", "6", "--metrics-port", "0",
               "--db", str(tmp_path / "t.sqlite"), "--log-dir", str(tmp_path / "logs")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if line.startswith("metrics: "):
                url = line.split(" ", 1)[1].strip()
        assert url, "no metrics URL printed"
        samples: dict = {}
        while time.monotonic() < deadline:
            time.sleep(0.5)
            with urlopen(url, timeout=5) as response:
                samples = _samples(response.read().decode())
            if samples.get(("tradesync_order_requests", (("path", "websocket"),)), 0) >= 2:
                break
        assert samples[("tradesync_order_requests", (("path", "websocket"),))] >= 2, samples
        assert samples[("tradesync_order_ack_latency_seconds", (("path", "websocket"), ("quantile", "0.5")))] > 0
        assert samples[("tradesync_order_websocket_ready", (("key", "bybit_spot"),))] == 1
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err


def test_metrics_port_in_use_is_one_line_exit_2(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            RUN + ["--duration", "1", "--metrics-port", str(port), "--db", str(tmp_path / "t.sqlite"),
                   "--log-dir", str(tmp_path / "logs")], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and f"--metrics-port {port}" in lines[0] and "choose a free port" in lines[0], lines
