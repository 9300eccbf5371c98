"""End-to-end benchmark: simulator (own process) → WebSocket → normalize → dedup → PostgreSQL on loopback.

Prints sustained fills/s, p50/p99 latency from frame sent to row committed at 1,000 fills/s (clean and
with socket drops injected, the dropped fills coming back by REST backfill), and the client's RSS
growth over a long run. Usage:

    python bench/e2e.py [--fills 1000000] [--venue binance_future] [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exchanges.connector import Credentials, ExchangeConnector  # noqa: E402
from exchanges.spec import Endpoints  # noqa: E402
from exchanges.simulator import Simulator  # noqa: E402
from exchanges.simulator.server import generated_credentials  # noqa: E402
from framework.console import configure_console  # noqa: E402
from framework.events import ConnectionKey  # noqa: E402
from framework.pool import ConnectionPool  # noqa: E402
from framework.retry import reconnect_policy  # noqa: E402
from framework.store import open_store  # noqa: E402
from framework.strategy import BaseStrategy  # noqa: E402


# --- the simulator side (a child process) -----------------------------------------------------------------
async def serve(key: ConnectionKey, creds: Credentials) -> None:
    """Read commands on stdin: `fills N RATE DROP_EVERY` → send N fills, answer `sent <file of send times>`."""
    sim = Simulator({key.exchange: creds}, exchanges=[key.exchange], seed=1)
    await sim.start()
    print(f"ready {sim.port}", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    symbol = "BTC/USDT" if key.market.value == "spot" else "BTC/USDT:USDT"
    while line := (await reader.readline()).decode().split():
        if line[0] != "fills":
            break
        count, rate, drop_every = int(line[1]), float(line[2]), int(line[3])
        if not drop_every:  # no backfill will read the earlier fills: the ledger need not keep growing
            sim.ledger(key.exchange, key.market).fills.clear()
        order = await sim.place_order(key.exchange, key.market, symbol, "buy", Decimal(count) / 1000, "65000.5")
        sent: list[tuple[str, int]] = []
        start = time.perf_counter()
        first_sent = time.time_ns()
        for i in range(count):
            if rate:
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif i % 200 == 0:
                await asyncio.sleep(0)  # let the socket drain
            if drop_every and i and i % drop_every == 0:
                await sim.drop(key.exchange, key.market)
            fill = await sim.fill_order(key.exchange, key.market, order, "0.001", is_maker=True)
            if rate:
                sent.append((fill.trade_id, time.time_ns()))
        path = Path(tempfile.mkstemp(prefix="e2e-sent-")[1])
        path.write_text(json.dumps(sent))
        print(f"sent {path} {first_sent}", flush=True)
    await sim.stop()


# --- the client side ------------------------------------------------------------------------------------------
class TimedStore:
    """The real PostgreSQL store, noting when each fill's batch committed (per fill, or just counts)."""

    def __init__(self, inner):
        self.inner, self.url, self.committed = inner, inner.url, {}
        self.per_fill = True
        self.count, self.last_commit = 0, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def insert_trades(self, trades):
        result = await self.inner.insert_trades(trades)
        now = time.time_ns()
        self.count += sum(seq is not None for seq in result)
        self.last_commit = now
        if self.per_fill:
            for trade in trades:
                self.committed.setdefault(trade.trade_id, now)
        return result


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run_phase(child: subprocess.Popen, store: TimedStore, count: int, rate: float,
                    drop_every: int) -> tuple[float, list[float]]:
    """(fills/s from first send to last commit, latencies in ms; none when not timed per fill)."""
    before = store.count
    child.stdin.write(f"fills {count} {rate} {drop_every}\n".encode())
    child.stdin.flush()
    loop = asyncio.get_running_loop()
    line = (await loop.run_in_executor(None, child.stdout.readline)).decode().split()
    path = Path(line[1])
    first_sent, sent_path = int(line[2]), path
    deadline = time.monotonic() + 120
    while store.count - before < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if store.count - before < count:
        print(f"  warning: {count - (store.count - before)} fills not committed within the deadline")
    elapsed = (store.last_commit - first_sent) / 1e9
    latencies: list[float] = []
    if store.per_fill:
        sent = json.loads(sent_path.read_text())

        latencies = sorted((store.committed[tid] - ns) / 1e6 for tid, ns in sent if tid in store.committed)
    sent_path.unlink()
    return count / elapsed, latencies


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venue", default="binance_future", help="connection key (default binance_future)")
    parser.add_argument("--fills", type=int, default=1_000_000, help="fills in the sustained run (default 1e6)")
    parser.add_argument("--latency-fills", type=int, default=10_000, help="fills per 1,000/s run (default 10000)")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    key = ConnectionKey.parse(args.venue)
    if args.serve:
        creds = Credentials(**json.loads(os.environ["E2E_CREDENTIALS"]))
        await serve(key, creds)
        return
    configure_console(os.environ.get("E2E_LOG_LEVEL", "ERROR"))
    creds = generated_credentials(key.exchange)
    env = {**os.environ, "E2E_CREDENTIALS": json.dumps({
        "api_key": creds.api_key, "secret": creds.secret, "passphrase": creds.passphrase,
        "wallet_address": creds.wallet_address})}
    child = subprocess.Popen([sys.executable, __file__, "--serve", "--venue", args.venue], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    port = int(child.stdout.readline().split()[1])
    schema = f"bench_e2e_{uuid.uuid4().hex[:8]}"
    store = TimedStore(open_store(f"{args.pg}{'&' if '?' in args.pg else '?'}schema={schema}"))
    tmp = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    base = f"127.0.0.1:{port}/{key}"
    connector = ExchangeConnector(key.exchange, key.market, credentials=creds,
                                  endpoints=Endpoints(ws=f"ws://{base}", rest=f"http://{base}"),
                                  retry_policy=reconnect_policy(initial=0.05, maximum=0.5))
    try:
        async with ConnectionPool(store=store, log_dir=tmp / "logs", spool_dir=tmp / "spool") as pool:
            strategy = BaseStrategy("e2e", [connector], pool=pool)
            await strategy.start()
            print(f"{args.venue} through {store.url}; simulator in its own process on 127.0.0.1:{port}")
            print(f"{'run':<34} {'fills':>9} {'fills/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>9}")

            def row(name: str, count: int, rate: float, lat: list[float]) -> None:
                print(f"{name:<34} {count:>9,} {rate:>9,.0f} {statistics.median(lat):>8.2f} "
                      f"{pct(lat, 0.99):>8.2f} {lat[-1]:>9.2f}", flush=True)

            rate, lat = await run_phase(child, store, args.latency_fills, 1000, 0)
            row("1,000 fills/s, clean", args.latency_fills, rate, lat)
            rate, lat = await run_phase(child, store, args.latency_fills, 1000, args.latency_fills // 5)
            row("1,000 fills/s, socket drop every 2 s", args.latency_fills, rate, lat)
            store.committed.clear()
            store.per_fill = False
            rss_before = rss_mb()
            rate, _ = await run_phase(child, store, args.fills, 0, 0)
            rss_after = rss_mb()
            print(f"{'as fast as it goes (sustained)':<34} {args.fills:>9,} {rate:>9,.0f}")
            print(f"client RSS: {rss_before:.0f} MB before, {rss_after:.0f} MB after {args.fills:,} fills "
                  f"(growth {rss_after - rss_before:+.0f} MB)")
            stats = pool.trade_sync.stats()
            print(f"stored {stats['stored']:,}, duplicates {stats['duplicates']:,}, "
                  f"longest in-memory queue {stats['peak_pending']:,}, "
                  f"reconnects {pool.get_connection_status()['connections'][args.venue]['reconnects']}, "
                  f"fills the strategy read back from the store {strategy.caught_up:,}")
            await strategy.stop()
    finally:
        child.stdin.close()
        child.wait(timeout=30)
        import psycopg

        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    asyncio.run(main())
