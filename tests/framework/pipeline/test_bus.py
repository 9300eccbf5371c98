"""The bus in a real pool (SQLite in tmp_path, PostgreSQL where the store matters): priority, overflow
policies, a stalled consumer, breakers and dead letters, hung handlers, alerts, dedup and validation."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchanges.mock import MockConnector
from framework.pipeline import (
    AlertConfig,
    BreakerConfig,
    Channel,
    Lane,
    MessageQueueConfig,
    PerformanceConfig,
    PipelineConfig,
)
from framework.pipeline.breaker import BreakerState
from framework.pool import ConnectionPool
from framework.strategy import BaseStrategy

YEAR_2001_MS = 978_307_200_000


class Recorder(BaseStrategy):
    def on_start(self):
        self.trades, self.updates = [], []

    def on_trade(self, trade):
        self.trades.append(trade)

    def on_order_update(self, update):
        self.updates.append(update)


class Fast:
    """A component that records everything at once."""

    def __init__(self) -> None:
        self.fills: list = []
        self.orders: list = []
        self.data: list = []

    async def on_trade_update(self, trade) -> None:
        self.fills.append(trade)

    async def on_order_update_update(self, update) -> None:
        self.orders.append(update)

    async def process_websocket_data(self, channel, data) -> None:
        self.data.append((channel, data))


@contextlib.asynccontextmanager
async def running_pool(url: str, log_dir: Path, **options):
    pool = ConnectionPool(url, log_dir, **options)
    await pool.start()
    try:
        yield pool
    finally:
        await asyncio.wait_for(pool.stop(), 15)


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'trades.sqlite'}"


async def until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.005)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def feed(pool: ConnectionPool, strategy_id: str = "watcher") -> tuple[Recorder, MockConnector]:
    """A running strategy on binance spot (it opens the key's connection) and the connector to push through."""
    strategy = Recorder(strategy_id, [MockConnector("binance", "spot")], pool=pool)
    await strategy.start()
    return strategy, strategy.exchange_connectors[0]


# 1. priority -------------------------------------------------------------------------------------------------------
async def test_fill_published_after_ten_thousand_book_updates_is_handled_before_them(tmp_path):
    async with asyncio.timeout(60):
        config = MessageQueueConfig(max_size=20_000, timeout_seconds=60.0)
        async with running_pool(sqlite_url(tmp_path), tmp_path / "logs", queue_config=config) as pool:
            strategy, connector = await feed(pool)
            handled: list[tuple[str, object]] = []
            entered, release = asyncio.Event(), asyncio.Event()

            class Saturated:
                async def on_book_update(self, book):
                    if book["n"] == -1:
                        entered.set()
                        await release.wait()
                    handled.append(("book", book["n"]))

                async def on_trade_update(self, trade):
                    handled.append(("trade", trade.trade_id))

            component = pool.pipeline.register_component("saturated", Saturated(), ["book", "trade"])
            key = connector.key
            assert pool.pipeline.publish_data("book", {"n": -1}, key=key, symbol="BLOCK/USDT")
            await asyncio.wait_for(entered.wait(), 5)
            for n in range(10_000):
                assert pool.pipeline.publish_data(Channel.BOOK, {"n": n}, key=key, symbol=f"S{n}/USDT")
            fill = await connector.push_trade("BTC/USDT", "buy", "1", "100")
            await until(lambda: component.queues.depth()[Lane.CRITICAL] == 1, what="the stored fill queued")
            assert component.queues.depth()[Lane.HIGH] == 10_000

            release.set()
            await until(lambda: len(handled) == 10_002, 30, "everything handled")
            assert handled[0] == ("book", -1)
            assert handled[1] == ("trade", fill.trade_id)
            assert handled[2:] == [("book", n) for n in range(10_000)]
            await strategy.stop()


# 2. overflow policies on the bus -----------------------------------------------------------------------------------
async def test_blocked_component_gets_only_the_newest_ticker_per_symbol_and_counts_the_rest_coalesced(tmp_path):
    async with asyncio.timeout(30):
        config = MessageQueueConfig(max_size=100, timeout_seconds=60.0)
        async with running_pool(sqlite_url(tmp_path), tmp_path / "logs", queue_config=config) as pool:
            got, entered, release = [], asyncio.Event(), asyncio.Event()

            class Blocked:
                async def on_ticker_update(self, ticker):
                    if ticker["v"] == -1:
                        entered.set()
                        await release.wait()
                    got.append((ticker["s"], ticker["v"]))

            pool.pipeline.register_component("tickers", Blocked(), ["ticker"])
            pool.pipeline.publish_data("ticker", {"s": "BLOCK", "v": -1}, symbol="BLOCK")
            await asyncio.wait_for(entered.wait(), 5)
            for version in range(5):
                for symbol in ("BTC", "ETH", "SOL"):
                    pool.pipeline.publish_data("ticker", {"s": symbol, "v": version}, symbol=symbol)
            release.set()
            await until(lambda: len(got) == 4, what="the coalesced tickers")
            await asyncio.sleep(0.05)
            assert got == [("BLOCK", -1), ("BTC", 4), ("ETH", 4), ("SOL", 4)]
            lanes = pool.pipeline.monitor.get_performance_report()["consumers"]["tickers"]["lanes"]
            assert lanes["high"]["coalesced"] == 12 and lanes["high"]["dropped"] == 0
            assert lanes["high"]["enqueued"] == 16 and lanes["high"]["handled"] == 4


async def test_blocked_component_keeps_the_newest_candles_and_counts_exactly_the_dropped_ones(tmp_path):
    async with asyncio.timeout(30):
        config = MessageQueueConfig(max_size=10, timeout_seconds=60.0)
        async with running_pool(sqlite_url(tmp_path), tmp_path / "logs", queue_config=config) as pool:
            got, entered, release = [], asyncio.Event(), asyncio.Event()

            class Blocked:
                async def on_ohlc_update(self, candle):
                    if candle == -1:
                        entered.set()
                        await release.wait()
                    got.append(candle)

            pool.pipeline.register_component("candles", Blocked(), ["ohlc"])
            pool.pipeline.publish_data("ohlc", -1)
            await asyncio.wait_for(entered.wait(), 5)
            for n in range(35):
                pool.pipeline.publish_data("ohlc", n)
            release.set()
            await until(lambda: len(got) == 11, what="the newest candles")
            await asyncio.sleep(0.05)
            assert got == [-1, *range(25, 35)]
            medium = pool.pipeline.monitor.get_performance_report()["consumers"]["candles"]["lanes"]["medium"]
            assert medium["dropped"] == 25 and medium["handled"] == 11


# 3. CRITICAL under a stalled consumer ------------------------------------------------------------------------------
class Stalled:
    """Handles one event per permit the test grants, until `free()`."""

    def __init__(self) -> None:
        self.fills: list = []
        self.orders: list = []
        self.permits = asyncio.Semaphore(0)
        self.granted = 0
        self.is_free = False

    def grant(self, n: int) -> None:
        self.granted += n
        for _ in range(n):
            self.permits.release()

    def free(self) -> None:
        self.is_free = True
        self.permits.release()

    async def _turn(self) -> None:
        if not self.is_free:
            await self.permits.acquire()

    async def on_trade_update(self, trade) -> None:
        await self._turn()
        self.fills.append(trade)

    async def on_order_update_update(self, update) -> None:
        await self._turn()
        self.orders.append(update)


async def stalled_consumer_scenario(url: str, log_dir: Path, schedule: list[tuple]) -> int:
    """Runs `schedule` against a slow component (bound 3), a fast one and a strategy; returns how many fills
    did not fit the slow one's queue (read back from the store)."""
    config = MessageQueueConfig(max_size=3, timeout_seconds=60.0)
    async with running_pool(url, log_dir, queue_config=config) as pool:
        strategy, connector = await feed(pool)
        slow, fast = Stalled(), Fast()
        pool.pipeline.register_component("slow", slow, ["trade", "order_update"])
        pool.pipeline.register_component("fast", fast, ["trade", "order_update"])
        pushed_fills: list[str] = []
        newest: dict[str, int] = {}
        versions = Counter()
        push_seconds: list[float] = []
        for step in schedule:
            kind, n = step
            if kind == "fills":
                for _ in range(n):
                    started = time.perf_counter()
                    fill = await connector.push_trade("BTC/USDT", "buy", "0.5", "100")
                    push_seconds.append(time.perf_counter() - started)
                    pushed_fills.append(fill.trade_id)
            elif kind == "orders":
                for i in range(n):
                    order = f"O{(len(versions) + i) % 3}"
                    versions[order] += 1
                    newest[order] = versions[order]
                    started = time.perf_counter()
                    await connector.push_order_update("BTC/USDT", "buy", "100", "10", status="partially_filled",
                                                      filled=str(versions[order]), order_id=order)
                    push_seconds.append(time.perf_counter() - started)
            elif kind == "consume":
                slow.grant(n)
                await asyncio.sleep(0)
            else:  # "settle": let the store writer and the components run a while
                await pool.trade_sync.wait_stored(10)
                await asyncio.sleep(0.01)

        # the others get everything while the slow one still holds its events
        await pool.trade_sync.wait_stored(10)
        await until(lambda: len(fast.fills) == len(pushed_fills) and len(strategy.trades) == len(pushed_fills),
                    what="the fast component and the strategy")
        assert len(slow.fills) + len(slow.orders) <= slow.granted
        assert sorted(f.trade_id for f in fast.fills) == sorted(pushed_fills)
        assert sorted(t.trade_id for t in strategy.trades) == sorted(pushed_fills)
        assert max(push_seconds, default=0.0) < 0.5  # the socket side never waits for a consumer
        overflowed = pool.pipeline.component("slow").queues.counters[Lane.CRITICAL].overflowed

        slow.free()
        await until(lambda: len(slow.fills) == len(pushed_fills), what="the slow component's catch-up")
        await pool.flush(10)
        await asyncio.sleep(0.02)
        seqs = [f.seq for f in slow.fills]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert Counter(f.trade_id for f in slow.fills) == Counter(pushed_fills)
        assert sorted(seqs) == sorted(f.seq for f in fast.fills)
        for consumer in (slow, fast):  # both are bounded (3): past it, the newest state of each order
            for order, last in newest.items():
                received = [int(u.filled) for u in consumer.orders if u.order_id == order]
                assert received == sorted(received) and len(set(received)) == len(received)
                assert received[-1] == last
        await strategy.stop()
        return overflowed


steps = st.one_of(
    st.tuples(st.just("fills"), st.integers(1, 8)),
    st.tuples(st.just("orders"), st.integers(1, 5)),
    st.tuples(st.just("consume"), st.integers(0, 6)),
    st.tuples(st.just("settle"), st.just(0)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=st.lists(steps, min_size=1, max_size=10))
def test_stalled_consumer_gets_every_fill_once_in_seq_order_and_never_slows_the_others(schedule):
    async def scenario() -> None:
        with tempfile.TemporaryDirectory() as directory:
            async with asyncio.timeout(60):
                await stalled_consumer_scenario(sqlite_url(Path(directory)), Path(directory) / "logs", schedule)

    asyncio.run(scenario())


async def test_stalled_consumer_far_past_its_bound_catches_up_from_the_store(store_url, tmp_path):
    schedule = [("fills", 8), ("orders", 5), ("consume", 2), ("settle", 0), ("fills", 8), ("orders", 4),
                ("consume", 1), ("fills", 6), ("settle", 0)]
    async with asyncio.timeout(60):
        overflowed = await stalled_consumer_scenario(store_url, tmp_path / "logs", schedule)
    assert overflowed > 0  # the catch-up from the store ran


# 4. breaker and dead letters ---------------------------------------------------------------------------------------
class Flaky:
    def __init__(self) -> None:
        self.failing = True
        self.fills: list = []

    async def on_trade_update(self, trade) -> None:
        if self.failing:
            raise RuntimeError("risk check down")
        self.fills.append(trade)


async def test_breaker_opens_half_opens_closes_and_missed_fills_are_replayed_to_it(store_url, tmp_path):
    breaker = BreakerConfig(failure_threshold=3, cool_down_seconds=0.3, min_calls_for_rate=1000)
    async with asyncio.timeout(60):
        async with running_pool(store_url, tmp_path / "logs", pipeline_config=PipelineConfig(breaker=breaker),
                                alert_config=AlertConfig(max_error_rate_percent=100.0)) as pool:
            strategy, connector = await feed(pool)
            flaky = Flaky()
            component = pool.pipeline.register_component("risk", flaky, ["trade"])
            transitions: list[tuple[str, str]] = []
            component.breaker.on_change = lambda name, old, new: transitions.append((old.value, new.value))

            failed = [await connector.push_trade("BTC/USDT", "buy", "1", "100") for _ in range(3)]
            await until(lambda: component.breaker.state is BreakerState.OPEN, what="the breaker to open")
            missed = [await connector.push_trade("BTC/USDT", "sell", "1", "101") for _ in range(2)]
            await until(lambda: component.missed == 2, what="fills missed while open")
            assert component.breaker.state is BreakerState.OPEN
            assert transitions == [("closed", "open")]
            await until(lambda: len(strategy.trades) == 5, what="the strategy's fills")

            letters = []

            async def letters_written() -> None:
                while len(letters) < 5:
                    letters[:] = await pool.store.fetch_dead_letters(consumer="risk")
                    await asyncio.sleep(0.02)

            await asyncio.wait_for(letters_written(), 10)
            assert [letter["consumer"] for letter in letters] == ["risk"] * 5
            assert [letter["error"].split(":")[0] for letter in letters] == ["handler failed"] * 3 + [
                "circuit breaker open"] * 2
            assert all(letter["replayed_at"] is None for letter in letters)
            assert await pool.store.fetch_dead_letters(consumer="someone-else") == []

            flaky.failing = False
            await asyncio.sleep(0.35)  # past the cool-down: the next event is the one trial
            trial = await connector.push_trade("BTC/USDT", "buy", "2", "102")
            await until(lambda: len(flaky.fills) == 1, what="the trial")
            assert transitions == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
            assert flaky.fills[0].trade_id == trial.trade_id

            replayed = await pool.pipeline.replay_dead_letters("risk")
            assert replayed == 5
            await until(lambda: len(flaky.fills) == 6, what="the replayed fills")
            assert [f.trade_id for f in flaky.fills[1:]] == [t.trade_id for t in failed + missed]
            assert all(f.redelivered for f in flaky.fills[1:])
            assert await pool.store.fetch_dead_letters(pending_only=True, consumer="risk") == []
            after = await pool.store.fetch_dead_letters(consumer="risk")
            assert all(letter["replayed_at"] is not None for letter in after)
            assert [letter["replay_result"] for letter in after] == ["replayed to risk"] * 5
            assert component.breaker.state is BreakerState.CLOSED
            await strategy.stop()


# 5. hung handlers --------------------------------------------------------------------------------------------------
async def test_handlers_hung_past_the_timeout_count_a_timeout_and_a_dead_letter_and_hold_up_nobody(tmp_path):
    async with asyncio.timeout(60):
        config = MessageQueueConfig(timeout_seconds=1.0)
        async with running_pool(sqlite_url(tmp_path), tmp_path / "logs", queue_config=config) as pool:
            strategy, connector = await feed(pool)
            hang_async_got, hang_sync_got = [], []

            class HangsAsync:
                async def on_order_update_update(self, update):
                    if update.order_id == "HANG":
                        await asyncio.Event().wait()
                    hang_async_got.append(update.order_id)

            class HangsInThread:
                def on_order_update_update(self, update):
                    if update.order_id == "HANG":
                        time.sleep(2.5)
                        return
                    hang_sync_got.append(update.order_id)

            fast = Fast()
            hangs_async = pool.pipeline.register_component("hangs-async", HangsAsync(), ["order_update"])
            hangs_sync = pool.pipeline.register_component("hangs-sync", HangsInThread(), ["order_update"])
            pool.pipeline.register_component("fast", fast, ["order_update", "trade"])

            started = time.perf_counter()
            await connector.push_order_update("BTC/USDT", "buy", "1", "100", order_id="HANG")
            await connector.push_order_update("BTC/USDT", "buy", "1", "100", order_id="NEXT1")
            fill = await connector.push_trade("BTC/USDT", "buy", "1", "100")
            await connector.push_order_update("BTC/USDT", "buy", "1", "100", order_id="NEXT2")
            assert time.perf_counter() - started < 0.25  # the socket side did not wait

            await pool.trade_sync.wait_stored(5)
            await until(lambda: len(fast.orders) == 3 and len(fast.fills) == 1 and len(strategy.updates) == 3,
                        0.9, "the others before the hung handlers' timeout")
            assert [f.trade_id for f in fast.fills] == [fill.trade_id]
            assert fast.fills[0].seq == await pool.store.max_seq()  # stored while the hung handlers hang
            assert hangs_async.timeouts == 0 and hangs_sync.timeouts == 0

            await until(lambda: hangs_async.timeouts == 1 and hangs_sync.timeouts == 1, 5, "the timeouts")
            await until(lambda: hang_async_got == ["NEXT1", "NEXT2"] and hang_sync_got == ["NEXT1", "NEXT2"], 5,
                        "the next events to reach the hung components")
            for name in ("hangs-async", "hangs-sync"):
                letters = []
                async with asyncio.timeout(5):
                    while not letters:
                        letters = await pool.store.fetch_dead_letters(consumer=name)
                        await asyncio.sleep(0.02)
                assert len(letters) == 1 and "HANG" in letters[0]["raw"]
                assert letters[0]["error"].startswith("handler failed: TimeoutError")
            report = pool.pipeline.monitor.get_performance_report()["consumers"]
            assert report["hangs-async"]["timeouts"] == 1 and report["hangs-sync"]["timeouts"] == 1
            assert report["fast"]["timeouts"] == 0
            await strategy.stop()


# 6. alerts ---------------------------------------------------------------------------------------------------------
async def test_queue_size_alert_reaches_an_alert_component_once_firing_and_once_resolving(tmp_path):
    alerts = AlertConfig(queue_size_warning_threshold=3, queue_size_critical_threshold=1000, max_latency_ms=1e6,
                         min_throughput_msgs_per_sec=0, max_memory_mb=1e6, max_drop_rate_percent=100.0)
    async with asyncio.timeout(30):
        async with running_pool(sqlite_url(tmp_path), tmp_path / "logs", alert_config=alerts,
                                performance_config=PerformanceConfig(metrics_interval_seconds=0.05),
                                queue_config=MessageQueueConfig(timeout_seconds=60.0)) as pool:
            seen, entered, release = [], asyncio.Event(), asyncio.Event()

            class Stuck:
                async def on_heartbeat_update(self, beat):
                    if beat == 0:
                        entered.set()
                        await release.wait()

            class Watcher:
                def on_alert_update(self, alert):
                    seen.append(alert)

            pool.pipeline.register_component("stuck", Stuck(), ["heartbeat"])
            pool.pipeline.register_component("pager", Watcher(), ["alert"])
            for n in range(6):
                pool.pipeline.publish_data("heartbeat", n)
            await asyncio.wait_for(entered.wait(), 5)

            def ours():
                return [(a.name, a.scope, a.severity, a.state) for a in seen if a.scope == "stuck"]

            await until(lambda: ours() == [("queue_size", "stuck", "warning", "firing")], 5, "the alert firing")
            active = pool.get_connection_status()["pipeline"]["alerts"]
            assert [(a["name"], a["scope"], a["severity"], a["value"]) for a in active if a["scope"] == "stuck"] == [
                ("queue_size", "stuck", "warning", 5)]
            await asyncio.sleep(0.2)  # several checks while still firing: no repeat
            assert ours() == [("queue_size", "stuck", "warning", "firing")]

            release.set()
            await until(lambda: len(ours()) == 2, 5, "the alert resolving")
            await asyncio.sleep(0.2)
            assert ours() == [("queue_size", "stuck", "warning", "firing"),
                              ("queue_size", "stuck", "warning", "resolved")]
            assert [a for a in pool.get_connection_status()["pipeline"]["alerts"] if a["scope"] == "stuck"] == []


# 7. dedup ----------------------------------------------------------------------------------------------------------
async def test_exact_repeat_inside_the_dedup_window_is_dropped_and_passes_after_it(tmp_path):
    async with asyncio.timeout(30):
        config = MessageQueueConfig(dedup_window_seconds=0.2)
        async with running_pool(sqlite_url(tmp_path), tmp_path / "logs", queue_config=config) as pool:
            fast = Fast()
            pool.pipeline.register_component("prints", fast, ["public_trade"])
            tick = {"price": "100.5", "amount": "0.1", "id": "P1"}
            assert pool.pipeline.publish_data("public_trade", tick, symbol="BTC/USDT") is True
            assert pool.pipeline.publish_data("public_trade", dict(tick), symbol="BTC/USDT") is False
            assert pool.pipeline.publish_data("public_trade", tick, symbol="ETH/USDT") is True  # not the same event
            await asyncio.sleep(0.25)
            assert pool.pipeline.publish_data("public_trade", tick, symbol="BTC/USDT") is True
            await until(lambda: len(fast.data) == 3, what="three prints")
            await asyncio.sleep(0.05)
            assert fast.data == [("public_trade", tick)] * 3
            assert pool.get_connection_status()["pipeline"]["repeats_dropped"] == 1


async def test_dedup_off_passes_an_exact_repeat(tmp_path):
    async with asyncio.timeout(30):
        config = MessageQueueConfig(enable_deduplication=False)
        async with running_pool(sqlite_url(tmp_path), tmp_path / "logs", queue_config=config) as pool:
            fast = Fast()
            pool.pipeline.register_component("prints", fast, ["public_trade"])
            tick = {"price": "100.5", "id": "P1"}
            assert pool.pipeline.publish_data("public_trade", tick, symbol="BTC/USDT") is True
            assert pool.pipeline.publish_data("public_trade", tick, symbol="BTC/USDT") is True
            await until(lambda: len(fast.data) == 2, what="both prints")
            assert pool.get_connection_status()["pipeline"]["repeats_dropped"] == 0


@pytest.mark.parametrize("dedup", [True, False])
async def test_duplicate_fill_reaches_no_consumer_twice(tmp_path, dedup):
    async with asyncio.timeout(30):
        config = MessageQueueConfig(enable_deduplication=dedup)
        async with running_pool(sqlite_url(tmp_path), tmp_path / "logs", queue_config=config) as pool:
            strategy, connector = await feed(pool)
            fast = Fast()
            pool.pipeline.register_component("fast", fast, ["trade"])
            stamp = int(time.time() * 1000)
            first = await connector.push_trade("BTC/USDT", "buy", "1", "100", trade_id="T-dup", order_id="O-dup",
                                               timestamp=stamp)
            await pool.flush(5)
            await connector.push_trade("BTC/USDT", "buy", "1", "100", trade_id="T-dup", order_id="O-dup",
                                       timestamp=stamp)
            await connector.push_trade("BTC/USDT", "buy", "1", "100", trade_id="T-dup", order_id="O-dup",
                                       timestamp=stamp)
            later = await connector.push_trade("BTC/USDT", "buy", "1", "100", trade_id="T-next", timestamp=stamp)
            await pool.flush(5)
            await until(lambda: len(fast.fills) == 2 and len(strategy.trades) == 2, what="two distinct fills")
            await asyncio.sleep(0.05)
            assert [f.trade_id for f in fast.fills] == [first.trade_id, later.trade_id]
            assert [t.trade_id for t in strategy.trades] == [first.trade_id, later.trade_id]
            await strategy.stop()


# 8. validation -----------------------------------------------------------------------------------------------------
async def test_event_with_insane_values_is_a_dead_letter_and_reaches_no_consumer(tmp_path):
    async with asyncio.timeout(30):
        async with running_pool(sqlite_url(tmp_path), tmp_path / "logs") as pool:
            strategy, connector = await feed(pool)
            fast = Fast()
            pool.pipeline.register_component("fast", fast, ["trade", "order_update"])
            await connector.push_trade("BTC/USDT", "buy", "1", "100", trade_id="T-2001", timestamp=YEAR_2001_MS)
            await connector.push_order_update("BTC/USDT", "buy", "1", "100", order_id="O-neg", filled="-1")
            sane = await connector.push_trade("BTC/USDT", "buy", "1", "100", trade_id="T-sane")
            await pool.flush(5)
            await until(lambda: len(fast.fills) == 1 and len(strategy.trades) == 1, what="the sane fill")
            await asyncio.sleep(0.05)
            assert [f.trade_id for f in fast.fills] == [sane.trade_id]
            assert fast.orders == [] and strategy.updates == []
            assert [t.trade_id for t in strategy.trades] == [sane.trade_id]
            letters = await pool.store.fetch_dead_letters()
            assert len(letters) == 2
            assert letters[0]["error"].startswith(f"timestamp {YEAR_2001_MS} is outside")
            assert "T-2001" in letters[0]["raw"]
            assert letters[1]["error"] == "filled -1 is negative" and "O-neg" in letters[1]["raw"]
            assert all(letter["consumer"] is None for letter in letters)
            assert pool.get_connection_status()["pipeline"]["invalid"] == 2
            await strategy.stop()


# the monitor on the bus ---------------------------------------------------------------------------------------------
async def test_metrics_component_gets_the_monitors_report_and_the_trade_sync_log_has_the_alert(tmp_path):
    alerts = AlertConfig(queue_size_warning_threshold=2, queue_size_critical_threshold=3, max_latency_ms=1e6,
                         min_throughput_msgs_per_sec=0, max_memory_mb=1e6, max_drop_rate_percent=100.0)
    async with asyncio.timeout(30):
        async with running_pool(sqlite_url(tmp_path), tmp_path / "logs", alert_config=alerts,
                                performance_config=PerformanceConfig(metrics_interval_seconds=0.05)) as pool:
            reports, release = [], asyncio.Event()

            class Dashboard:
                def on_metrics_update(self, report):
                    reports.append(report)

            class Stuck:
                async def on_heartbeat_update(self, beat):
                    await release.wait()

            pool.pipeline.register_component("dashboard", Dashboard(), ["metrics"])
            pool.pipeline.register_component("stuck", Stuck(), ["heartbeat"])
            for n in range(5):
                pool.pipeline.publish_data("heartbeat", n)
            await until(lambda: len(reports) >= 2, 5, "two reports")
            assert reports[-1]["consumers"]["stuck"]["queue_size"] == 4
            await until(lambda: any(a["severity"] == "critical" for a in pool.get_connection_status()["pipeline"]["alerts"]),
                        5, "the critical alert")
            assert not pool.pipeline.monitor.is_healthy()
            release.set()
            pool.sync_log.flush()
            log = pool.sync_log.path.read_text()
            assert "| ERROR   | alert firing | name=queue_size scope=stuck severity=critical" in log, log


async def test_component_far_behind_on_order_updates_reads_the_latest_states_back_from_the_store(tmp_path):
    async with asyncio.timeout(30):
        async with running_pool(sqlite_url(tmp_path), tmp_path / "logs",
                                queue_config=MessageQueueConfig(max_size=3, timeout_seconds=30.0)) as pool:
            seen, release = [], asyncio.Event()

            class Stuck:
                async def on_order_update_update(self, update):
                    await release.wait()
                    seen.append((update.order_id, update.status.value))

            pool.pipeline.register_component("stuck", Stuck(), ["order_update"])
            _, connector = await feed(pool)
            for status, filled in (("new", "0"), ("partially_filled", "1")):
                for i in range(20):
                    await connector.push_order_update("BTC/USDT", "buy", "2", "100", status=status, filled=filled,
                                                      order_id=f"o{i}")
            await pool.trade_sync.wait_stored(10)  # every state stored; the component holds 3 queued + 3 aside
            component = pool.pipeline.component("stuck")
            assert len(component.queues) <= 6 and component.queues.states_behind is not None
            release.set()
            await until(lambda: {o for o, s in seen if s == "partially_filled"} == {f"o{i}" for i in range(20)}, 10,
                        "every order's latest state")
            latest = {}
            for order_id, status in seen:
                assert not (latest.get(order_id) == "partially_filled" and status == "new"), seen
                latest[order_id] = status


async def test_plain_function_component_far_behind_reads_fills_back_on_its_own_thread_once_each_in_order(tmp_path):
    import threading

    gate = threading.Event()
    seen, threads = [], set()

    class Blocking:
        def on_trade_update(self, trade):
            gate.wait(10)
            threads.add(threading.current_thread().name)
            seen.append(trade.seq)

    async with asyncio.timeout(30):
        async with running_pool(sqlite_url(tmp_path), tmp_path / "logs",
                                queue_config=MessageQueueConfig(max_size=3, timeout_seconds=30.0)) as pool:
            pool.pipeline.register_component("blocking", Blocking(), ["trade"])
            _, connector = await feed(pool)
            for i in range(40):
                await connector.push_trade("BTC/USDT", "buy", "1", "100", trade_id=f"t{i}")
            await pool.trade_sync.wait_stored(10)
            assert pool.pipeline.component("blocking").stats.lanes[Lane.CRITICAL].overflowed > 0
            gate.set()
            await until(lambda: len(seen) >= 40, 10, "every fill")
            await asyncio.sleep(0.1)
            stored = sorted(t.seq for t in await pool.store.fetch_trades())
            assert seen == stored  # each once, in seq order
            assert threads == {"component-blocking"}
