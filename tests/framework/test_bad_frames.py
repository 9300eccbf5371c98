"""Bad data never vanishes and never stops anything: every frame that cannot be decoded or normalized, and
every event whose values are not sane, is a dead letter with its reason; the connection goes on, never reconnects."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchanges.mock import MockConnection, MockConnector
from exchanges.simulator import Simulator
from framework.events import ConnectionKey, now_ms
from framework.pool import ConnectionPool
from framework.strategy import BaseStrategy
from framework.validate import EARLIEST_MS, FUTURE_TOLERANCE_MS, problem

HUGE = 2**63  # no int64 column takes it
DAY_MS = 86_400_000


class Recorder(BaseStrategy):
    def on_start(self):
        self.trades, self.updates = [], []

    def on_trade(self, trade):
        self.trades.append(trade)

    def on_order_update(self, update):
        self.updates.append(update)


async def _until(predicate, timeout=10.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def binance_fill(trade_id: int, time: int | str = 1_700_000_000_000, qty: str = "0.5", price: str = "100.25") -> str:
    """A Binance spot `executionReport` as the WebSocket-API subscription wraps it (docs' fields)."""
    return json.dumps({"subscriptionId": 0, "event": {
        "e": "executionReport", "E": time, "s": "BTCUSDT", "c": "s1-1", "S": "BUY", "o": "LIMIT", "f": "GTC",
        "q": "1.00000000", "p": price, "P": "0", "F": "0", "g": -1, "C": "", "x": "TRADE", "X": "PARTIALLY_FILLED",
        "r": "NONE", "i": 7000 + trade_id, "l": qty, "z": qty, "L": price, "n": "0", "N": "BNB", "T": time,
        "t": trade_id, "I": 1, "w": False, "m": False, "M": True, "O": time, "Z": "50.125", "Y": "50.125",
        "Q": "0"}}).replace(f'"T": {json.dumps(time)}', f'"T": {time}')


BAD_FRAMES = {
    "truncated JSON": '{"subscriptionId": 0, "event": {"e": "executionReport", "s": "BTC',
    "junk text": "<html>502 Bad Gateway</html>",
    "binary on a JSON stream": b"\x00\xff\x10binary",
    "deeply nested JSON": "[" * 100_000,
    "a JSON array": "[1, 2, 3]",
    "a JSON number": "42",
    "plain text the venue never sends": "pong",
}
EXPECTED_ERRORS = {
    "truncated JSON": "not JSON: Unterminated string",
    "junk text": "not JSON: Expecting value",
    "binary on a JSON stream": "a binary frame (9 bytes) on a JSON stream",
    "deeply nested JSON": "JSON nested too deeply to read (100000 characters)",
    "a JSON array": "a JSON array where a JSON object was expected",
    "a JSON number": "a JSON number where a JSON object was expected",
    "plain text the venue never sends": "not JSON: Expecting value",
}


async def test_every_kind_of_malformed_frame_is_a_dead_letter_and_push_raw_goes_on(tmp_path):
    async with asyncio.timeout(20), ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
        s = Recorder("s1", [MockConnector("binance", "spot")], pool=pool)
        await s.start()
        c = s.exchange_connectors[0]
        for frame in BAD_FRAMES.values():
            await c.push_raw(frame)  # never raises
        await c.push_raw(binance_fill(1))
        await pool.flush(5)

        letters = await pool.store.fetch_dead_letters()
        assert len(letters) == len(BAD_FRAMES)
        for (name, frame), letter in zip(BAD_FRAMES.items(), letters):
            assert letter["error"].startswith(EXPECTED_ERRORS[name]), (name, letter["error"])
            kept = frame if isinstance(frame, str) else "base64:AP8QYmluYXJ5"
            assert letter["raw"] == kept and letter["connection_key"] == "binance_spot"
        (trade,) = s.trades
        assert (trade.trade_id, str(trade.amount), str(trade.price)) == ("1", "0.5", "100.25")
        assert [t.trade_id for t in await pool.store.fetch_trades()] == ["1"]
        status = pool.get_connection_status()["connections"]["binance_spot"]
        assert status["status"] == "connected" and status["malformed"] == len(BAD_FRAMES) and status["events"] == 2


@pytest.mark.parametrize("store_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_junk_no_text_column_takes_is_kept_as_bytes(store_url, tmp_path):
    async with asyncio.timeout(20), ConnectionPool(store_url, tmp_path / "logs") as pool:
        s = Recorder("s1", [MockConnector("binance", "spot")], pool=pool)
        await s.start()
        await s.exchange_connectors[0].push_raw("\x00junk\x00")  # PostgreSQL text refuses NUL
        await s.exchange_connectors[0].push_raw("half a surrogate \ud800")
        await pool.flush(5)
        letters = await pool.store.fetch_dead_letters()
        assert [d["raw"] for d in letters] == ["base64:AGp1bmsA", "base64:aGFsZiBhIHN1cnJvZ2F0ZSDtoIA="]
        assert all(d["error"].startswith("not JSON") for d in letters)


@pytest.mark.parametrize("exchange, market, text", [
    ("bitget", "spot", "pong"),
    ("hyperliquid", "future", "Websocket connection established."),
])
async def test_plain_text_the_venue_really_sends_stays_ignored(exchange, market, text, tmp_path):
    async with asyncio.timeout(20), ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
        s = Recorder("s1", [MockConnector(exchange, market)], pool=pool)
        await s.start()
        await s.exchange_connectors[0].push_raw(text)
        await s.exchange_connectors[0].push_raw("Pong!")  # not one it sends
        await pool.flush(5)
        (letter,) = await pool.store.fetch_dead_letters()
        assert letter["raw"] == "Pong!" and letter["error"].startswith("not JSON")


async def test_a_frame_that_breaks_classify_is_a_dead_letter(tmp_path):
    async with asyncio.timeout(20), ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
        s = Recorder("s1", [MockConnector("mexc", "future")], pool=pool)
        await s.start()
        await s.exchange_connectors[0].push_raw('{"channel": ["push.personal.order"], "data": {}}')
        await pool.flush(5)
        (letter,) = await pool.store.fetch_dead_letters()
        assert letter["error"] == "classify failed: TypeError: unhashable type: 'list'"
        assert letter["raw"] == '{"channel": ["push.personal.order"], "data": {}}'


async def test_a_normalize_that_raises_anything_keeps_the_frame_as_a_dead_letter(tmp_path):
    def recursing(message, market):
        raise RecursionError("maximum recursion depth exceeded")

    async with asyncio.timeout(20), ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
        key = ConnectionKey(exchange="paperx", market="spot")
        connection = MockConnection(key, pool.pipeline.sink(key), recursing)
        await connection.start()
        connection.on_message('{"type": "trade"}')  # does not raise
        await pool.flush(5)
        (letter,) = await pool.store.fetch_dead_letters()
        assert letter["error"] == "normalize failed: RecursionError: maximum recursion depth exceeded"
        assert letter["raw"] == '{"type": "trade"}' and connection.malformed == 1


# values -------------------------------------------------------------------------------------------------------------
def test_value_rules_give_one_line_reasons():
    from framework.events import OrderUpdate, Trade

    now = 1_800_000_000_000
    fill = dict(exchange="x", market="spot", symbol="BTC/USDT", symbol_raw="BTCUSDT", trade_id="1", order_id="2",
                side="buy", amount="1", price="10", cost="10", timestamp=now)
    assert problem(Trade(**fill), now) is None
    assert problem(Trade(**fill, fee_cost="-0.1"), now) is None  # a rebate
    assert problem(Trade(**{**fill, "price": "0", "cost": "0"}), now) is None  # a zero-price fill (a gift) is real
    cases = {
        ("timestamp", HUGE): f"timestamp {HUGE} is outside 2010-01-01 .. now+10min",
        ("timestamp", now + FUTURE_TOLERANCE_MS + 1): f"timestamp {now + 600_001} is outside 2010-01-01 .. now+10min",
        ("timestamp", EARLIEST_MS - 1): "timestamp 1262303999999 is outside 2010-01-01 .. now+10min",
        ("timestamp", -1): "timestamp -1 is outside 2010-01-01 .. now+10min",
        ("amount", "0"): "amount 0 is not positive",
        ("amount", "-1"): "amount -1 is not positive",
        ("price", "-1"): "price -1 is negative",
        ("cost", "-0.5"): "cost -0.5 is negative",
    }
    for (field, value), reason in cases.items():
        assert problem(Trade(**{**fill, field: value}), now) == reason
    assert problem(Trade(**fill), now - FUTURE_TOLERANCE_MS) is None  # our clock 10 min behind: still sane
    assert problem(Trade(**{**fill, "timestamp": now + 90_000}), now, future_tolerance_ms=60_000) == (
        f"timestamp {now + 90_000} is outside 2010-01-01 .. now+1min")

    order = dict(exchange="x", market="spot", symbol="BTC/USDT", symbol_raw="BTCUSDT", order_id="2", side="buy",
                 order_type="market", status="new", status_raw="New", amount="0", filled="0", timestamp=now)
    assert problem(OrderUpdate(**order), now) is None  # a spot market buy sized in quote: no base amount yet
    assert problem(OrderUpdate(**{**order, "filled": "-1"}), now) == "filled -1 is negative"
    assert problem(OrderUpdate(**{**order, "amount": "-2"}), now) == "amount -2 is negative"
    assert problem(OrderUpdate(**{**order, "timestamp": HUGE}), now).startswith(f"timestamp {HUGE} is outside")


@pytest.mark.parametrize("store_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
async def test_poisoned_values_are_dead_letters_and_storage_goes_on(store_url, tmp_path):
    async with asyncio.timeout(30), ConnectionPool(store_url, tmp_path / "logs") as pool:
        s = Recorder("s1", [MockConnector("binance", "spot")], pool=pool)
        await s.start()
        c = s.exchange_connectors[0]
        await c.push_raw(binance_fill(1, time=HUGE))
        await c.push_raw(binance_fill(2, time=now_ms() + DAY_MS))
        await c.push_raw(binance_fill(3, qty="0"))
        await c.push_trade("BTC/USDT", "buy", "-1", "100", trade_id="4")
        await c.push_trade("BTC/USDT", "buy", "1", "-100", trade_id="5")
        await c.push_trade("BTC/USDT", "buy", "1", "100", trade_id="6", timestamp=HUGE)
        await c.push_order_update("BTC/USDT", "buy", "1", "100", status="partially_filled", filled="-1", order_id="o7")
        await c.push_raw(binance_fill(8))
        await pool.flush(5)

        letters = await pool.store.fetch_dead_letters()
        errors = [d["error"] for d in letters]
        assert errors[0] == f"timestamp {HUGE} is outside 2010-01-01 .. now+10min"
        assert errors[1].startswith("timestamp ") and errors[1].endswith(" is outside 2010-01-01 .. now+10min")
        assert errors[2:] == ["amount 0 is not positive", "amount -1 is not positive", "price -100 is negative",
                              f"timestamp {HUGE} is outside 2010-01-01 .. now+10min", "filled -1 is negative"]
        # A venue event is kept as the venue's own row; a pushed one as its fields in JSON.
        # One letter per poisoned row (its order update and fill together), kept as the venue's own frame.
        assert json.loads(letters[0]["raw"])["event"]["t"] == 1 and f'"T":{HUGE}' in letters[0]["raw"]
        assert json.loads(letters[3]["raw"])["id"] == "4" and json.loads(letters[3]["raw"])["amount"] == "-1"
        assert json.loads(letters[6]["raw"])["order_id"] == "o7"
        # The writer is alive: the good fill after them is stored, and it is the only one.
        assert [t.trade_id for t in await pool.store.fetch_trades()] == ["8"]
        assert [t.trade_id for t in s.trades] == ["8"]
        assert [u.order_id for u in s.updates] == ["7003", "7008"]  # a zero fill's order state is sane; o7's is not
        assert pool.get_connection_status()["connections"]["binance_spot"]["status"] == "connected"


# a real socket -------------------------------------------------------------------------------------------------------
def _hyperliquid_fills(wallet: str, **fill) -> str:
    row = {"coin": "BTC", "px": "65000.5", "sz": "0.01", "side": "B", "time": 1_700_000_000_000,
           "startPosition": "0", "dir": "Open Long", "closedPnl": "0", "hash": "0x" + "ab" * 32, "oid": 9_000_001,
           "crossed": True, "fee": "0.29", "tid": 9_100_001, "feeToken": "USDC", **fill}
    return json.dumps({"channel": "userFills", "data": {"user": wallet, "fills": [row]}})


async def test_poisoned_frames_on_a_real_socket_are_dead_letters_without_a_reconnect(tmp_path):
    async with asyncio.timeout(60), Simulator(exchanges=["hyperliquid"]) as sim:
        async with ConnectionPool(f"sqlite:///{tmp_path / 't.sqlite'}", tmp_path / "logs") as pool:
            s = Recorder("s1", [sim.connector("hyperliquid", "future")], pool=pool)
            await s.start()
            wallet = sim.credentials_for("hyperliquid").wallet_address.lower()
            poisoned = [
                *BAD_FRAMES.values(),
                _hyperliquid_fills(wallet, time=HUGE),
                _hyperliquid_fills(wallet, tid=9_100_002, sz="0"),
                _hyperliquid_fills(wallet, tid=9_100_003, time=now_ms() + DAY_MS),
            ]
            await sim.inject_raw("hyperliquid", "future", "Websocket connection established.")
            for frame in poisoned:
                assert await sim.inject_raw("hyperliquid", "future", frame) == 1
            _, fills = await sim.fill("hyperliquid", "future", "BTC/USDC:USDC", "buy", "0.02", "65000")
            await _until(lambda: len(s.trades) == len(fills))
            await pool.flush(5)

            letters = await pool.store.fetch_dead_letters()
            assert len(letters) == len(poisoned)
            errors = [d["error"] for d in letters]
            for name, error in zip(BAD_FRAMES, errors):
                assert error.startswith(EXPECTED_ERRORS[name]), (name, error)
            assert errors[len(BAD_FRAMES):-1] == [f"timestamp {HUGE} is outside 2010-01-01 .. now+10min",
                                                  "amount 0 is not positive"]
            assert errors[-1].endswith("is outside 2010-01-01 .. now+10min")
            assert sorted(t.trade_id for t in await pool.store.fetch_trades()) == sorted(f.trade_id for f in fills)
            status = pool.get_connection_status()["connections"]["hyperliquid_future"]
            assert status["status"] == "connected" and status["reconnects"] == 0 and status["error"] is None
            assert status["malformed"] == len(poisoned)


# any frame at all ------------------------------------------------------------------------------------------------------
class _CountingSink:
    """Just what a connection hands frames to (its EventSink): dead letters kept, events counted."""

    congested = False

    def __init__(self):
        self.letters, self.events = [], 0

    def dead_letter(self, raw, error):
        self.letters.append((raw, error))

    def publish(self, events):
        self.events += len(events)
        return len(events), 0

    def status(self, status, **fields):
        pass

    def notice(self, notice):
        pass


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["topic", "data", "channel", "e", "event", "op", "c", "arg", "status", "id", "code", "msg"])
        | st.text(max_size=4), inner, max_size=5),
    max_leaves=12,
)
_frames = st.text(max_size=60) | st.binary(max_size=60) | _json.map(json.dumps)


@pytest.mark.parametrize("exchange, market", [(e, m) for e in ("binance", "bybit", "gate", "bitget", "hyperliquid", "mexc")
                                              for m in ("spot", "future") if (e, m) != ("hyperliquid", "spot")])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=_frames)
def test_any_frame_is_read_ignored_or_a_dead_letter_never_an_error(exchange, market, frame):
    from exchanges import get_exchange
    from framework.errors import FrameworkError, NormalizeError

    spec = get_exchange(exchange)
    pool = _CountingSink()
    connection = MockConnection(ConnectionKey(exchange=exchange, market=market), pool, spec.normalize)
    try:
        kind = connection.on_message(frame, spec.stream)
    except FrameworkError as exc:  # the venue's own refusal (a login refused…) is not a bad frame
        assert not isinstance(exc, NormalizeError)
        return
    if kind is None:  # undecodable or unclassifiable: exactly one letter
        assert len(pool.letters) == 1
    assert connection.malformed == len(pool.letters) and all(isinstance(e, str) and e for _, e in pool.letters)
