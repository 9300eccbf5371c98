import re

from exchanges.mock import MockConnector
from framework.pool import ConnectionPool
from framework.strategy import BaseStrategy
from framework.sync_log import TradeSyncLogger, mask, register_secret
from framework.report import read_log, summarize


class Quiet(BaseStrategy):
    pass


async def test_log_file_name_and_content(tmp_path):
    async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
        s = Quiet("quiet", [MockConnector("paperx", "spot")], pool=pool)
        await s.start()
        c = s.exchange_connectors[0]
        await c.push_trade("BTC/USDT", "buy", "1", "2", trade_id="t1", order_id="o1")
        await c.push_trade("BTC/USDT", "buy", "1", "2", trade_id="t1", order_id="o1")
        await c.push_trade("ETH/USDT", "sell", "3", "4", trade_id="t2", order_id="o2")
        await c.push_raw('{"type": "trade", "symbol": "BTCUSDT"}')
        await pool.flush(5)
        await s.stop()
    files = list((tmp_path / "logs" / "trade_sync").iterdir())
    assert len(files) == 1
    assert re.fullmatch(r"trade_sync_\d{8}_\d{6}\.log", files[0].name)
    assert files[0] == pool.sync_log.path
    text = files[0].read_text()
    assert "connection event | key=paperx_spot status=connected" in text
    assert "trade fetch start | exchange=paperx symbol=* source=websocket" in text
    summary = summarize(read_log(files[0]))
    assert summary["fills"] == {
        ("paperx", "spot", "BTC/USDT", "mock"): [1, 1],
        ("paperx", "spot", "ETH/USDT", "mock"): [1, 0],
    }
    assert summary["connections"]["paperx_spot"] == {"connecting": 1, "connected": 1, "closed": 1}
    (problem,) = summary["problems"]
    assert "dead letter" in problem and "paperx_spot" in problem
    assert "duplicate_ids=t1" in text


async def test_no_secret_in_the_log(tmp_path, monkeypatch):
    secret = "s3cr3t-ABCDEFGHIJKLMNOP-never-log-me"
    api_key = "key-0123456789-abcdef"
    register_secret(secret)
    register_secret(api_key)
    log = TradeSyncLogger(tmp_path)
    log.open()
    log.error("login refused", detail=f"signature over {secret} with {api_key}")
    log.event(f"odd message with {secret}")
    log.close()
    text = log.path.read_text()
    assert secret not in text and api_key not in text
    assert mask(secret) in text and text.count("mnop-never-log-me") == 0
    assert mask(api_key).endswith("cdef")


def test_mask_keeps_only_the_last_four():
    assert mask("abcdefgh") == "****efgh"
    assert mask("abc") == "****"
    assert mask(None) == ""
