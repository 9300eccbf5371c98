"""trade_sync_report.py as an operator runs it: failures counted, duplicates by cause, a chosen log or a day, a chart."""

import asyncio
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

from exchanges.mock import MockConnector
from framework.pool import ConnectionPool
from framework.strategy import BaseStrategy

ROOT = Path(__file__).resolve().parents[2]
RUN = [sys.executable, str(ROOT / "scripts" / "run_strategy.py")]
REPORT = [sys.executable, str(ROOT / "scripts" / "trade_sync_report.py")]

CRASHING = '''
from framework.strategy import BaseStrategy


class Crashing(BaseStrategy):
    def on_trade(self, trade):
        raise RuntimeError("position limit logic broke")
'''


def run(args, cwd, timeout=60):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def totals(stdout: str) -> tuple[int, int, int, int]:
    match = re.search(r"total: stored (\d+), duplicates (\d+): same fill on a second channel (\d+) .*replayed (\d+)",
                      stdout)
    assert match, stdout
    return tuple(int(g) for g in match.groups())


def test_a_strategy_that_crashed_is_counted_as_a_failure_and_an_error(tmp_path):
    (tmp_path / "crashing.py").write_text(CRASHING)
    ran = run(RUN + ["--strategy", "crashing.py:Crashing", "--duration", "2", "--seed", "5"], tmp_path)
    assert "strategy state: failed" in ran.stdout, ran.stdout + ran.stderr
    result = run(REPORT, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "strategy failures: 1\n" in result.stdout
    (line,) = [l for l in result.stdout.splitlines() if "position limit logic broke" in l and " in on_trade" in l]
    assert "crashing in on_trade: RuntimeError(" in line
    errors = int(re.search(r"warnings and errors: (\d+)", result.stdout)[1])
    assert errors >= 1 and "ERROR strategy event strategy=crashing status=failed" in result.stdout


def test_bitget_second_channel_copies_are_told_apart_from_replays(tmp_path):
    ran = run(RUN + ["--exchange", "bitget", "--market", "spot", "--duration", "2", "--seed", "9",
                     "--strategy", "position_tracker"], tmp_path)  # the simulator's fills (the Quoter makes few)
    assert ran.returncode == 0, ran.stderr
    stored = int(ran.stdout.split("fills stored: ")[1].split(",")[0])
    result = run(REPORT, tmp_path)
    assert result.returncode == 0, result.stderr
    # Every Bitget fill comes on `orders` and on `fill`: one expected copy per fill, nothing replayed
    # (a fill the start-up backfill also read over REST is one more expected copy).
    total, duplicates, second_channel, replayed = totals(result.stdout)
    assert stored > 5 and total == stored and duplicates >= stored
    assert (second_channel, replayed) == (duplicates, 0)


async def _replays(log_dir: Path) -> None:
    async with ConnectionPool(f"sqlite:///{log_dir / 't.sqlite'}", log_dir) as pool:
        bitget = MockConnector("bitget", "future")  # a two-channel key: the first copy is expected
        paper = MockConnector("paperx", "spot")  # one channel: any copy is a replay
        s = BaseStrategy("s", [bitget, paper], pool=pool)
        await s.start()
        for _ in range(3):
            await bitget.push_trade("BTC/USDT:USDT", "buy", "1", "60000", trade_id="b1", order_id="o1")
        for _ in range(2):
            await paper.push_trade("ETH/USDT", "sell", "2", "3000", trade_id="p1", order_id="o2")
        await pool.flush(5)
        await s.stop()


def test_copies_beyond_the_second_channel_are_counted_as_replayed(tmp_path):
    asyncio.run(asyncio.wait_for(_replays(tmp_path / "logs"), 30))
    result = run(REPORT, tmp_path)
    assert result.returncode == 0, result.stderr
    assert totals(result.stdout) == (2, 3, 1, 2)
    assert re.search(r"bitget +future +BTC/USDT:USDT .*duplicates +2 +\(second channel 1, replayed 1\)", result.stdout)
    assert re.search(r"paperx +spot +ETH/USDT .*duplicates +1 +\(second channel 0, replayed 1\)", result.stdout)


def test_a_chosen_log_or_every_log_of_a_day(tmp_path):
    ran = run(RUN + ["--duration", "1", "--seed", "3"], tmp_path)
    assert ran.returncode == 0, ran.stderr
    (log,) = (tmp_path / "logs" / "trade_sync").iterdir()
    stored = totals(run(REPORT, tmp_path).stdout)[0]
    folder = tmp_path / "ops"
    (folder / "trade_sync").mkdir(parents=True)
    for name in ("trade_sync_20250101_100000.log", "trade_sync_20250101_100000_2.log",
                 "trade_sync_20250101_230000.log", "trade_sync_20250102_000001.log"):
        shutil.copy(log, folder / "trade_sync" / name)

    day = run(REPORT + ["--log-dir", str(folder), "--day", "20250101"], tmp_path)
    assert day.returncode == 0, day.stderr
    assert day.stdout.startswith("trade sync report for 3 logs: trade_sync_20250101_100000.log, "
                                 "trade_sync_20250101_100000_2.log, trade_sync_20250101_230000.log\n")
    assert totals(day.stdout)[0] == 3 * stored

    chosen = run(REPORT + ["--log", str(folder / "trade_sync" / "trade_sync_20250101_100000_2.log")], tmp_path)
    assert chosen.returncode == 0 and totals(chosen.stdout)[0] == stored
    assert chosen.stdout.startswith(f"trade sync report for {folder / 'trade_sync' / 'trade_sync_20250101_100000_2.log'}")

    latest = run(REPORT + ["--log-dir", str(folder)], tmp_path)
    assert "trade_sync_20250102_000001.log" in latest.stdout.splitlines()[0]

    none = run(REPORT + ["--log-dir", str(folder), "--day", "20250103"], tmp_path)
    assert none.returncode == 1 and none.stderr.strip().startswith("trade_sync_report.py: error: no trade sync log of")
    bad = run(REPORT + ["--day", "2025-01-01"], tmp_path)
    assert bad.returncode == 2
    (line,) = bad.stderr.strip().splitlines()
    assert line == "trade_sync_report.py: error: argument --day: --day takes YYYYMMDD, e.g. 20250131, not '2025-01-01'"


def test_plot_writes_a_png_of_fills_and_pnl(tmp_path):
    ran = run(RUN + ["--strategy", "position_tracker", "--duration", "2", "--seed", "4"], tmp_path)
    assert ran.returncode == 0, ran.stderr
    result = run(REPORT + ["--plot", "chart.png"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "chart: chart.png" in result.stdout and "PnL not plotted" not in result.stdout
    data = (tmp_path / "chart.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1000, 700) and len(data) > 20_000


def test_plot_without_a_store_says_the_pnl_is_missing(tmp_path):
    ran = run(RUN + ["--duration", "1", "--seed", "4", "--db", "elsewhere.sqlite"], tmp_path)
    assert ran.returncode == 0, ran.stderr
    result = run(REPORT + ["--plot", "chart.png"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "PnL not plotted: no database at data/trades.sqlite" in result.stdout
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"
