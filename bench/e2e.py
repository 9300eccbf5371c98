"""End-to-end benchmark: simulator (own process) → WebSocket → normalize → dedup → PostgreSQL on loopback.

Prints sustained fills/s, p50/p99 latency from frame sent to row committed at 1,000 fills/s (clean and
with socket drops injected, the dropped fills coming back by REST backfill), and the client's RSS
growth over a long run; then, on one Bybit linear feed at max rate, alternating in rounds, ccxt.pro
(`watch_orders` + `watch_my_trades`, no storage), tradesync without a store, into PostgreSQL and into SQLite,
and a bare `websockets` client decoding with `json.loads(parse_float=Decimal)` (the exact-decode floor); then
the same feed to 1 strategy and to 100 strategies on one key (every fill to all of them, or each fill to one
owner by client-order-id prefix), without a store and into PostgreSQL. Usage:

    python bench/e2e.py [--quick] [--fills 1000000] [--venue binance_future] [--compare-fills 50000] [--rounds 3]
                        [--fanout-fills 20000] [--only targets|compare|fanout]
                        [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from typing import Any, AsyncIterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exchanges.connector import Credentials, ExchangeConnector  # noqa: E402
from framework.venue import Endpoints  # noqa: E402
from memory_store import MemoryStore  # noqa: E402  (bench/memory_store.py)
from exchanges.simulator import Simulator  # noqa: E402
from exchanges.simulator.server import generated_credentials  # noqa: E402
from framework.console import configure_console  # noqa: E402
from framework.events import ConnectionKey, Trade, now_ms  # noqa: E402
from framework.pool import ConnectionPool  # noqa: E402
from framework.retry import reconnect_policy  # noqa: E402
from framework.store import open_store  # noqa: E402
from framework.strategy import BaseStrategy  # noqa: E402


# --- the simulator side (a child process) -----------------------------------------------------------------
async def serve(key: ConnectionKey, creds: Credentials) -> None:
    """Read commands on stdin: `fills N RATE DROP_EVERY [OWNERS]` → send N fills, answer `sent <file of send
    times>`; with OWNERS, the fills are spread round-robin over that many orders, client order ids `o000-1`…"""
    sim = Simulator({key.exchange: creds}, exchanges=[key.exchange], seed=1)
    await sim.start()
    print(f"ready {sim.port}", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    symbol = "BTC/USDT" if key.market.value == "spot" else "BTC/USDT:USDT"
    while line := (await reader.readline()).decode().split():
        if line[0] == "wait":  # until exactly one live socket is subscribed to every given topic
            topics = set(line[1:])
            while True:
                live = sim.sessions(key.exchange, key.market)
                if len(live) == 1 and live[0].authenticated and topics <= live[0].subscriptions:
                    break
                await asyncio.sleep(0.01)
            print("subscribed", flush=True)
            continue
        if line[0] != "fills":
            break
        count, rate, drop_every = int(line[1]), float(line[2]), int(line[3])
        owners = int(line[4]) if len(line) > 4 else 0
        if not drop_every:  # no backfill will read the earlier fills: the ledger need not keep growing
            sim.ledger(key.exchange, key.market).fills.clear()
        if owners:
            each = Decimal(-(-count // owners)) / 1000
            orders = [await sim.place_order(key.exchange, key.market, symbol, "buy", each, "65000.5",
                                            client_order_id=owner_prefix(k) + "1") for k in range(owners)]
        else:
            orders = [await sim.place_order(key.exchange, key.market, symbol, "buy", Decimal(count) / 1000, "65000.5")]
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
            fill = await sim.fill_order(key.exchange, key.market, orders[i % len(orders)], "0.001", is_maker=True)
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
        self.note(trades, result)
        return result

    async def write_batch(self, trades, *rest):
        result = await self.inner.write_batch(trades, *rest)
        self.note(trades, result[0])
        return result

    def note(self, trades, seqs) -> None:
        now = time.time_ns()
        self.count += sum(seq is not None for seq in seqs)
        self.last_commit = now
        if self.per_fill:
            for trade in trades:
                self.committed.setdefault(trade.trade_id, now)


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


# --- the side-by-side on one Bybit linear feed ---------------------------------------------------------------
COMPARE_VENUE = "bybit_future"
BYBIT_TOPICS = ("order", "execution")


DiscardStore = MemoryStore  # no storage: fills get a seq, the newest stay for strategies catching up


class Feed:
    """The Bybit linear simulator child: `wait` for one subscribed socket, then push N fills at max rate."""

    def __init__(self, child: subprocess.Popen, port: int, creds: Credentials) -> None:
        self.child, self.port, self.creds = child, port, creds
        self.prefix = f"127.0.0.1:{port}/{COMPARE_VENUE}"

    async def _ask(self, line: str) -> list[str]:
        self.child.stdin.write(f"{line}\n".encode())
        self.child.stdin.flush()
        return (await asyncio.get_running_loop().run_in_executor(None, self.child.stdout.readline)).decode().split()

    async def push(self, count: int, done: asyncio.Event, clock: list[int], owners: int = 0) -> float:
        """Fills/s from the first fill sent to the client's `done` (clock[0]: when, time.time_ns); with `owners`,
        spread over that many orders with client order ids `owner_prefix(k) + "1"`."""
        await asyncio.wait_for(self._ask("wait " + " ".join(BYBIT_TOPICS)), 30)
        answer = await self._ask(f"fills {count} 0 0 {owners}")
        Path(answer[1]).unlink()
        first_sent = int(answer[2])
        try:
            await asyncio.wait_for(done.wait(), 180)
        except TimeoutError:
            print(f"  warning: not done within 180 s ({clock[1]:,} of {count:,} fills seen)")
            return float("nan")
        return count / ((clock[0] - first_sent) / 1e9)


def rewrite_urls(tree: Any, http: str, ws: str) -> Any:
    """ccxt's URL table with every REST host → the simulator's market prefix, every socket → its /v5/private."""
    if isinstance(tree, dict):
        return {k: rewrite_urls(v, http, ws) for k, v in tree.items()}
    if isinstance(tree, str):
        return f"{ws}/v5/private" if tree.startswith("wss://") else http
    return tree


async def run_ccxt(feed: Feed, count: int) -> float:
    """ccxt.pro bybit, `watch_my_trades` and `watch_orders` on one socket, counting fills, no storage."""
    import ccxt.pro as ccxtpro

    exchange = ccxtpro.bybit({"apiKey": feed.creds.api_key, "secret": feed.creds.secret, "options": {
        "enableUnifiedMargin": False, "enableUnifiedAccount": True,  # else it asks REST endpoints we do not serve
        "defaultType": "swap", "fetchMarkets": {"types": ["linear"]}}})
    exchange.urls["api"] = rewrite_urls(exchange.urls["api"], f"http://{feed.prefix}", f"ws://{feed.prefix}")
    done, clock = asyncio.Event(), [0, 0]
    closed = asyncio.Event()

    async def trades() -> None:
        while True:
            clock[1] += len(await exchange.watch_my_trades())
            if clock[1] >= count and closed.is_set():
                clock[0] = time.time_ns()
                done.set()

    async def orders() -> None:
        while True:
            if any(o["status"] == "closed" for o in await exchange.watch_orders()):
                closed.set()
                if clock[1] >= count:
                    clock[0] = time.time_ns()
                    done.set()

    try:
        await exchange.load_markets()
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(trades(), name="ccxt-trades"), group.create_task(orders(), name="ccxt-orders")]
            try:
                return await feed.push(count, done, clock)
            finally:
                for task in tasks:
                    task.cancel()
    finally:
        await exchange.close()


async def run_floor(feed: Feed, count: int) -> float:
    """A bare `websockets` client: login, subscribe, `json.loads(parse_float=Decimal)` every frame, count rows."""
    import hashlib
    import hmac

    import websockets

    done, clock = asyncio.Event(), [0, 0]
    async with websockets.connect(f"ws://{feed.prefix}") as ws:
        expires = now_ms() + 10_000
        signature = hmac.new(feed.creds.secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256).hexdigest()
        await ws.send(json.dumps({"op": "auth", "args": [feed.creds.api_key, expires, signature]}))
        await ws.send(json.dumps({"op": "subscribe", "args": list(BYBIT_TOPICS)}))

        async def read() -> None:
            fills = orders = 0
            async for text in ws:
                message = json.loads(text, parse_float=Decimal)
                topic = message.get("topic")
                if topic == "execution":
                    fills += len(message["data"])
                    clock[1] = fills
                elif topic == "order":
                    orders += 1
                if fills >= count and orders > count:  # the order's "New" row, then one per fill
                    clock[0] = time.time_ns()
                    done.set()
                    return

        reader = asyncio.create_task(read(), name="floor-reader")
        try:
            return await feed.push(count, done, clock)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


async def run_tradesync(feed: Feed, count: int, store: Any, tmp: Path) -> float:
    """Our pool: socket → normalize → dedup → store (or a discarding one) → strategy, done when all are stored."""
    timed = TimedStore(store)
    timed.per_fill = False
    done, clock = asyncio.Event(), [0, 0]
    original = timed.note

    def note(trades, seqs) -> None:
        original(trades, seqs)
        clock[1] = timed.count
        if timed.count >= count and not done.is_set():
            clock[0] = timed.last_commit
            done.set()

    timed.note = note
    connector = ExchangeConnector("bybit", "future", credentials=feed.creds,
                                  endpoints=Endpoints(ws=f"ws://{feed.prefix}", rest=f"http://{feed.prefix}"),
                                  retry_policy=reconnect_policy(initial=0.05, maximum=0.5))
    async with ConnectionPool(store=timed, log_dir=tmp / "logs", spool_dir=tmp / f"spool-{uuid.uuid4().hex[:6]}") as pool:
        strategy = BaseStrategy(f"cmp-{uuid.uuid4().hex[:6]}", [connector], pool=pool)
        await strategy.start()
        try:
            return await feed.push(count, done, clock)
        finally:
            await strategy.stop()


@contextlib.asynccontextmanager
async def bybit_feed(args: argparse.Namespace, schema_prefix: str) -> AsyncIterator[tuple[Feed, str]]:
    """The Bybit linear feed (a simulator in its own process) and a PostgreSQL schema of its own, both gone after."""
    creds = generated_credentials("bybit")
    env = {**os.environ, "E2E_CREDENTIALS": json.dumps({
        "api_key": creds.api_key, "secret": creds.secret, "passphrase": creds.passphrase,
        "wallet_address": creds.wallet_address})}
    child = subprocess.Popen([sys.executable, __file__, "--serve", "--venue", COMPARE_VENUE], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    schema = f"{schema_prefix}{uuid.uuid4().hex[:8]}"
    try:
        yield Feed(child, int(child.stdout.readline().split()[1]), creds), \
            f"{args.pg}{'&' if '?' in args.pg else '?'}schema={schema}"
    finally:
        child.stdin.close()
        child.wait(timeout=30)
        import psycopg

        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def compare(args: argparse.Namespace, tmp: Path) -> None:
    async with bybit_feed(args, "bench_cmp_") as (feed, pg_url):
        contenders = {
            "ccxt.pro (both watches, no store)": lambda n: run_ccxt(feed, n),
            "tradesync, no store": lambda n: run_tradesync(feed, n, DiscardStore(), tmp),
            "tradesync into PostgreSQL": lambda n: run_tradesync(feed, n, open_store(pg_url), tmp),
            "tradesync into SQLite": lambda n: run_tradesync(
                feed, n, open_store(f"sqlite:///{tmp / f'cmp-{uuid.uuid4().hex[:6]}.sqlite'}"), tmp),
            "websockets + json.loads(Decimal)": lambda n: run_floor(feed, n),
        }
        results: dict[str, list[float]] = {name: [] for name in contenders}
        print(f"\n{COMPARE_VENUE} at max rate, {args.compare_fills:,} fills per run, {args.rounds} alternating rounds "
              f"(simulator in its own process on 127.0.0.1:{feed.port})", flush=True)
        for round_ in range(args.rounds):
            for name, run in contenders.items():
                rate = await run(args.compare_fills)
                results[name].append(rate)
                print(f"  round {round_ + 1}: {name:<36} {rate:>9,.0f} fills/s", flush=True)
    median = {name: statistics.median(rates) for name, rates in results.items()}
    peer, floor = median["ccxt.pro (both watches, no store)"], median["websockets + json.loads(Decimal)"]
    print(f"{'client (median of rounds)':<36} {'fills/s':>9} {'× ccxt.pro':>11} {'× floor':>8}")
    for name, rate in median.items():
        print(f"{name:<36} {rate:>9,.0f} {rate / peer:>11.2f} {rate / floor:>8.2f}")
    pg = median["tradesync into PostgreSQL"]
    print(f"targets: into PostgreSQL ≥ 1.5× ccxt.pro: {pg / peer:.2f}× ({'met' if pg >= 1.5 * peer else 'NOT met'}); "
          f"≥ 0.5× the floor: {pg / floor:.2f}× ({'met' if pg >= 0.5 * floor else 'NOT met'})", flush=True)


# --- 100 strategies on one key ---------------------------------------------------------------------------------
FANOUT_TARGET = 0.8  # 100 strategies on one key keep this share of the one-strategy throughput


def owner_prefix(k: int) -> str:
    return f"o{k:03d}-"


class CountingStrategy(BaseStrategy):
    """Counts its fills in a trivial sync `on_trade` (on its hook thread); tells the loop once it has `expected`."""

    def __init__(self, *args: Any, expected: int, finished: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fills, self.expected, self.finished, self.done_at = 0, expected, finished, 0

    def on_trade(self, trade: Trade) -> None:
        self.fills += 1
        if self.fills == self.expected:
            self.done_at = time.time_ns()
            self.finished()


async def run_fanout(feed: Feed, count: int, store: Any, tmp: Path, strategies: int, by_prefix: bool) -> float:
    """Our pool to `strategies` strategies on one key: every fill to each (no owner), or by client-order-id
    prefix to one owner each; fills/s from the first sent until every strategy has every fill of its own."""
    loop = asyncio.get_running_loop()
    done, clock, left = asyncio.Event(), [0, 0], [strategies]
    expected = count // strategies if by_prefix else count

    def one_finished() -> None:  # called on a strategy's hook thread
        loop.call_soon_threadsafe(count_down)

    def count_down() -> None:
        left[0] -= 1
        if left[0] == 0:
            clock[0] = max(s.done_at for s in group)
            done.set()

    connector = ExchangeConnector("bybit", "future", credentials=feed.creds,
                                  endpoints=Endpoints(ws=f"ws://{feed.prefix}", rest=f"http://{feed.prefix}"),
                                  retry_policy=reconnect_policy(initial=0.05, maximum=0.5))
    run = uuid.uuid4().hex[:6]
    async with ConnectionPool(store=store, log_dir=tmp / "logs", spool_dir=tmp / f"spool-{run}") as pool:
        group = [CountingStrategy(f"fan-{run}-{k:03d}", [connector], pool=pool, expected=expected,
                                  finished=one_finished,
                                  client_order_id_prefix=owner_prefix(k) if by_prefix else None)
                 for k in range(strategies)]
        await asyncio.gather(*(s.start() for s in group))
        try:
            rate = await feed.push(count, done, clock, owners=strategies if by_prefix else 0)
        finally:
            await asyncio.gather(*(s.stop() for s in group), return_exceptions=True)
        short = [s.strategy_id for s in group if s.fills != expected]
        if short:
            print(f"  warning: {len(short)} strategies do not have exactly {expected:,} fills", flush=True)
        return rate


async def fanout(args: argparse.Namespace, tmp: Path) -> None:
    async with bybit_feed(args, "bench_fan_") as (feed, pg_url):
        count = args.fanout_fills - args.fanout_fills % 100
        stores = {"no store": DiscardStore, "PostgreSQL": lambda: open_store(pg_url)}
        shapes = {"1 strategy": (1, False), "100, every fill to all": (100, False), "100, one owner per fill": (100, True)}
        results: dict[tuple[str, str], list[float]] = {(st, sh): [] for st in stores for sh in shapes}
        print(f"\n{COMPARE_VENUE} at max rate to 1 and 100 strategies on one key, {count:,} fills per run, "
              f"{args.rounds} alternating rounds (simulator in its own process on 127.0.0.1:{feed.port})", flush=True)
        for round_ in range(args.rounds):
            for store_name, make in stores.items():
                for shape, (n, by_prefix) in shapes.items():
                    rate = await run_fanout(feed, count, make(), tmp, n, by_prefix)
                    results[(store_name, shape)].append(rate)
                    print(f"  round {round_ + 1}: {store_name:<10} {shape:<24} {rate:>9,.0f} fills/s", flush=True)
    print(f"{'store':<10} {'strategies (median of rounds)':<30} {'fills/s':>9} {'× one':>7}  target ≥ {FANOUT_TARGET}×")
    for store_name in stores:
        one = statistics.median(results[(store_name, "1 strategy")])
        for shape in shapes:
            rate = statistics.median(results[(store_name, shape)])
            verdict = "" if shape == "1 strategy" else ("met" if rate >= FANOUT_TARGET * one else "NOT met")
            print(f"{store_name:<10} {shape:<30} {rate:>9,.0f} {rate / one:>7.2f}  {verdict}", flush=True)


async def targets(args: argparse.Namespace, key: ConnectionKey, tmp: Path) -> None:
    creds = generated_credentials(key.exchange)
    env = {**os.environ, "E2E_CREDENTIALS": json.dumps({
        "api_key": creds.api_key, "secret": creds.secret, "passphrase": creds.passphrase,
        "wallet_address": creds.wallet_address})}
    child = subprocess.Popen([sys.executable, __file__, "--serve", "--venue", args.venue], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    port = int(child.stdout.readline().split()[1])
    schema = f"bench_e2e_{uuid.uuid4().hex[:8]}"
    store = TimedStore(open_store(f"{args.pg}{'&' if '?' in args.pg else '?'}schema={schema}"))
    base = f"127.0.0.1:{port}/{key}"
    connector = ExchangeConnector(key.exchange, key.market, credentials=creds,
                                  endpoints=Endpoints(ws=f"ws://{base}", rest=f"http://{base}"),
                                  retry_policy=reconnect_policy(initial=0.05, maximum=0.5))
    try:
        async with ConnectionPool(store=store, log_dir=tmp / "logs", spool_dir=tmp / "spool") as pool:
            strategy = BaseStrategy("e2e", [connector], pool=pool)
            await strategy.start()
            print(f"{args.venue} through {store.url}; simulator in its own process on 127.0.0.1:{port}")
            print(f"{'run':<34} {'fills':>9} {'fills/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>9}  target")

            def row(name: str, count: int, rate: float, lat: list[float], target: str) -> None:
                print(f"{name:<34} {count:>9,} {rate:>9,.0f} {statistics.median(lat):>8.2f} "
                      f"{pct(lat, 0.99):>8.2f} {lat[-1]:>9.2f}  {target}", flush=True)

            rate, lat = await run_phase(child, store, args.latency_fills, 1000, 0)
            row("1,000 fills/s, clean", args.latency_fills, rate, lat, "p99 ≤ 20 ms")
            rate, lat = await run_phase(child, store, args.latency_fills, 1000, args.latency_fills // 5)
            row("1,000 fills/s, socket drop every 2 s", args.latency_fills, rate, lat, "")
            store.committed.clear()
            store.per_fill = False
            rss_before = rss_mb()
            rate, _ = await run_phase(child, store, args.fills, 0, 0)
            rss_after = rss_mb()
            print(f"{'as fast as it goes (sustained)':<34} {args.fills:>9,} {rate:>9,.0f} {'':>27}  ≥ 10,000 fills/s")
            print(f"client RSS: {rss_before:.0f} MB before, {rss_after:.0f} MB after {args.fills:,} fills "
                  f"(growth {rss_after - rss_before:+.0f} MB; target: flat)")
            stats = pool.trade_sync.stats()
            print(f"stored {stats['stored']:,}, duplicates {stats['duplicates']:,}, "
                  f"longest in-memory queue {stats['peak_pending']:,}, "
                  f"reconnects {pool.get_connection_status()['connections'][args.venue]['reconnects']}, "
                  f"fills the strategy read back from the store {strategy.caught_up:,}", flush=True)
            await strategy.stop()
    finally:
        child.stdin.close()
        child.wait(timeout=30)
        import psycopg

        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venue", default="binance_future", help="connection key (default binance_future)")
    parser.add_argument("--fills", type=int, default=1_000_000, help="fills in the sustained run (default 1e6)")
    parser.add_argument("--latency-fills", type=int, default=10_000, help="fills per 1,000/s run (default 10000)")
    parser.add_argument("--compare-fills", type=int, default=50_000, help="fills per side-by-side run (default 50000)")
    parser.add_argument("--fanout-fills", type=int, default=20_000, help="fills per 1/100-strategy run (default 20000)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating side-by-side rounds (default 3)")
    parser.add_argument("--quick", action="store_true",
                        help="100,000 sustained, 3,000 at 1,000/s, 20,000 (10,000 to strategies) × 2 rounds")
    parser.add_argument("--only", choices=("targets", "compare", "fanout"), help="run one part only")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    key = ConnectionKey.parse(args.venue)
    if args.serve:
        creds = Credentials(**json.loads(os.environ["E2E_CREDENTIALS"]))
        await serve(key, creds)
        return
    if args.quick:
        args.fills, args.latency_fills, args.compare_fills, args.rounds = 100_000, 3_000, 20_000, 2
        args.fanout_fills = 10_000
    configure_console(os.environ.get("E2E_LOG_LEVEL", "ERROR"))
    tmp = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    if args.only in (None, "targets"):
        await targets(args, key, tmp)
    if args.only in (None, "compare"):
        await compare(args, tmp)
    if args.only in (None, "fanout"):
        await fanout(args, tmp)


if __name__ == "__main__":
    asyncio.run(main())
