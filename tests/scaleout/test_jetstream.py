"""The wire form of events on NATS: exact round trips, the Nats-Msg-Id rule, names; and what a user sees when
NATS is not there."""

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from framework.account import BalanceUpdate
from framework.errors import ConfigError
from framework.events import ConnectionKey, OrderUpdate, Trade, with_delivery
from framework.scaleout.jetstream import Namespace, event_of, key_of, msg_id, payload, token

TRADE = Trade(exchange="binance", market="spot", symbol="BTC/USDT", symbol_raw="BTCUSDT", trade_id="7",
              order_id="11", client_order_id="a-1", side="buy", amount="0.00100000", price="65000.10",
              cost="65.0001", fee_cost="0.00000100", fee_currency="BTC", is_maker=True, timestamp=1_700_000_000_000,
              raw={"e": "executionReport", "p": "65000.10"})


def test_a_fill_crosses_exactly_and_without_this_process_delivery_facts():
    sent = with_delivery(TRADE, seq=42, redelivered=True)
    got = event_of(payload(sent))
    assert got == TRADE and got.amount == Decimal("0.00100000") and str(got.price) == "65000.10"
    assert (got.seq, got.redelivered, got.owner_unknown) == (None, False, False)
    assert got.fee_cost == Decimal("0.00000100") and got.is_maker is True


def test_a_fill_keeps_its_message_id_whatever_copy_is_sent_and_states_have_none():
    assert msg_id(TRADE) == msg_id(with_delivery(TRADE, seq=9)) == msg_id(event_of(payload(TRADE)))
    other = Trade(**{**{a: getattr(TRADE, a) for a in ("exchange", "market", "symbol", "symbol_raw", "order_id",
                                                       "side", "amount", "price", "cost", "timestamp")},
                     "trade_id": "8"})
    assert msg_id(other) != msg_id(TRADE)
    order = OrderUpdate(exchange="binance", market="spot", symbol="BTC/USDT", symbol_raw="BTCUSDT", order_id="11",
                        side="buy", order_type="limit", status="partially_filled", status_raw="PARTIALLY_FILLED", amount="1", price="65000",
                        filled="0.5", timestamp=1)
    assert msg_id(order) and msg_id(order) != msg_id(attrs.evolve(order, filled="0.6"))
    balance = BalanceUpdate(exchange="binance", market="spot", asset="BTC", free="1", locked="0", total="1",
                            timestamp=1)
    assert msg_id(balance) is None and event_of(payload(balance)) == balance


def test_keys_and_names_on_nats():
    assert token(ConnectionKey.parse("bybit_future")) == "bybit_future"
    sub = ConnectionKey.parse("binance_spot@desk-2")
    assert token(sub) == "binance_spot=desk-2" and key_of(token(sub)) == sub
    with pytest.raises(ConfigError, match="account"):
        token(ConnectionKey.parse("binance_spot@a.b"))
    with pytest.raises(ConfigError, match="namespace"):
        Namespace("bad name")
    assert Namespace("t1").subject(sub, "trade") == "t1.binance_spot=desk-2.trade"


ROOT = Path(__file__).parents[2]
CLI = "import sys; from framework.scaleout.cli import {0} as main; sys.exit(main(sys.argv[1:], prog={1!r}))"


@pytest.mark.parametrize("tool", ["tradesync-status", "tradesync-streamer", "run_strategy.py"])
def test_nats_unreachable_at_start_is_one_clear_line(tool, tmp_path):
    files = ["--db", f"sqlite:///{tmp_path}/t.sqlite", "--log-dir", str(tmp_path / "logs")]
    if tool == "run_strategy.py":
        command = [sys.executable, "scripts/run_strategy.py", "--duration", "1", *files]
    elif tool == "tradesync-streamer":
        command = [sys.executable, "-c", CLI.format("streamer_main", tool), "--duration", "1", *files]
    else:
        command = [sys.executable, "-c", CLI.format("status_main", tool)]
    done = subprocess.run([*command, "--nats", "nats://127.0.0.1:1"], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "NATS at nats://127.0.0.1:1 is unreachable" in lines[0], done.stderr
