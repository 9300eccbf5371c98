"""The design's own spelling works: connectors as a key → connector mapping, `exchanges.websocket`,
`from framework import BaseStrategy`, the README's strategy test as pasted, and a library that is quiet on
stderr until the application turns its logging on."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from exchanges.mock import MockConnector
from framework.errors import ConfigError, LifecycleError
from framework.events import ConnectionKey
from framework.pool import ConnectionPool
from framework.strategy import BaseStrategy

pytestmark = pytest.mark.timeout(90)
ROOT = Path(__file__).resolve().parents[2]


class Recorder(BaseStrategy):
    def on_start(self):
        self.trades = []

    def on_trade(self, trade):
        self.trades.append(trade)


def _pool(tmp_path) -> ConnectionPool:
    return ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs")


def _run(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


# exchange_connectors ----------------------------------------------------------------------------------------

async def test_connectors_given_as_a_mapping_subscribe_every_key_and_deliver_their_fills(tmp_path):
    binance, bybit = MockConnector("binance", "spot"), MockConnector("bybit", "spot")
    async with asyncio.timeout(30), _pool(tmp_path) as pool:
        s = Recorder("s", {"binance_spot": binance, ConnectionKey(exchange="bybit", market="spot"): bybit}, pool=pool)
        assert s.exchange_connectors == (binance, bybit)
        await s.start()
        await binance.push_trade("BTC/USDT", "buy", "0.5", "65000", trade_id="b1")
        await bybit.push_trade("ETH/USDT", "sell", "2", "3000", trade_id="y1")
        await pool.flush(5)
        assert pool.get_connection_status()["strategies"]["s"] == ["binance_spot", "bybit_spot"]
        assert sorted((t.exchange, t.trade_id, t.amount) for t in s.trades) == [
            ("binance", "b1", Decimal("0.5")), ("bybit", "y1", Decimal("2"))]
        await s.stop()


async def test_connectors_assigned_before_start_as_the_design_writes_it(tmp_path):
    from exchanges.websocket import get_connection_pool, initialize_connection_pool, shutdown_connection_pool

    binance_spot_connector, bybit_spot_connector = MockConnector("binance", "spot"), MockConnector("bybit", "spot")
    async with asyncio.timeout(30):
        await initialize_connection_pool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs")
        try:
            strategy_1 = Recorder("s1")
            strategy_1.exchange_connectors = {"binance_spot": binance_spot_connector,
                                              "bybit_spot": bybit_spot_connector}
            await strategy_1.start()
            await bybit_spot_connector.push_trade("BTC/USDT", "buy", "1.25", "64000", trade_id="t7")
            await get_connection_pool().flush(5)
            assert [(t.exchange, t.trade_id, t.amount) for t in strategy_1.trades] == [("bybit", "t7", Decimal("1.25"))]
            assert get_connection_pool().get_connection_status()["strategies"]["s1"] == ["binance_spot", "bybit_spot"]
            await strategy_1.stop()
        finally:
            await shutdown_connection_pool()


def test_a_mapping_key_that_is_not_its_connectors_key_is_a_config_error_naming_both():
    with pytest.raises(ConfigError, match=r"'bybit_spot'.*'binance_spot'"):
        Recorder("s", {"bybit_spot": MockConnector("binance", "spot")})
    s = Recorder("s")
    with pytest.raises(ConfigError, match=r"'binance_spot@sub1'.*'binance_spot'"):
        s.exchange_connectors = {"binance_spot@sub1": MockConnector("binance", "spot")}
    assert s.exchange_connectors == ()  # refused: nothing half-assigned


def test_names_instead_of_connectors_are_a_config_error_not_an_attribute_error():
    with pytest.raises(ConfigError, match=r"exchange_connectors\[0\] is 'binance_spot', not a connector"):
        Recorder("s", ["binance_spot"])
    with pytest.raises(ConfigError, match="must be a list of connectors or a mapping"):
        Recorder("s", "binance_spot")
    with pytest.raises(ConfigError, match="not of the form exchange_market"):
        Recorder("s", {"binance": MockConnector("binance", "spot")})


async def test_assigning_connectors_while_running_is_a_lifecycle_error_and_allowed_again_once_stopped(tmp_path):
    first, second = MockConnector("binance", "spot"), MockConnector("bybit", "future")
    async with asyncio.timeout(30), _pool(tmp_path) as pool:
        s = Recorder("s", [first], pool=pool)
        await s.start()
        with pytest.raises(LifecycleError, match="stop"):
            s.exchange_connectors = {"bybit_future": second}
        assert s.exchange_connectors == (first,)
        await s.stop()
        s.exchange_connectors = {"bybit_future": second}
        await s.start()
        assert pool.get_connection_status()["strategies"]["s"] == ["bybit_future"]
        await second.push_trade("BTC/USDT:USDT", "sell", "3", "65000", trade_id="f1")
        await pool.flush(5)
        assert [t.trade_id for t in s.trades] == ["f1"]
        await s.stop()


# imports ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("first", [
    "import exchanges.websocket",
    "import framework",
    "import framework.venue",
    "import exchanges.mock",
    "import framework.strategy",
])
def test_framework_and_exchanges_websocket_export_the_design_names_whatever_is_imported_first(first, tmp_path):
    script = f"""
{first}
from exchanges.websocket import ConnectionPool, get_connection_pool, initialize_connection_pool, shutdown_connection_pool
import framework
from framework import BaseStrategy, ConnectionPool as Pool2, get_connection_pool as get2
from framework.strategy import BaseStrategy as Base2
import framework.pool
assert BaseStrategy is Base2 and Pool2 is ConnectionPool is framework.pool.ConnectionPool
assert get2 is get_connection_pool is framework.pool.get_connection_pool
assert initialize_connection_pool is framework.pool.initialize_connection_pool
assert shutdown_connection_pool is framework.pool.shutdown_connection_pool
assert {{"BaseStrategy", "ConnectionPool"}} <= set(dir(framework)) and "BaseStrategy" in framework.__all__
print("ok")
"""
    result = _run([sys.executable, "-c", script], tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stderr[-2000:]


# the README's test ----------------------------------------------------------------------------------------

def _readme_files() -> dict[str, str]:
    """The README's Python blocks that open with `# name.py`: the files a user would paste."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return {m.group(1): block for block in blocks if (m := re.match(r"# (\w+\.py)\n", block))}


