"""Bus benchmark: events/s through the pipeline to 1, 10 and 100 components (market data and fills), latency
at a paced 10,000 events/s, and a fill's latency while 50,000 book updates/s flood the same component.

The store is in memory (MemoryStore below: a list, no I/O), so the bus is what is measured; TradeSync, its
sync log and the monitor run as in production. Usage:

    python bench/pipeline.py [--quick] [--preset high-performance] [--profile]
"""

from __future__ import annotations

import argparse
import gc
import asyncio
import cProfile
import io
import pstats
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
from hdrh.histogram import HdrHistogram

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exchanges.mock import MockConnector  # noqa: E402
from framework.console import configure_console  # noqa: E402
from framework.events import ConnectionKey, Trade, now_ms  # noqa: E402
from framework.pipeline import Channel, preset  # noqa: E402
from framework.pool import ConnectionPool  # noqa: E402
from framework.runtime import tune_gc  # noqa: E402
from framework.strategy import BaseStrategy  # noqa: E402

KEY = ConnectionKey(exchange="binance", market="spot")
BUS_TARGET = 200_000  # events/s to one consumer
FILL_P99_TARGET_MS = 2.0  # a fill's p99 under the book flood
DEFAULT_GC = gc.get_threshold()
FANOUT_TARGET = 0.8  # 100 components vs 1: events/s ratio (the target for 100 strategies)


from memory_store import MemoryStore  # noqa: E402  (bench/memory_store.py)


# --- events and consumers -----------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class BookUpdate:
    """A top-of-book update as a venue module would publish it (market-data-like, hashable)."""

    key: ConnectionKey
    symbol: str
    update_id: int  # the venue's book sequence: consecutive updates differ, so the dedup window keeps them
    bid: Decimal
    ask: Decimal
    sent_ns: int = attrs.field(eq=False)


_UPDATE_IDS = iter(range(1, 1 << 62))


def book_updates(count: int, symbols: int) -> list[BookUpdate]:
    """`count` updates over `symbols` symbols (S0, S1, …), each with a new update id."""
    bid, ask = Decimal("65000.1"), Decimal("65000.2")
    return [BookUpdate(key=KEY, symbol=f"S{i % symbols}", update_id=next(_UPDATE_IDS), bid=bid, ask=ask,
                       sent_ns=0) for i in range(count)]


def fills(count: int, run: str, first: int = 0) -> list[Trade]:
    ts = now_ms()
    return [Trade(exchange="binance", market="spot", symbol="BTC/USDT", symbol_raw="BTCUSDT",
                  trade_id=f"{run}-{i}", order_id=f"{run}-o{i // 10}", side="buy", amount="0.001",
                  price="65000.5", cost="65.0005", timestamp=ts) for i in range(first, first + count)]


class AsyncCounter:
    """A component with coroutine handlers that count."""

    def __init__(self) -> None:
        self.count = 0

    async def on_book_update(self, data: Any) -> None:
        self.count += 1

    async def on_trade_update(self, data: Any) -> None:
        self.count += 1


class PlainCounter:
    """A component with plain-function handlers that count (the bus runs them on the component's thread)."""

    def __init__(self) -> None:
        self.count = 0

    def on_book_update(self, data: Any) -> None:
        self.count += 1

    def on_trade_update(self, data: Any) -> None:
        self.count += 1


