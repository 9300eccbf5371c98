"""Dashboard benchmark: latency from the simulator's fill (the simulator in its own process) to the `fill` message on
a dashboard page socket, p50/p99 at 1,000 fills/s, and how many pages one backend serves at that rate (1, 10, 50
pages: latency, and whether every page keeps up: all the fills, no `behind` snapshot). Two paths:

- feed: the bot's own process serves the dashboard (scripts/run_dashboard.py): simulator → socket → pool → store →
  the dashboard's pipeline component → journal → page socket;
- publisher: the bot publishes (framework.publisher) to a dashboard backend in another process: … → store → the
  publisher component → /ws → ingest → journal → page socket.

Pages are read by child processes (a few pages each) that scan the socket's bytes for fill messages (no decode per
message: a reader costs little beside the server it measures). Usage:

    python bench/dashboard.py [--quick] [--fills 5000] [--rate 1000] [--pages 1,10,50] [--path feed,publisher]
                              [--store sqlite|memory] [--venue binance_spot]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exchanges.connector import Credentials, ExchangeConnector  # noqa: E402
from exchanges.simulator.server import generated_credentials  # noqa: E402
from framework.console import configure_console  # noqa: E402
from framework.events import ConnectionKey  # noqa: E402
from framework.pool import ConnectionPool  # noqa: E402
from framework.retry import reconnect_policy  # noqa: E402
from framework.strategy import BaseStrategy  # noqa: E402
from framework.venue import Endpoints  # noqa: E402
from memory_store import MemoryStore  # noqa: E402  (bench/memory_store.py)

TOKEN = "bench-dashboard-token-0123456789"
PAGES_PER_READER = 10  # page sockets one reader process holds
TARGET_MS = 100.0  # the design's promise: a fill on the page within 100 ms
LIVE = "/ws/live-dashboard"


# --- children -----------------------------------------------------------------------------------------------
def spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env={**os.environ, **(env or {})})


async def ask(child: subprocess.Popen, line: str | None, timeout: float = 120.0) -> list[str]:
    """Write a command line (if any) and read the child's one-line answer."""
    if line is not None:
        child.stdin.write(f"{line}\n".encode())
        child.stdin.flush()
    loop = asyncio.get_running_loop()
    answer = await asyncio.wait_for(loop.run_in_executor(None, child.stdout.readline), timeout)
    if not answer:
        raise RuntimeError(f"child {child.args[2:]} ended (exit {child.wait()})")
    return answer.decode().split()


