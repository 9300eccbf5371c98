"""Market data benchmark: simulator (its own process) → WebSocket → ccxt.pro → strategy `on_order_book`.

On one Binance spot BTC/USDT book (REST snapshot + depthUpdate diffs, the simulator's 50-level book), in
alternating rounds:

- a bare ccxt.pro `watch_order_book` loop (what a user would write without us),
- tradesync: one strategy (a plain `def` hook, on its worker thread; then an `async def` one, on the event loop),
  then 20 strategies on the same key (one public connection, one ccxt stream),

each fed N book updates at the simulator's max rate: updates/s (updates applied from the first sent to the last
one seen by every consumer), the consumer's hook calls, and the client process's CPU time per update (what our
layer costs over the library's); then the same at a paced 1,000 updates/s: latency from the simulator's send
(time.time_ns in its process, per update id) to the hook, p50/p99. Usage:

    python bench/market_data.py [--updates 20000] [--rounds 3] [--paced-seconds 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exchanges import get_exchange  # noqa: E402
from exchanges.simulator import Simulator  # noqa: E402
from framework.console import configure_console  # noqa: E402
from framework.events import ConnectionKey, Market  # noqa: E402
from framework.marketdata.client import ccxt_client  # noqa: E402
from framework.pool import ConnectionPool  # noqa: E402
from framework.runtime import tune_gc  # noqa: E402
from framework.strategy import BaseStrategy  # noqa: E402
from framework.venue import Endpoints  # noqa: E402

KEY = ConnectionKey(exchange="binance", market=Market.SPOT)
SYMBOL = "BTC/USDT"
DEPTH = 20


# --- the simulator side (a child process) -----------------------------------------------------------------
async def serve() -> None:
    """Commands on stdin: `steps N RATE` → step the book N times (RATE/s, 0 = as fast as it can), answer
    `sent <file of [update id, send ns]> <last update id>`."""
    sim = Simulator(exchanges=[KEY.exchange], market_rate=0, seed=1)
    await sim.start()
    market = sim.market(KEY.exchange, KEY.market, SYMBOL)
    market.trade_chance = 0.0  # books only: the book stream is what is measured
    print(f"ready {sim.port}", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().split():
        if line[0] == "step":  # one update (to bring a new subscriber its first book)
            await sim.step_market(KEY.exchange, KEY.market, SYMBOL)
            print(f"stepped {market.seq}", flush=True)
            continue
        count, rate = int(line[1]), float(line[2])
        sent: list[tuple[int, int]] = []
        start = time.perf_counter()
        for i in range(count):
            if rate:
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif i % 50 == 0:
                await asyncio.sleep(0)  # let the socket drain
            (step,) = await sim.step_market(KEY.exchange, KEY.market, SYMBOL)
            if step.book is not None:
                sent.append((step.book.seq, time.time_ns()))
        path = Path(tempfile.mkstemp(prefix="md-sent-")[1])
        path.write_text(json.dumps(sent))
        print(f"sent {path} {market.seq}", flush=True)
    await sim.stop()


class Feed:
    def __init__(self, child: subprocess.Popen, port: int) -> None:
        self.child = child
        prefix = f"127.0.0.1:{port}/{KEY}"
        self.endpoints = Endpoints(ws=f"ws://{prefix}", rest=f"http://{prefix}")

    async def ask(self, line: str) -> list[str]:
        self.child.stdin.write(f"{line}\n".encode())
        self.child.stdin.flush()
        return (await asyncio.get_running_loop().run_in_executor(None, self.child.stdout.readline)).decode().split()

    async def run(self, count: int, rate: float) -> tuple[dict[int, int], int]:
        answer = await self.ask(f"steps {count} {rate}")
        path = Path(answer[1])
        sent = {seq: ns for seq, ns in json.loads(path.read_text())}
        path.unlink()
        return sent, int(answer[2])


# --- the consumers --------------------------------------------------------------------------------------------
class Consumer:
    """Counts books and keeps (update id → when seen) for one consumer; `last` is the newest update id seen."""

    def __init__(self) -> None:
        self.books = 0
        self.last = 0
        self.seen: dict[int, int] = {}

    def saw(self, seq: int) -> None:
        self.books += 1
        self.last = seq
        self.seen[seq] = time.time_ns()


async def until_seen(consumers: list[Consumer], seq: int, timeout: float = 120.0) -> int:
    """Wait until every consumer saw update `seq`; returns when the last one did (time.time_ns)."""
    deadline = time.monotonic() + timeout
    while any(c.last < seq for c in consumers):
        if time.monotonic() > deadline:
            raise TimeoutError(f"consumers at {[c.last for c in consumers]}, waiting for {seq}")
        await asyncio.sleep(0.001)
    return max(c.seen[seq] for c in consumers)


async def first_book(feed: Feed, consumers: list[Consumer]) -> None:
    for _ in range(500):
        if all(c.books for c in consumers):
            return
        await feed.ask("step")
        await asyncio.sleep(0.02)
    raise TimeoutError("no first book")


class Bare:
    """A plain ccxt.pro loop on the same client settings the framework uses."""

    def __init__(self, feed: Feed) -> None:
        self.exchange = ccxt_client(KEY, get_exchange(KEY.exchange).market_data, feed.endpoints, [SYMBOL])
        self.consumer = Consumer()
        self.task: asyncio.Task | None = None
        self.limit = get_exchange(KEY.exchange).market_data.book_limit(KEY.market, DEPTH)

    async def start(self) -> list[Consumer]:
        async def loop() -> None:
            while True:
                book = await self.exchange.watch_order_book(SYMBOL, self.limit)
                self.consumer.saw(book["nonce"])

        self.task = asyncio.create_task(loop())
        return [self.consumer]

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.exchange.close()


class Watching(BaseStrategy):
    book_depth = DEPTH

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.consumer = Consumer()

    def on_order_book(self, book) -> None:
        self.consumer.saw(book.seq)


class WatchingAsync(Watching):
    async def on_order_book(self, book) -> None:  # on the event loop, like the bare loop's body
        self.consumer.saw(book.seq)


class Ours:
    def __init__(self, feed: Feed, strategies: int, tmp: Path, kind: type[Watching] = Watching) -> None:
        self.pool = ConnectionPool(f"sqlite:///{tmp / f'md{strategies}-{time.time_ns()}.sqlite'}", tmp / "logs",
                                   market_endpoints=lambda exchange, market: feed.endpoints)
        self.strategies = [kind(f"s{i}", pool=self.pool, market_data={str(KEY): [SYMBOL]})
                           for i in range(strategies)]

    async def start(self) -> list[Consumer]:
        await self.pool.start()
        for strategy in self.strategies:
            await strategy.start()
        return [s.consumer for s in self.strategies]

    async def stop(self) -> None:
        for strategy in self.strategies:
            await strategy.stop()
        await self.pool.stop()


async def max_rate(feed: Feed, make: Any, count: int) -> dict[str, float]:
    client = make()
    consumers = await client.start()
    try:
        await first_book(feed, consumers)
        base = [c.books for c in consumers]
        cpu0, first_ns = time.process_time(), time.time_ns()
        sent, last = await feed.run(count, 0)
        done_ns = await until_seen(consumers, last)
        cpu = time.process_time() - cpu0
        first_sent = min(sent.values())
        return {
            "updates_s": len(sent) / ((done_ns - first_sent) / 1e9),
            "hooks_s": statistics.mean(c.books - b for c, b in zip(consumers, base)) / ((done_ns - first_ns) / 1e9),
            "cpu_us": cpu / len(sent) * 1e6,
        }
    finally:
        await client.stop()


async def paced(feed: Feed, make: Any, seconds: float) -> tuple[float, float, int]:
    client = make()
    consumers = await client.start()
    try:
        await first_book(feed, consumers)
        sent, last = await feed.run(int(1000 * seconds), 1000)
        await until_seen(consumers, last)
        seen = consumers[0].seen
        latencies = sorted((seen[seq] - ns) / 1e6 for seq, ns in sent.items() if seq in seen)
        return pct(latencies, 0.50), pct(latencies, 0.99), len(latencies)
    finally:
        await client.stop()


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--updates", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--paced-seconds", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="2,000 updates, 1 round, 2 s paced")
    args = parser.parse_args()
    if args.serve:
        await serve()
        return
    if args.quick:
        args.updates, args.rounds, args.paced_seconds = 2_000, 1, 2.0
    configure_console(os.environ.get("MD_LOG_LEVEL", "ERROR"))
    tune_gc()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, __file__, "--serve"], env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
    ready = child.stdout.readline().decode().split()
    feed = Feed(child, int(ready[1]))
    tmp = Path(tempfile.mkdtemp(prefix="md-bench-"))
    makers = {
        "ccxt.pro watch_order_book loop": lambda: Bare(feed),
        "tradesync, 1 strategy": lambda: Ours(feed, 1, tmp),
        "tradesync, 1 strategy, async hook": lambda: Ours(feed, 1, tmp, WatchingAsync),
        "tradesync, 20 strategies": lambda: Ours(feed, 20, tmp),
    }
    try:
        print(f"market data: {KEY} {SYMBOL}, depth {DEPTH}, {args.updates:,} book updates at max rate, "
              f"{args.rounds} round(s), alternating")
        results: dict[str, list[dict[str, float]]] = {name: [] for name in makers}
        for _ in range(args.rounds):
            for name, make in makers.items():
                results[name].append(await max_rate(feed, make, args.updates))
        bare = statistics.median(r["updates_s"] for r in results["ccxt.pro watch_order_book loop"])
        bare_cpu = statistics.median(r["cpu_us"] for r in results["ccxt.pro watch_order_book loop"])
        print(f"{'consumer':<40}{'updates/s':>12}{'hook calls/s':>14}{'client CPU/update':>20}{'vs ccxt':>10}")
        for name, rows in results.items():
            rate = statistics.median(r["updates_s"] for r in rows)
            hooks = statistics.median(r["hooks_s"] for r in rows)
            cpu = statistics.median(r["cpu_us"] for r in rows)
            print(f"{name:<40}{rate:>12,.0f}{hooks:>14,.0f}{cpu:>17.1f} µs{cpu / bare_cpu:>9.2f}×")
        for name in ("tradesync, 1 strategy", "tradesync, 1 strategy, async hook"):
            rows = results[name]
            print(f"against the bare ccxt.pro loop ({name.removeprefix('tradesync, ')}): updates/s "
                  f"{statistics.median(r['updates_s'] for r in rows) / bare - 1:+.1%}, client CPU per update "
                  f"{statistics.median(r['cpu_us'] for r in rows) / bare_cpu - 1:+.1%}")
        print(f"\nlatency, simulator send → hook, at a paced 1,000 updates/s for {args.paced_seconds:g} s:")
        for name in ("ccxt.pro watch_order_book loop", "tradesync, 1 strategy", "tradesync, 1 strategy, async hook"):
            p50, p99, n = await paced(feed, makers[name], args.paced_seconds)
            print(f"  {name:<40} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   ({n:,} updates seen)")
    finally:
        child.stdin.close()
        child.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
