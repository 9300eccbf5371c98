"""Ingest benchmark: MockConnector → pool → TradeSync → store, SQLite and PostgreSQL, 10% duplicates.

Prints, per store: sustained fills/s (as fast as the pipeline takes them), and p50/p99/max latency
from push to committed at a paced 1,000 fills/s. Usage:

    python bench/ingest.py [--fills 100000] [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from exchanges.mock import MockConnector  # noqa: E402
from framework.console import configure_console  # noqa: E402
from framework.pool import ConnectionPool  # noqa: E402
from framework.store import open_store  # noqa: E402
from framework.strategy import BaseStrategy  # noqa: E402


class Counter(BaseStrategy):
    def on_start(self):
        self.count = 0

    def on_trade(self, trade):
        self.count += 1


class TimedStore:
    """The real store, noting when each fill's batch committed."""

    def __init__(self, inner):
        self.inner, self.url, self.committed = inner, inner.url, {}

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def insert_trades(self, trades):
        result = await self.inner.insert_trades(trades)
        self._note(trades)
        return result

    async def write_batch(self, trades, *rest):  # what TradeSync calls: one transaction per batch
        result = await self.inner.write_batch(trades, *rest)
        self._note(trades)
        return result

    def _note(self, trades):
        now = time.perf_counter()
        for trade in trades:
            self.committed.setdefault(trade.trade_id, now)


def fill_plan(n: int, duplicate_ratio: float, seed: int) -> list[tuple[str, str]]:
    """(trade_id, price) for n pushes; duplicate_ratio of them repeat an earlier fill."""
    rng = random.Random(seed)
    plan: list[tuple[str, str]] = []
    for i in range(n):
        if plan and rng.random() < duplicate_ratio:
            plan.append(plan[rng.randrange(max(0, len(plan) - 500), len(plan))])
        else:
            plan.append((f"{i}", f"{65000 + rng.randint(0, 99999) / 100:.2f}"))
    return plan


async def throughput(url: str, n: int, log_dir: Path) -> tuple[float, int, int]:
    async with ConnectionPool(url, log_dir) as pool:
        strategy = Counter(f"bench-{uuid.uuid4().hex[:6]}", [MockConnector("binance", "spot")], pool=pool)
        await strategy.start()
        connector = strategy.exchange_connectors[0]
        plan = fill_plan(n, 0.10, seed=1)
        run = uuid.uuid4().hex[:8]
        started = time.perf_counter()
        for i, (tid, price) in enumerate(plan):
            await connector.push_trade("BTC/USDT", "buy", "0.001", price, trade_id=f"{run}-{tid}", order_id="1")
            if i % 500 == 499:
                await asyncio.sleep(0)  # a socket reader yields between frames
        await pool.flush(300)
        elapsed = time.perf_counter() - started
        stats = pool.trade_sync.stats()
        await strategy.stop()
        return n / elapsed, stats["stored"], stats["duplicates"]


async def latency(url: str, rate: int, seconds: float, log_dir: Path) -> list[float]:
    store = TimedStore(open_store(url))
    async with ConnectionPool(store=store, log_dir=log_dir) as pool:
        strategy = Counter(f"lat-{uuid.uuid4().hex[:6]}", [MockConnector("binance", "spot")], pool=pool)
        await strategy.start()
        connector = strategy.exchange_connectors[0]
        run = uuid.uuid4().hex[:8]
        pushed: dict[str, float] = {}
        total = int(rate * seconds)
        start = time.perf_counter()
        for i in range(total):
            target = start + i / rate
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tid = f"{run}-{i}"
            pushed[tid] = time.perf_counter()
            await connector.push_trade("BTC/USDT", "sell", "0.002", "65000.5", trade_id=tid, order_id="2")
        await pool.flush(60)
        await strategy.stop()
    return sorted((store.committed[t] - p) * 1000 for t, p in pushed.items())


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fills", type=int, default=100_000, help="pushes per throughput run (default 100000)")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test", help="PostgreSQL URL")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    args = parser.parse_args()
    configure_console("ERROR")
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    targets = [("SQLite", f"sqlite:///{tmp / 'bench.sqlite'}", 40_000)]
    try:
        psycopg.connect(args.pg, connect_timeout=3).close()
        targets.append(("PostgreSQL", f"{args.pg}{'&' if '?' in args.pg else '?'}schema={schema}", 20_000))
    except psycopg.Error as exc:
        print(f"PostgreSQL not reachable ({exc}); measuring SQLite only")

    print(f"{args.fills} pushes per run, 10% duplicates; latency at 1,000 fills/s for {args.latency_seconds:.0f} s")
    print(f"{'store':<11} {'fills/s':>9} {'target':>8} {'stored':>8} {'dups':>6} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'p99 target':>10}")
    try:
        for name, url, target in targets:
            rate, stored, dups = await throughput(url, args.fills, tmp / "logs")
            lat = await latency(url, 1000, args.latency_seconds, tmp / "logs")
            print(f"{name:<11} {rate:>9,.0f} {target:>8,} {stored:>8} {dups:>6} "
                  f"{statistics.median(lat):>7.2f} {pct(lat, 0.99):>7.2f} {lat[-1]:>7.2f} {'20.00':>10}")
    finally:
        if len(targets) > 1:
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    asyncio.run(main())
