import json

import pytest

from exchanges.connector import ExchangeConnector, credentials_from_env
from exchanges.mock import MockConnector
from framework.errors import ConfigError
from framework.pool import ConnectionPool
from framework.store import open_store
from framework.strategy import BaseStrategy


class Recorder(BaseStrategy):
    def on_start(self):
        self.trades = []

    def on_trade(self, trade):
        self.trades.append(trade)


async def test_malformed_frames_are_kept_and_the_connection_goes_on(tmp_path):
    async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
        s = Recorder("r", [MockConnector("paperx", "spot")], pool=pool)
        await s.start()
        c = s.exchange_connectors[0]
        bad = [
            '{"type": "trade", "symbol": "BTCUSDT", "side": "buy"}',  # fields missing
            '{"type": "trade", "symbol": "BTCUSDT", "side": "up", "amount": "1", "price": "1", '
            '"trade_id": "1", "order_id": "1", "timestamp": 1}',  # bad side
            "not json at all",
            b"\x00\x01binary",
        ]
        for frame in bad:
            await c.push_raw(frame)
        good = {"type": "trade", "symbol": "BTCUSDT", "side": "buy", "amount": "0.5", "price": "100.25",
                "trade_id": "9", "order_id": "8", "timestamp": 1700000000005}
        await c.push_raw(json.dumps(good))
        await pool.flush(5)
        status = pool.get_connection_status()["connections"]["paperx_spot"]
        assert status["status"] == "connected" and status["malformed"] == 4 and status["events"] == 1
        letters = await pool.store.fetch_dead_letters()
        assert [d["connection_key"] for d in letters] == ["paperx_spot"] * 4
        assert json.loads(letters[0]["raw"]) == json.loads(bad[0])
        assert letters[2]["raw"] == "not json at all" and letters[3]["raw"].startswith("base64:")
        assert all(d["error"] for d in letters)
        (trade,) = s.trades
        assert str(trade.amount) == "0.5" and str(trade.price) == "100.25" and trade.symbol == "BTC/USDT"


def test_missing_credentials_name_the_variable():
    with pytest.raises(ConfigError, match="BYBIT_API_KEY is not set: export it"):
        credentials_from_env("bybit", "default", ("api_key", "secret"), environ={})
    with pytest.raises(ConfigError, match="BYBIT_API_SECRET is not set"):
        credentials_from_env("bybit", "default", ("api_key", "secret"), environ={"BYBIT_API_KEY": "k"})
    with pytest.raises(ConfigError, match="BITGET_PASSPHRASE is not set"):
        credentials_from_env(
            "bitget", "default", ("api_key", "secret", "passphrase"),
            environ={"BITGET_API_KEY": "k", "BITGET_API_SECRET": "s"},
        )
    with pytest.raises(ConfigError, match="BINANCE_SUB1_API_KEY is not set"):
        credentials_from_env("binance", "sub1", ("api_key",), environ={"BINANCE_API_KEY": "k"})
    creds = credentials_from_env("hyperliquid", "default", ("wallet_address",),
                                 environ={"HYPERLIQUID_WALLET_ADDRESS": "0xabc"})
    assert creds.wallet_address == "0xabc"


def test_exchange_connector_reads_the_environment(monkeypatch):
    monkeypatch.delenv("BYBIT_API_KEY", raising=False)
    monkeypatch.delenv("BYBIT_API_SECRET", raising=False)
    with pytest.raises(ConfigError, match="BYBIT_API_KEY is not set"):
        ExchangeConnector("bybit", "spot")
    monkeypatch.setenv("BYBIT_API_KEY", "the-key-1234")
    monkeypatch.setenv("BYBIT_API_SECRET", "the-secret-5678")
    connector = ExchangeConnector("bybit", "perp")
    assert str(connector.key) == "bybit_future" and connector.credentials.secret == "the-secret-5678"
    assert "the-secret-5678" not in repr(connector.credentials) and "the-key-1234" not in repr(connector.credentials)


def test_unknown_exchange_and_bad_store_url_say_what_to_use():
    with pytest.raises(ConfigError, match="use one of binance, bybit"):
        ExchangeConnector("kraken", "spot")
    with pytest.raises(ConfigError, match="sqlite:///"):
        open_store("mysql://localhost/db")