def test_the_readme_strategy_test_runs_as_pasted(tmp_path):
    files = _readme_files()
    assert {"fill_counter.py", "test_fill_counter.py"} <= set(files), sorted(files)
    for name in ("fill_counter.py", "test_fill_counter.py"):
        (tmp_path / name).write_text(files[name])
    # A user's own project: no pytest configuration of ours (pytest-asyncio in its default, strict mode).
    result = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                   "--rootdir", str(tmp_path), "-c", os.devnull, "test_fill_counter.py"], tmp_path, timeout=90)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"\b1 passed\b", result.stdout), result.stdout[-2000:]


# library logging ------------------------------------------------------------------------------------------

_LIBRARY_USE = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from exchanges.mock import MockConnector
    from framework.pool import ConnectionPool
    from framework.strategy import BaseStrategy

    if sys.argv[2] == "console":
        from framework.console import configure_console
        configure_console("WARNING")

    async def main(tmp):
        async with ConnectionPool(f"sqlite:///{tmp}/t.sqlite", Path(tmp) / "logs") as pool:
            connector = MockConnector("binance", "spot")
            strategy = BaseStrategy("quiet", [connector], pool=pool)
            await strategy.start()
            await connector.push_trade("BTC/USDT", "buy", "1", "2")
            await connector.push_raw("{not json")
            await pool.flush(5)
            await strategy.stop()
            assert pool.get_connection_status()["trade_sync"]["dead_letters"] == 1
        print(pool.sync_log.path)

    asyncio.run(asyncio.wait_for(main(sys.argv[1]), 30))
""")


def test_used_as_a_library_the_framework_writes_nothing_to_stderr_but_still_its_trade_sync_log(tmp_path):
    (tmp_path / "use.py").write_text(_LIBRARY_USE)
    result = _run([sys.executable, "use.py", str(tmp_path), "library"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == ""
    log = Path(result.stdout.strip()).read_text()
    assert "dead letter" in log and "trade storage" in log  # the file is the framework's output, not logging


def test_once_the_application_configures_logging_the_dead_letter_warning_reaches_stderr(tmp_path):
    (tmp_path / "use.py").write_text(_LIBRARY_USE)
    result = _run([sys.executable, "use.py", str(tmp_path), "console"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "malformed frame kept as dead letter" in result.stderr
    assert "trade storage" not in result.stderr  # trade sync lines stay in their file