def end(child: subprocess.Popen) -> None:
    try:
        child.stdin.close()
        child.wait(timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        child.kill()
        child.wait()


# The simulator: bench/e2e.py's child (`fills N RATE 0` → `sent <file of (trade id, send time ns)> <first ns>`).
def simulator(venue: str, creds: Credentials) -> subprocess.Popen:
    env = {**os.environ, "E2E_CREDENTIALS": json.dumps({
        "api_key": creds.api_key, "secret": creds.secret, "passphrase": creds.passphrase,
        "wallet_address": creds.wallet_address})}
    return subprocess.Popen([sys.executable, str(ROOT / "bench" / "e2e.py"), "--serve", "--venue", venue], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)


async def serve_dashboard(tmp: Path) -> None:
    """Child: a dashboard backend with no bot of its own (publishers bring the events); `ready PORT`, then runs
    until stdin closes."""
    from framework.dashboard import Dashboard

    configure_console(os.environ.get("BENCH_LOG_LEVEL", "ERROR"))
    pool = ConnectionPool(f"sqlite:///{tmp / 'dashboard.sqlite'}", tmp / "dashboard-logs")
    await pool.start()
    board = Dashboard(pool, port=0, token=TOKEN)
    await board.start()
    print(f"ready {board.port}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await board.stop()
    await pool.stop()


FILL = re.compile(rb'\{"type":"fill","seq":\d+,"data":\{"key":"[^"]*","trade_id":"([^"]+)"')
BEHIND = re.compile(rb'"reason":"behind"')
SNAPSHOT = b'{"type":"snapshot"'
TAIL = 512  # bytes of a chunk scanned again with the next one (a message split between reads)


async def open_page(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A page socket opened by hand: the upgrade, then the server's frames read as bytes (they are not masked,
    and no compression is offered), so a reader costs a scan per chunk instead of a decode per message."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n")[0]:
        raise RuntimeError(f"page socket refused: {head.splitlines()[0]!r}")
    return reader, writer


async def read_pages(url: str, count: int) -> None:
    """Child: `count` page sockets; `ready` once each has its snapshot; `collect N TIMEOUT` waits until every page
    has N fill messages or the timeout, and answers `done <file>` with, per page, the (trade id, arrival ns) of
    each fill message and the behind snapshots it got."""
    pages = [{"fills": [], "behind": 0, "snapshot": asyncio.Event()} for _ in range(count)]

    async def read(page: dict[str, Any], reader: asyncio.StreamReader) -> None:
        tail = b""
        while chunk := await reader.read(1 << 20):
            arrived = time.time_ns()
            text = tail + chunk
            old = len(tail)  # a match ending inside what was scanned before was counted then
            page["fills"].extend((m.group(1).decode(), arrived) for m in FILL.finditer(text) if m.end() > old)
            page["behind"] += sum(1 for m in BEHIND.finditer(text) if m.end() > old)
            if not page["snapshot"].is_set() and SNAPSHOT in text:
                page["snapshot"].set()
            tail = text[-TAIL:]

    sockets = [await open_page(url) for _ in range(count)]
    tasks = [asyncio.create_task(read(page, r), name="bench-page") for page, (r, _) in zip(pages, sockets)]
    await asyncio.wait_for(asyncio.gather(*(p["snapshot"].wait() for p in pages)), 60)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while line := (await loop.run_in_executor(None, sys.stdin.readline)).split():
        want, timeout = int(line[1]), float(line[2])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(len(p["fills"]) < want for p in pages):
            await asyncio.sleep(0.05)
        path = Path(tempfile.mkstemp(prefix="bench-pages-")[1])
        path.write_text(json.dumps([{"fills": p["fills"], "behind": p["behind"]} for p in pages]))
        for page in pages:
            page["fills"], page["behind"] = [], 0
        print(f"done {path}", flush=True)
    for task in tasks:
        task.cancel()
    for _, writer in sockets:
        writer.transport.abort()


# --- the bot side ----------------------------------------------------------------------------------------------
class BenchStore(MemoryStore):
    """bench/memory_store.py with the empty account a dashboard reads at start."""

    async def fetch_balances(self, *args: Any, **kwargs: Any) -> list:
        return []

    async def fetch_positions(self, *args: Any, **kwargs: Any) -> list:
        return []

    async def fetch_order_requests(self, *args: Any, **kwargs: Any) -> list:
        return []


class Probe:
    """A pipeline component noting when each fill is handed to components (stored): the pipeline's share."""

    def __init__(self) -> None:
        self.at: dict[str, int] = {}

    async def on_trade_update(self, trade: Any) -> None:
        self.at[trade.trade_id] = time.time_ns()


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def round_of(sim: subprocess.Popen, page_url: str, pages: int, fills: int, rate: float,
                   probe: Probe) -> dict[str, Any]:
    """One run of `fills` fills at `rate` with `pages` pages reading: latency figures and who kept up."""
    readers = []
    left = pages
    while left:
        count = min(PAGES_PER_READER, left)
        left -= count
        readers.append(spawn("--read-pages", page_url, "--count", str(count)))
    try:
        for reader in readers:
            assert (await ask(reader, None, 60))[0] == "ready"
        answer = await ask(sim, f"fills {fills} {rate} 0")
        sent_path = Path(answer[1])
        sent = dict(json.loads(sent_path.read_text()))
        sent_path.unlink()
        stored = sorted((probe.at[tid] - ns) / 1e6 for tid, ns in sent.items() if tid in probe.at)
        probe.at.clear()
        results = []
        for reader in readers:
            path = Path((await ask(reader, f"collect {fills} 60", 120))[1])
            results.extend(json.loads(path.read_text()))
            path.unlink()
    finally:
        for reader in readers:
            end(reader)
    every: list[float] = []
    page_p99: list[float] = []
    kept_up = 0
    behind = 0
    for page in results:
        latency = sorted((ns - sent[tid]) / 1e6 for tid, ns in page["fills"] if tid in sent)
        got = len({tid for tid, _ in page["fills"] if tid in sent})
        every.extend(latency)
        page_p99.append(pct(latency, 0.99))
        behind += page["behind"]
        kept_up += got == fills and not page["behind"]
    every.sort()
    return {"pages": pages, "fills": fills, "p50": pct(every, 0.5), "p99": pct(every, 0.99),
            "max": every[-1] if every else float("nan"), "worst_page_p99": max(page_p99), "kept_up": kept_up,
            "behind": behind, "received": len(every), "stored_p50": pct(stored, 0.5), "stored_p99": pct(stored, 0.99)}


async def bench_path(path: str, args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    key = ConnectionKey.parse(args.venue)
    creds = generated_credentials(key.exchange)
    sim = simulator(args.venue, creds)
    port = int((await ask(sim, None, 60))[1])
    base = f"127.0.0.1:{port}/{key}"
    connector = ExchangeConnector(key.exchange, key.market, credentials=creds,
                                  endpoints=Endpoints(ws=f"ws://{base}", rest=f"http://{base}"),
                                  retry_policy=reconnect_policy(initial=0.05, maximum=0.5))
    store: Any = BenchStore() if args.store == "memory" else None
    url = None if store is not None else f"sqlite:///{tmp / f'bot-{path}.sqlite'}"
    board = publisher = remote = None
    rows = []
    try:
        async with ConnectionPool(url, store=store, log_dir=tmp / "logs", spool_dir=tmp / f"spool-{path}") as pool:
            strategy = BaseStrategy("bench", [connector], pool=pool)
            await strategy.start()
            probe = Probe()
            pool.pipeline.register_component("bench-probe", probe, ["trade"])
            if path == "feed":
                from framework.dashboard import Dashboard

                board = Dashboard(pool, port=0, token=TOKEN, connectors=[connector])
                await board.start()
                page_url = f"ws://127.0.0.1:{board.port}{LIVE}?token={TOKEN}"
            else:
                from framework.publisher import Publisher, PublisherConfig

                remote = spawn("--serve-dashboard", "--tmp", str(tmp))
                dash_port = int((await ask(remote, None, 60))[1])
                publisher = Publisher(PublisherConfig(enabled=True, url=f"ws://127.0.0.1:{dash_port}/ws", token=TOKEN,
                                                      publisher_id="bench-bot", retry_delay=0.1), pool=pool)
                await publisher.start()
                page_url = f"ws://127.0.0.1:{dash_port}{LIVE}?token={TOKEN}"  # only the bot's messages there
                while publisher.state.value != "connected":
                    await asyncio.sleep(0.05)
            while pool.get_connection_status()["connections"].get(str(key), {}).get("status") != "connected":
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # the start-up backfill is done
            await round_of(sim, page_url, 1, min(args.fills, 1_000), args.rate, probe)  # warm-up, not shown
            for pages in args.pages:
                row = await round_of(sim, page_url, pages, args.fills, args.rate, probe)
                row["path"] = path
                rows.append(row)
                print_row(row, args.rate)
                await asyncio.sleep(0.5)
            if publisher is not None:
                await publisher.stop()
            if board is not None:
                await board.stop()
            await strategy.stop()
    finally:
        end(sim)
        if remote is not None:
            end(remote)
    return rows


def header(args: argparse.Namespace) -> None:
    print(f"{args.venue}, {args.fills:,} fills a round at {args.rate:,.0f} fills/s, store {args.store}; "
          f"simulator, page readers ({PAGES_PER_READER} pages each) and the remote dashboard in their own processes; "
          f"{os.cpu_count()} CPUs")
    print(f"{'path':<10} {'pages':>5} {'fills':>7} {'stored p50/p99':>15} {'page p50':>9} {'p99 ms':>8} {'max ms':>8} "
          f"{'worst page p99':>15} {'pages kept up':>14} {'behind':>7}  target p99 < {TARGET_MS:g} ms", flush=True)


def print_row(row: dict[str, Any], rate: float) -> None:
    verdict = "met" if row["p99"] < TARGET_MS and row["kept_up"] == row["pages"] else "NOT met"
    stored = f"{row['stored_p50']:.1f} / {row['stored_p99']:.1f}"
    print(f"{row['path']:<10} {row['pages']:>5} {row['fills']:>7,} {stored:>15} {row['p50']:>9.1f} {row['p99']:>8.1f} "
          f"{row['max']:>8.1f} {row['worst_page_p99']:>15.1f} {row['kept_up']:>8} of {row['pages']:<3} "
          f"{row['behind']:>7}  {verdict}", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venue", default="binance_spot", help="connection key (default binance_spot)")
    parser.add_argument("--fills", type=int, default=5_000, help="fills per round (default 5000)")
    parser.add_argument("--rate", type=float, default=1_000.0, help="fills/s (default 1000)")
    parser.add_argument("--pages", default="1,10,50", help="page counts, one round each (default 1,10,50)")
    parser.add_argument("--path", default="feed,publisher", help="feed, publisher or both (default both)")
    parser.add_argument("--store", default="sqlite", choices=("sqlite", "memory"),
                        help="the bot's store (default sqlite; memory: bench/memory_store.py)")
    parser.add_argument("--quick", action="store_true", help="2,000 fills a round")
    parser.add_argument("--serve-dashboard", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--read-pages", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--tmp", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_dashboard:
        await serve_dashboard(Path(args.tmp))
        return
    if args.read_pages:
        await read_pages(args.read_pages, args.count)
        return
    if args.quick:
        args.fills = 2_000
    args.pages = [int(p) for p in args.pages.split(",")]
    paths = [p.strip() for p in args.path.split(",")]
    if not set(paths) <= {"feed", "publisher"}:
        parser.error("--path: feed, publisher or both")
    configure_console(os.environ.get("BENCH_LOG_LEVEL", "ERROR"))
    tmp = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    header(args)
    rows = []
    for path in paths:
        rows.extend(await bench_path(path, args, tmp))
    served = {path: max((r["pages"] for r in rows if r["path"] == path and r["kept_up"] == r["pages"]
                         and r["p99"] < TARGET_MS), default=0) for path in paths}
    print("pages one backend serves at this rate with every page keeping up and p99 under "
          f"{TARGET_MS:g} ms (of those tried): " + ", ".join(f"{p} {n}" for p, n in served.items()))


if __name__ == "__main__":
    asyncio.run(main())