class Stamped:
    """Records publish→handled per event: book updates carry their send time, fills are looked up by id."""

    def __init__(self, sent: dict[str, int] | None = None) -> None:
        self.sent = sent if sent is not None else {}
        self.book = _hist()
        self.fill = _hist()
        self.books = 0

    async def on_book_update(self, data: BookUpdate) -> None:
        self.books += 1
        if data.sent_ns:
            self.book.record_value(max(1, (time.perf_counter_ns() - data.sent_ns) // 1000))

    async def on_trade_update(self, trade: Trade) -> None:
        sent = self.sent.get(trade.trade_id)
        if sent is not None:
            self.fill.record_value(max(1, (time.perf_counter_ns() - sent) // 1000))


class PlainStamped(Stamped):
    def on_book_update(self, data: BookUpdate) -> None:  # type: ignore[override]
        self.books += 1
        if data.sent_ns:
            self.book.record_value(max(1, (time.perf_counter_ns() - data.sent_ns) // 1000))


class FillTimer(BaseStrategy):
    """A strategy noting publish→on_trade for each fill."""

    def on_start(self) -> None:
        self.hist = _hist()

    async def on_trade(self, trade: Trade) -> None:
        sent = self.config["sent"].get(trade.trade_id)
        if sent is not None:
            self.hist.record_value(max(1, (time.perf_counter_ns() - sent) // 1000))


def _hist() -> HdrHistogram:
    return HdrHistogram(1, 60_000_000, 3)


def _ms(hist: HdrHistogram, q: float) -> float:
    return hist.get_value_at_percentile(q) / 1000 if hist.get_total_count() else float("nan")


# --- 1. throughput -----------------------------------------------------------------------------------------
async def bus_throughput(pool: ConnectionPool, n: int, kind: str, events: int) -> dict[str, Any]:
    """publish_data of `events` book updates (distinct symbols per chunk: nothing coalesces) to `n` components."""
    pipeline = pool.pipeline
    chunk = max(1, pipeline.config.queue.max_size // 2)
    cls = AsyncCounter if kind == "async" else PlainCounter
    targets = [cls() for _ in range(n)]
    names = [f"bus-{kind}-{n}-{i}" for i in range(n)]
    for name, target in zip(names, targets):
        pipeline.register_component(name, target, channels=["book"])
    publish = pipeline.publish_data
    book = Channel.BOOK
    elapsed = cpu = 0.0
    for i in range(0, events, chunk):
        batch = book_updates(min(chunk, events - i), chunk)  # built outside the timed part
        started, cpu_started = time.perf_counter(), time.process_time()
        for update in batch:
            publish(book, update, key=KEY, symbol=update.symbol)
        await pipeline.drained()
        elapsed += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
    result = _outcome(pool, names, targets, events, elapsed, cpu)
    for name in names:
        await pipeline.unregister_component(name)
    return result


async def fill_throughput(pool: ConnectionPool, n: int, kind: str, count: int, run: str) -> dict[str, Any]:
    """pipeline.publish(key, [fill]) one fill per call, through TradeSync and the store writer, to `n` components."""
    pipeline = pool.pipeline
    chunk = max(1, min(pipeline.config.queue.max_size // 2, pool.trade_sync.max_batch))
    cls = AsyncCounter if kind == "async" else PlainCounter
    targets = [cls() for _ in range(n)]
    names = [f"fill-{kind}-{n}-{i}" for i in range(n)]
    for name, target in zip(names, targets):
        pipeline.register_component(name, target, channels=["trade"])
    publish = pipeline.publish
    elapsed = cpu = 0.0
    for i in range(0, count, chunk):
        batch = fills(min(chunk, count - i), run, i)  # built outside the timed part
        started, cpu_started = time.perf_counter(), time.process_time()
        for trade in batch:
            publish(KEY, (trade,))
        await pool.trade_sync.wait_stored(60)
        await pipeline.drained()
        elapsed += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
    result = _outcome(pool, names, targets, count, elapsed, cpu)
    for name in names:
        await pipeline.unregister_component(name)
    return result


def _outcome(pool: ConnectionPool, names: list[str], targets: list[Any], events: int, elapsed: float,
             cpu: float) -> dict:
    report = pool.pipeline.monitor.get_performance_report()["consumers"]
    lost = sum(events - t.count for t in targets)
    dropped = sum(report[name]["dropped"] + report[name]["coalesced"] for name in names)
    return {"rate": events / elapsed, "deliveries": events * len(targets) / elapsed, "lost": lost,
            "dropped": dropped, "seconds": elapsed, "cpu_us": cpu / events * 1e6,
            "cpu_rate": events / cpu if cpu else float("nan")}


# --- 2. latency at a paced rate ----------------------------------------------------------------------------
async def paced(publish: Any, events: list[Any], rate: float) -> float:
    """Publish `events` at `rate`/s (catching up on the clock each tick); returns the achieved rate."""
    total = len(events)
    sent = 0
    start = time.perf_counter()
    clock = time.perf_counter
    while sent < total:
        due = min(total, int((clock() - start) * rate) + 1)
        while sent < due:
            publish(events[sent])
            sent += 1
        await asyncio.sleep(0.0002)
    return total / (clock() - start)


async def paced_latency(pool: ConnectionPool, kind: str, rate: float, seconds: float) -> dict[str, Any]:
    pipeline = pool.pipeline
    name = f"paced-{kind}"
    target = Stamped() if kind == "async" else PlainStamped()
    pipeline.register_component(name, target, channels=["book"])
    pipeline.monitor.restart()
    events = book_updates(int(rate * seconds), 50_000)
    book = Channel.BOOK

    def publish(update: BookUpdate) -> None:
        update = attrs.evolve(update, sent_ns=time.perf_counter_ns())
        pipeline.publish_data(book, update, key=KEY, symbol=update.symbol)

    achieved = await paced(publish, events, rate)
    await pipeline.drained()
    consumer = pipeline.monitor.get_performance_report()["consumers"][name]
    await pipeline.unregister_component(name)
    return {"achieved": achieved, "monitor": consumer["latency_ms"], "own": target.book,
            "handled": target.books, "dropped": consumer["dropped"], "coalesced": consumer["coalesced"]}


# --- 3. a fill under a book flood --------------------------------------------------------------------------
async def fill_under_flood(pool: ConnectionPool, flood_rate: float, fill_rate: float, seconds: float,
                           run: str, symbols: int) -> dict[str, Any]:
    pipeline = pool.pipeline
    sent: dict[str, int] = {}
    target = Stamped(sent)
    name = "flooded"
    pipeline.register_component(name, target, channels=["trade", "book"])
    pipeline.monitor.restart()
    strategy = FillTimer(f"bench-{run}", [MockConnector("binance", "spot")], pool=pool, sent=sent)
    await strategy.start()
    book = Channel.BOOK
    flood = book_updates(int(flood_rate * seconds), symbols)

    def publish_book(update: BookUpdate) -> None:  # unstamped: the monitor's HIGH-lane histogram times them
        pipeline.publish_data(book, update, key=KEY, symbol=update.symbol)

    trades = fills(int(fill_rate * seconds), run)

    def publish_fill(trade: Trade) -> None:
        sent[trade.trade_id] = time.perf_counter_ns()
        pipeline.publish(KEY, (trade,))

    flood_task = asyncio.create_task(paced(publish_book, flood, flood_rate), name="bench-book-flood")
    fill_task = asyncio.create_task(paced(publish_fill, trades, fill_rate), name="bench-fills")
    achieved_flood, _ = await asyncio.gather(flood_task, fill_task)
    await pool.trade_sync.wait_stored(30)
    await pipeline.drained()
    await strategy.drained()
    consumer = pipeline.monitor.get_performance_report()["consumers"][name]["lanes"]["high"]
    await strategy.stop()
    await pipeline.unregister_component(name)
    return {"flood": achieved_flood, "fill": target.fill, "strategy": strategy.hist, "book": consumer["latency_ms"],
            "fills": len(trades), "books": target.books, "coalesced": consumer["coalesced"],
            "dropped": consumer["dropped"]}


# --- profile -----------------------------------------------------------------------------------------------
async def profiled(pool: ConnectionPool, events: int) -> None:
    """cProfile of the 1-component coroutine case (bus only, then fills): top self time per event."""
    for label, run in (("bus (publish_data → 1 async component)", lambda: bus_throughput(pool, 1, "async", events)),
                       ("fills (publish → TradeSync → 1 async component)",
                        lambda: fill_throughput(pool, 1, "async", events, "prof"))):
        profile = cProfile.Profile()
        profile.enable()
        result = await run()
        profile.disable()
        stats = pstats.Stats(profile, stream=io.StringIO())
        rows = sorted(((v[2], v[1], k) for k, v in stats.stats.items()), reverse=True)[:15]
        total = sum(v[2] for v in stats.stats.values())
        print(f"\ncProfile, {label}: {events:,} events, {result['rate']:,.0f} events/s under the profiler; "
              f"self time per event (µs), top 15 of {total / events * 1e6:.1f} µs")
        for tottime, calls, (path, line, func) in rows:
            where = f"{Path(path).name}:{line}" if line else path
            print(f"  {tottime / events * 1e6:7.2f} µs  {calls / events:5.2f} calls/ev  {func}  ({where})")


# --- main --------------------------------------------------------------------------------------------------
async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer events and shorter paced runs (< 1 minute)")
    parser.add_argument("--preset", default="high-performance", help="pipeline preset (default high-performance)")
    parser.add_argument("--profile", action="store_true", help="also cProfile the 1-component case")
    parser.add_argument("--only", choices=["throughput", "latency", "flood", "profile"], help="run one part")
    args = parser.parse_args()
    configure_console("ERROR")
    config = preset(args.preset)
    deliveries = 300_000 if args.quick else 1_500_000  # per bus throughput run, spread over the components
    fill_deliveries = 100_000 if args.quick else 400_000  # per fills throughput run
    seconds = 2.0 if args.quick else 5.0
    flood_seconds = 3.0 if args.quick else 10.0
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    print(f"preset {args.preset}: max_size {config.queue.max_size}/lane, dedup "
          f"{'on' if config.queue.enable_deduplication else 'off'}, latency tracking "
          f"{'on' if config.performance.enable_latency_tracking else 'off'}; store: in memory (MemoryStore)")
    async with ConnectionPool(store=MemoryStore(), log_dir=tmp / "logs", spool_dir=tmp / "spool",
                              pipeline_config=config) as pool:
        pool.pipeline.sink(KEY)  # the key is known, as a connection's would be (catch-up reads it)
        if args.only in (None, "throughput"):
            print("\n1. throughput: events/s handled by every component (deliveries/s = events/s × components)")
            print(f"{'path':<6} {'handler':<7} {'comps':>5} {'events/s':>10} {'deliveries/s':>13} "
                  f"{'CPU µs/ev':>9} {'ev/CPU-s':>10} {'lost':>5} {'dropped':>7} {'target':>9}")
            base: dict[tuple[str, str], float] = {}
            for path in ("bus", "fills"):
                for kind in ("async", "plain"):
                    for n in (1, 10, 100):
                        if path == "bus":
                            events = max(2_000, deliveries // n)
                            r = await bus_throughput(pool, n, kind, events)
                        else:
                            events = max(1_000, fill_deliveries // n)
                            r = await fill_throughput(pool, n, kind, events, f"{kind}{n}-{time.time_ns()}")
                        if n == 1:
                            base[(path, kind)] = r["rate"]
                        target = f"≥{BUS_TARGET:,}" if n == 1 and path == "bus" else (
                            f"≥{FANOUT_TARGET:.1f}× 1" if n == 100 else "")
                        print(f"{path:<6} {kind:<7} {n:>5} {r['rate']:>10,.0f} {r['deliveries']:>13,.0f} "
                              f"{r['cpu_us']:>9.2f} {r['cpu_rate']:>10,.0f} {r['lost']:>5} {r['dropped']:>7} "
                              f"{target:>9}", flush=True)
                        if n == 100:
                            print(f"{'':<6} {kind:<7} 100 vs 1: {r['rate'] / base[(path, kind)]:.2f}× events/s, "
                                  f"{r['deliveries'] / base[(path, kind)]:.1f}× deliveries/s", flush=True)
        if args.only in (None, "latency"):
            print(f"\n2. enqueue→handled at a paced 10,000 book updates/s for {seconds:.0f} s, 1 component "
                  "(monitor histogram | bench's own publish→handled)")
            print(f"{'handler':<7} {'achieved/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} | "
                  f"{'p50 ms':>7} {'p99 ms':>7} {'handled':>8} {'dropped':>7} {'coalesced':>9}")
            for kind in ("async", "plain"):
                r = await paced_latency(pool, kind, 10_000, seconds)
                m, own = r["monitor"], r["own"]
                print(f"{kind:<7} {r['achieved']:>10,.0f} {m['p50']:>7.3f} {m['p99']:>7.3f} {m['max']:>7.3f} | "
                      f"{_ms(own, 50):>7.3f} {_ms(own, 99):>7.3f} {r['handled']:>8} {r['dropped']:>7} "
                      f"{r['coalesced']:>9}", flush=True)
        if args.only in (None, "flood"):
            print(f"\n3. a fill while 50,000 book updates/s flood the same component's HIGH lane ({flood_seconds:.0f} s, "
                  "200 fills/s, publish → handled)")
            print(f"{'symbols':>7} {'flood/s':>8} {'what':<24} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
                  f"{'count':>7} {'target p99':>10}")
            for gc_mode in ("python's default", "tune_gc() (run_strategy.py)"):
                print(f"garbage collector: {gc_mode}")
                if gc_mode != "python's default":
                    tune_gc()
                for symbols in (10_000, 100):
                    r = await fill_under_flood(pool, 50_000, 200, flood_seconds, f"flood{symbols}-{time.time_ns()}",
                                               symbols)
                    for what, hist, target in (("fill → component", r["fill"], f"≤{FILL_P99_TARGET_MS:g}"),
                                               ("fill → strategy on_trade", r["strategy"], "")):
                        print(f"{symbols:>7} {r['flood']:>8,.0f} {what:<24} {_ms(hist, 50):>7.3f} "
                              f"{_ms(hist, 99):>7.3f} {hist.get_max_value() / 1000:>7.3f} {hist.get_total_count():>7} "
                              f"{target:>10}")
                    m = r["book"]
                    print(f"{symbols:>7} {r['flood']:>8,.0f} {'book → component (mon.)':<24} {m['p50']:>7.3f} "
                          f"{m['p99']:>7.3f} {m['max']:>7.3f} {m['count']:>7}")
                    print(f"{'':>7} {'':>8} books handled {r['books']:,}, coalesced {r['coalesced']:,}, "
                          f"dropped {r['dropped']:,}", flush=True)
            gc.unfreeze()
            gc.set_threshold(*DEFAULT_GC)
        if args.profile or args.only == "profile":
            await profiled(pool, 100_000 if args.quick else 300_000)


if __name__ == "__main__":
    asyncio.run(main())
