"""Scale-out benchmark: one simulator key (its own process) → one streamer (`python -m framework.scaleout.cli`, i.e.
tradesync-streamer, its own process, PostgreSQL store) → NATS JetStream on loopback → strategy processes (each its
own process, its own SQLite store, one collecting strategy, as run_strategy.py --nats builds it).

Prints, against the machine's NATS (namespaces of its own, deleted after) and on one Bybit linear feed:

- fills/s at max rate from the simulator's first send until every strategy process's callback had the fills (only
  fills every process received count), with 1, 4 and 16 strategy processes, and the CPU each process spent a fill;
- p50 / p99 latency from the simulator's send to the strategy callback in another process at 1,000 fills/s, and at
  a slow rate (100/s: the path without queueing), with where the time goes: the send → the streamer's receipt (the
  fill's `received_at`), → the event in the stream (JetStream's timestamp: the streamer's store commit and
  publish), → fetched by the strategy process, → its callback (its store, dispatch). The send times are the
  simulator's, taken as bench/e2e.py's simulator takes them (one clock: one machine);
- the same latency through a streamer on SQLite (the NATS hop without PostgreSQL's share);
- failover: kill -9 the owning streamer with a standby running (both on one PostgreSQL); how long until the standby
  owns the key, until its socket is live at the simulator, until fills reach the strategy process again (the first
  sent after the kill, the first over the new socket, and the whole gap), and fills missing or doubled;
- for comparison on the same feed in the same run: the key consumed directly in one process (no NATS; what a user
  would otherwise run: socket → normalize → SQLite → strategy), and ccxt.pro in one process (bench/e2e.py's
  `watch_my_trades` + `watch_orders` at max rate, no store; `watch_my_trades` returning the fill for latency).

    python bench/scale_out.py [--quick] [--fills 5000] [--latency-fills 5000] [--slow-rate 100] [--slow-fills 500]
                              [--processes 1,4,16] [--failover-rate 200] [--no-compare]
                              [--nats nats://127.0.0.1:4222] [--pg postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from e2e import BYBIT_TOPICS, COMPARE_VENUE, Feed, rewrite_urls, run_ccxt  # noqa: E402  (bench/e2e.py)
from exchanges.connector import Credentials, ExchangeConnector  # noqa: E402
from exchanges.simulator.server import generated_credentials  # noqa: E402
from framework.console import configure_console  # noqa: E402
from framework.events import ConnectionKey, Trade  # noqa: E402
from framework.pool import ConnectionPool  # noqa: E402
from framework.retry import reconnect_policy  # noqa: E402
from framework.strategy import BaseStrategy  # noqa: E402
from framework.venue import Endpoints  # noqa: E402

KEY = ConnectionKey.parse(COMPARE_VENUE)  # bybit_future: where ccxt.pro can be pointed at the simulator too
SYMBOL = "BTC/USDT:USDT"
TARGET_P99_MS = 10.0


# --- the simulator (a child): bench/e2e.py's protocol, plus a record of its live sockets ------------------------
async def serve_sim(creds: Credentials) -> None:
    """`wait TOPICS…` (one live socket subscribed to them) and `fills N RATE DROP_EVERY [OWNERS]` → `sent <file of
    (trade id, send time ns)> <first ns>` as bench/e2e.py's simulator (DROP_EVERY -1: keep the ledger, no drops:
    a standby's backfill reads it); `watch` starts noting the live subscribed sockets, `timeline` answers
    `timeline <file of (ns, sockets) at each change>` and stops."""
    from exchanges.simulator import Simulator

    sim = Simulator({KEY.exchange: creds}, exchanges=[KEY.exchange], seed=1)
    await sim.start()
    print(f"ready {sim.port}", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    topics = set(BYBIT_TOPICS)
    timeline: list[tuple[int, int]] = []
    watcher: asyncio.Task | None = None

    def live() -> int:
        return sum(1 for s in sim.sessions(KEY.exchange, KEY.market) if s.authenticated and topics <= s.subscriptions)

    async def watch() -> None:
        last = None
        while True:
            now = live()
            if now != last:
                timeline.append((time.time_ns(), now))
                last = now
            await asyncio.sleep(0.002)

    while line := (await reader.readline()).decode().split():
        if line[0] == "wait":
            want = set(line[1:]) or topics
            while True:  # exactly one live socket, subscribed to every given topic
                sessions = sim.sessions(KEY.exchange, KEY.market)
                if len(sessions) == 1 and sessions[0].authenticated and want <= sessions[0].subscriptions:
                    break
                await asyncio.sleep(0.01)
            print("subscribed", flush=True)
        elif line[0] == "watch":
            timeline.clear()
            watcher = asyncio.create_task(watch(), name="bench-sockets")
            print("watching", flush=True)
        elif line[0] == "timeline":
            if watcher is not None:
                watcher.cancel()
            path = Path(tempfile.mkstemp(prefix="scale-out-timeline-")[1])
            path.write_text(json.dumps(timeline))
            print(f"timeline {path}", flush=True)
        elif line[0] == "fills":
            count, rate, drop_every = int(line[1]), float(line[2]), int(line[3])
            owners = int(line[4]) if len(line) > 4 else 0
            if drop_every == 0:
                sim.ledger(KEY.exchange, KEY.market).fills.clear()
            each = Decimal(-(-count // max(owners, 1))) / 1000
            orders = [await sim.place_order(KEY.exchange, KEY.market, SYMBOL, "buy", each, "65000.5",
                                            client_order_id=f"o{k:03d}-1" if owners else None)
                      for k in range(max(owners, 1))]
            sent: list[tuple[str, int]] = []
            start = time.perf_counter()
            first_sent = time.time_ns()
            for i in range(count):
                if rate:
                    delay = start + i / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                elif i % 200 == 0:
                    await asyncio.sleep(0)
                if drop_every > 0 and i and i % drop_every == 0:
                    await sim.drop(KEY.exchange, KEY.market)
                fill = await sim.fill_order(KEY.exchange, KEY.market, orders[i % len(orders)], "0.001", is_maker=True)
                sent.append((fill.trade_id, time.time_ns()))
            path = Path(tempfile.mkstemp(prefix="scale-out-sent-")[1])
            path.write_text(json.dumps(sent))
            print(f"sent {path} {first_sent}", flush=True)
        else:
            break
    await sim.stop()


# --- a strategy process (a child): its key from NATS, its own SQLite store, one collecting strategy -----------------
class Collector(BaseStrategy):
    """Notes (trade id, arrival ns, redelivered) of every fill in a plain `on_trade` (its hook thread)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.got: list[tuple[str, int, bool]] = []

    def on_trade(self, trade: Trade) -> None:
        self.got.append((trade.trade_id, time.time_ns(), trade.redelivered))


def venue_connector(port: int, creds: Credentials) -> ExchangeConnector:
    base = f"127.0.0.1:{port}/{KEY}"
    return ExchangeConnector(KEY.exchange, KEY.market, credentials=creds,
                             endpoints=Endpoints(ws=f"ws://{base}", rest=f"http://{base}"),
                             retry_policy=reconnect_policy(initial=0.05, maximum=0.5))


class Stages:
    """Per fill, where it was on the way (the strategy process's side): the streamer's receipt (the fill's
    `received_at`, ms), the event stored in the stream (JetStream's timestamp), fetched here."""

    def __init__(self) -> None:
        self.at: dict[str, tuple[int, int, int]] = {}
        self._stream_ns: dict[int, int] = {}

    def install(self) -> None:
        from framework.scaleout import remote

        original_event_of, original_open = remote.event_of, remote.NatsConnection._open
        stages = self

        def event_of(data: bytes) -> Any:
            event = original_event_of(data)
            if isinstance(event, Trade):
                stages.at[event.trade_id] = (event.received_at * 1_000_000, stages._stream_ns.pop(id(data), 0),
                                             time.time_ns())
            return event

        async def _open(connection: Any) -> None:
            await original_open(connection)
            fetch = connection._sub.fetch

            async def timed_fetch(*args: Any, **kwargs: Any) -> Any:
                messages = await fetch(*args, **kwargs)
                for message in messages:
                    stages._stream_ns[id(message.data)] = _ns(message.metadata.timestamp)
                return messages

            connection._sub.fetch = timed_fetch

        remote.event_of = event_of
        remote.NatsConnection._open = _open


def _ns(value: Any) -> int:
    """JetStream's message time as ns since the epoch (nats-py gives a datetime)."""
    return int(value.timestamp() * 1e9) if value is not None else 0


async def strategy_process(args: argparse.Namespace) -> None:
    """`ready` once its NATS connection is up; `collect N TIMEOUT` → `done <file>` with what arrived since the
    last collect once it holds N fills (or the timeout); stdin closed: stops like run_strategy.py."""
    from framework.runtime import tune_gc
    from framework.scaleout.remote import ScaleOut

    configure_console(os.environ.get("BENCH_LOG_LEVEL", "ERROR"))
    creds = Credentials(**json.loads(os.environ["E2E_CREDENTIALS"]))
    stages = Stages()
    stages.install()
    tmp = Path(args.tmp)
    so = ScaleOut(args.nats, args.strategy_process, args.namespace)
    await so.start()
    pool = ConnectionPool(f"sqlite:///{tmp / f'{args.strategy_process}.sqlite'}", tmp / f"logs-{args.strategy_process}",
                          spool_dir=tmp / f"spool-{args.strategy_process}")
    strategy = Collector(f"collect-{args.strategy_process}", [so.connector(venue_connector(args.port, creds))],
                         symbols=[SYMBOL], pool=pool)
    await pool.start()
    await strategy.start()
    tune_gc()
    while pool.get_connection_status()["connections"].get(str(KEY), {}).get("status") != "connected":
        await asyncio.sleep(0.02)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while line := (await loop.run_in_executor(None, sys.stdin.readline)).split():
        want, timeout = int(line[1]), float(line[2])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len({tid for tid, _, _ in strategy.got}) < want:
            await asyncio.sleep(0.02)
        got, strategy.got = strategy.got, []
        rows = [(tid, ns, redelivered, *stages.at.get(tid, (0, 0, 0))) for tid, ns, redelivered in got]
        stages.at.clear()
        path = Path(tempfile.mkstemp(prefix="scale-out-got-")[1])
        path.write_text(json.dumps(rows))
        print(f"done {path}", flush=True)
    await strategy.stop()
    await pool.stop()
    await so.stop()


# --- the bench side -----------------------------------------------------------------------------------------------
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def spawn(*args: str, env: dict[str, str], log: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=open(log, "ab") if log else None)


async def ask(child: subprocess.Popen, line: str | None, timeout: float = 120.0) -> list[str]:
    if line is not None:
        child.stdin.write(f"{line}\n".encode())
        child.stdin.flush()
    answer = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, child.stdout.readline), timeout)
    if not answer:
        raise RuntimeError(f"child {' '.join(map(str, child.args[1:4]))} ended (exit {child.wait()})")
    return answer.decode().split()


def end(child: subprocess.Popen, timeout: float = 30.0) -> None:
    try:
        child.stdin.close()
        child.wait(timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        child.kill()
        child.wait()


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def read_json(path: str) -> Any:
    data = json.loads(Path(path).read_text())
    Path(path).unlink()
    return data


def latencies(sent: dict[str, int], arrived: dict[str, int]) -> list[float]:
    return sorted((arrived[tid] - ns) / 1e6 for tid, ns in sent.items() if tid in arrived)


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args, self.tmp = args, tmp
        self.creds = generated_credentials(KEY.exchange)
        self.env = {**os.environ, "E2E_CREDENTIALS": json.dumps({
            "api_key": self.creds.api_key, "secret": self.creds.secret, "passphrase": self.creds.passphrase,
            "wallet_address": self.creds.wallet_address})}
        self.namespace = f"bench{uuid.uuid4().hex[:8]}"
        self.namespaces = [self.namespace]
        self.schema = f"bench_scale_{uuid.uuid4().hex[:8]}"
        self.db = f"{args.pg}{'&' if '?' in args.pg else '?'}schema={self.schema}"
        self.sim: subprocess.Popen | None = None
        self.port = 0
        self.streamers: dict[str, subprocess.Popen] = {}

    # children ----------------------------------------------------------------------------------------------------
    async def start_sim(self) -> None:
        self.sim = spawn(__file__, "--serve-sim", env=self.env)
        self.port = int((await ask(self.sim, None, 60))[1])

    def streamer_env(self) -> dict[str, str]:
        """The venue credentials as `tradesync-streamer --sim-url` reads them (exchanges/simulator/__main__.py)."""
        from attrs import asdict

        from exchanges import get_exchange
        from exchanges.connector import env_var

        env = dict(self.env)
        values = asdict(self.creds)
        for field in get_exchange(KEY.exchange).credentials_required:
            env[env_var(KEY.exchange, "default", field)] = str(values[field])
        return env

    def new_namespace(self) -> None:
        self.namespace = f"bench{uuid.uuid4().hex[:8]}"
        self.namespaces.append(self.namespace)

    async def start_streamer(self, name: str, db: str | None = None) -> subprocess.Popen:
        child = spawn("-m", "framework.scaleout.cli", "--nats", self.args.nats, "--db", db or self.db,
                      "--namespace", self.namespace, "--name", name, "--sim-url", f"http://127.0.0.1:{self.port}",
                      "--status-every", "0", "--log-dir", str(self.tmp / f"logs-{name}"),
                      env=self.streamer_env(), log=self.tmp / f"{name}.stderr")
        line = await ask(child, None, 60)
        if line[:1] != ["tradesync-streamer"]:
            raise RuntimeError(f"streamer {name} said {' '.join(line)!r} (see {self.tmp / f'{name}.stderr'})")
        self.streamers[name] = child
        return child

    async def start_processes(self, count: int, tag: str) -> list[subprocess.Popen]:
        names = [f"{tag}{k:02d}-{uuid.uuid4().hex[:4]}" for k in range(count)]
        children = [spawn(__file__, "--strategy-process", name, "--namespace", self.namespace, "--nats",
                          self.args.nats, "--port", str(self.port), "--tmp", str(self.tmp), env=self.env,
                          log=self.tmp / f"{name}.stderr") for name in names]
        for child in children:
            answer = await ask(child, None, 180)
            if answer != ["ready"]:
                raise RuntimeError(f"strategy process said {' '.join(answer)!r}")
        await asyncio.wait_for(ask(self.sim, "wait " + " ".join(BYBIT_TOPICS)), 60)  # exactly one socket, subscribed
        return children

    async def send(self, count: int, rate: float, drop_every: int = 0) -> tuple[dict[str, int], int]:
        answer = await ask(self.sim, f"fills {count} {rate:g} {drop_every}", 600)
        return dict(read_json(answer[1])), int(answer[2])

    async def collect(self, children: list[subprocess.Popen], count: int, timeout: float = 120) -> list[list]:
        answers = await asyncio.gather(*(ask(c, f"collect {count} {timeout:g}", timeout + 60) for c in children))
        return [read_json(a[1]) for a in answers]

    async def settle(self, pids: list[int], timeout: float = 60.0) -> None:
        """Until every process is idle (a max-rate run leaves balances and positions to publish and store behind
        the fills): the next figure is not measured behind its backlog."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = [cpu_seconds(pid) for pid in pids]
            await asyncio.sleep(0.5)
            if all(cpu_seconds(pid) - cpu < 0.1 for pid, cpu in zip(pids, before)):
                return

    def busy(self) -> list[int]:
        return [child.pid for child in self.streamers.values()]

    async def owner(self) -> str | None:
        from framework.scaleout.jetstream import Namespace, connect, token

        client = await connect(self.args.nats, "bench-scale-out")
        try:
            kv = await client.jetstream().key_value(Namespace(self.namespace).owners_bucket)
            entry = await kv.get(token(KEY))
            return json.loads(entry.value)["streamer"] if entry.value else None
        except Exception:  # noqa: BLE001 - no entry
            return None
        finally:
            await client.close()

    # through NATS ------------------------------------------------------------------------------------------------
    async def stop_streamers(self) -> None:
        for child in self.streamers.values():
            child.send_signal(signal.SIGTERM)
        for child in self.streamers.values():
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.streamers.clear()

    async def nats_group(self, processes: int, throughput: bool = True) -> dict[str, Any]:
        """`processes` strategy processes: fills/s at max rate (only fills every process got count), the CPU each
        process spent a fill; with one, latency at 1,000 fills/s and at a slow rate first."""
        children = await self.start_processes(processes, f"p{processes}x")
        pids = self.busy() + [c.pid for c in children]
        result: dict[str, Any] = {"processes": processes}
        try:
            await self.send(300, 1000)  # warm-up: every process's path runs once, not shown
            await self.collect(children, 300, 30)
            if processes == 1:
                for rate, count in ((1000.0, self.args.latency_fills), (self.args.slow_rate, self.args.slow_fills)):
                    await self.settle(pids)
                    result[rate] = await self.latency(children[0], count, rate)
            if not throughput:
                return result
            await self.settle(pids)
            cpu = [cpu_seconds(pid) for pid in pids]
            sent, first = await self.send(self.args.fills, 0)
            got = await self.collect(children, self.args.fills)
            spent = [cpu_seconds(pid) - before for pid, before in zip(pids, cpu)]
            common = set(sent)
            for rows in got:
                common &= {row[0] for row in rows}
            last = max(row[1] for rows in got for row in rows if row[0] in common) if common else first
            streamers = len(self.busy())
            result.update(fills=self.args.fills, common=len(common),
                          rate=len(common) / ((last - first) / 1e9) if common else 0.0,
                          streamer_us=sum(spent[:streamers]) / self.args.fills * 1e6,
                          process_us=sum(spent[streamers:]) / processes / self.args.fills * 1e6)
            return result
        finally:
            for child in children:
                end(child)

    async def latency(self, child: subprocess.Popen, count: int, rate: float) -> dict[str, Any]:
        sent, _ = await self.send(count, rate)
        got = (await self.collect([child], count, 60))[0]
        total = latencies(sent, {row[0]: row[1] for row in got})
        streamer, stream, fetched, strategy = [], [], [], []
        for tid, ns, _, received, in_stream, fetched_ns in got:
            if tid in sent and received and in_stream and fetched_ns:
                streamer.append((received - sent[tid]) / 1e6)  # ms resolution: the fill's received_at
                stream.append((in_stream - received) / 1e6)
                fetched.append((fetched_ns - in_stream) / 1e6)
                strategy.append((ns - fetched_ns) / 1e6)
        return {"samples": total, "sent": len(sent),
                "stages": {"send → the streamer's receipt (its ms clock)": sorted(streamer),
                           "→ in the stream (store commit, publish)": sorted(stream),
                           "→ fetched by the strategy process": sorted(fetched),
                           "→ the callback (its store, dispatch)": sorted(strategy)}}

    async def failover(self) -> dict[str, Any]:
        """kill -9 the owner with a standby running: how long until the standby owns the key, its socket is live at
        the simulator, and fills reach the strategy process again; fills missing or doubled."""
        children = await self.start_processes(1, "fo")
        try:
            owner = await self.owner()
            standby = next(name for name in self.streamers if name != owner)
            rate, seconds = self.args.failover_rate, self.args.failover_seconds
            await self.settle(self.busy() + [children[0].pid])
            await ask(self.sim, "watch")
            sending = asyncio.create_task(self.send(int(rate * seconds), rate, -1))
            await asyncio.sleep(seconds * 0.3)
            killed = time.time_ns()
            self.streamers.pop(owner).send_signal(signal.SIGKILL)
            owned = None
            while owned is None and time.time_ns() - killed < 30e9:
                if await self.owner() == standby:
                    owned = time.time_ns()
                await asyncio.sleep(0.02)
            sent, _ = await sending
            timeline = read_json((await ask(self.sim, "timeline"))[1])
            got = (await self.collect(children, len(sent), 60))[0]
        finally:
            for child in children:
                end(child)
        socket = next((ns for ns, live in timeline if ns > killed and live >= 1), None)
        after = [ns for tid, ns, *_ in got if sent.get(tid, 0) > killed]
        live = [ns for tid, ns, *_ in got if socket and sent.get(tid, 0) > socket]  # over the standby's socket
        gap = [ns for tid, ns, *_ in got if socket and 0 < sent.get(tid, 0) <= socket]  # up to it: some by backfill
        seen: dict[str, int] = {}
        for tid, *_ in got:
            seen[tid] = seen.get(tid, 0) + 1
        return {"owned": (owned - killed) / 1e9 if owned else None,
                "socket": (socket - killed) / 1e9 if socket else None,
                "flowing": (min(after) - killed) / 1e9 if after else None,
                "live": (min(live) - killed) / 1e9 if live else None,
                "whole": (max(gap) - killed) / 1e9 if gap else None,
                "missing": len(set(sent) - set(seen)), "doubled": sum(1 for n in seen.values() if n > 1),
                "redelivered": sum(1 for _, _, redelivered, *_ in got if redelivered), "sent": len(sent), "rate": rate}

    # in one process, for comparison ------------------------------------------------------------------------------
    async def direct(self) -> dict[str, Any]:
        """The same key in one process without NATS: socket → normalize → SQLite → the collecting strategy."""
        pool = ConnectionPool(f"sqlite:///{self.tmp / 'direct.sqlite'}", self.tmp / "logs-direct",
                              spool_dir=self.tmp / "spool-direct")
        strategy = Collector("collect-direct", [venue_connector(self.port, self.creds)], symbols=[SYMBOL], pool=pool)
        await pool.start()
        await strategy.start()
        me = [os.getpid()]
        result: dict[str, Any] = {}
        try:
            await asyncio.wait_for(ask(self.sim, "wait " + " ".join(BYBIT_TOPICS)), 60)
            await self.send(300, 1000)
            await self.wait_for(strategy, 300)
            for rate, count in ((1000.0, self.args.latency_fills), (self.args.slow_rate, self.args.slow_fills)):
                await self.settle(me)
                strategy.got = []
                sent, _ = await self.send(count, rate)
                await self.wait_for(strategy, len(sent))
                result[rate] = {"samples": latencies(sent, {tid: ns for tid, ns, _ in strategy.got})}
            await self.settle(me)
            strategy.got = []
            cpu = time.process_time()
            sent, first = await self.send(self.args.fills, 0)
            await self.wait_for(strategy, len(sent))
            got = {tid: ns for tid, ns, _ in strategy.got}
            result.update(rate=len(set(sent) & set(got)) / ((max(got.values()) - first) / 1e9),
                          process_us=(time.process_time() - cpu) / len(sent) * 1e6)
        finally:
            await strategy.stop()
            await pool.stop()
        return result

    @staticmethod
    async def wait_for(strategy: Collector, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while len(strategy.got) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def ccxt(self) -> dict[str, Any]:
        """ccxt.pro in one process on the same feed: max rate (bench/e2e.py's run_ccxt: `watch_my_trades` and
        `watch_orders`, no store), then send → `watch_my_trades` returning the fill, paced."""
        import ccxt.pro as ccxtpro

        await self.settle([os.getpid()])
        feed = Feed(self.sim, self.port, self.creds)
        cpu = time.process_time()
        result: dict[str, Any] = {"rate": await run_ccxt(feed, self.args.fills)}
        result["process_us"] = (time.process_time() - cpu) / self.args.fills * 1e6
        exchange = ccxtpro.bybit({"apiKey": self.creds.api_key, "secret": self.creds.secret, "options": {
            "enableUnifiedMargin": False, "enableUnifiedAccount": True, "defaultType": "swap",
            "fetchMarkets": {"types": ["linear"]}}})
        exchange.urls["api"] = rewrite_urls(exchange.urls["api"], f"http://{feed.prefix}", f"ws://{feed.prefix}")
        got: dict[str, int] = {}

        async def trades() -> None:
            while True:
                for trade in await exchange.watch_my_trades():
                    got.setdefault(trade["id"], time.time_ns())

        try:
            await exchange.load_markets()
            task = asyncio.create_task(trades(), name="ccxt-trades")
            try:
                await asyncio.wait_for(ask(self.sim, "wait execution"), 30)
                for rate, count in ((1000.0, self.args.latency_fills), (self.args.slow_rate, self.args.slow_fills)):
                    await self.settle([os.getpid()])
                    sent, _ = await self.send(count, rate)
                    deadline = time.monotonic() + 30
                    while len(set(sent) & set(got)) < len(sent) and time.monotonic() < deadline:
                        await asyncio.sleep(0.02)
                    result[rate] = {"samples": latencies(sent, got)}
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        finally:
            await exchange.close()
        return result

    async def cleanup(self) -> None:
        await self.stop_streamers()
        if self.sim is not None:
            end(self.sim)
        for namespace in self.namespaces:
            try:
                await drop_namespace(self.args.nats, namespace)
            except Exception as exc:  # noqa: BLE001
                print(f"namespace {namespace} not removed: {exc}")
        import psycopg

        with psycopg.connect(self.args.pg, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


async def drop_namespace(url: str, name: str) -> None:
    """The namespace's stream and KV buckets deleted."""
    from framework.scaleout.jetstream import Namespace, connect, remove_namespace

    client = await connect(url, "bench-scale-out-cleanup")
    try:
        await remove_namespace(client.jetstream(), Namespace(name))
    finally:
        await client.close()


def cell(row: dict[str, Any] | None) -> str:
    samples = (row or {}).get("samples")
    return f"{statistics.median(samples):>7.1f} {pct(samples, 0.99):>8.1f}" if samples else f"{'-':>7} {'-':>8}"


def print_table(args: argparse.Namespace, rows: list[tuple[str, dict[str, Any]]], failover: dict[str, Any] | None) -> None:
    slow = f"{args.slow_rate:,.0f}/s"
    print(f"\n{'path (max rate: only fills every process got count)':<58} {'fills/s':>8} {'CPU µs/fill':>15}  "
          f"{'p50 / p99 ms at 1,000/s':>17}  {f'p50 / p99 ms at {slow}':>17}")
    for name, row in rows:
        cpu = f"{row['process_us']:,.0f}" if "process_us" in row else "-"
        if "streamer_us" in row:
            cpu = f"{row['streamer_us']:,.0f} + {cpu}"
        rate = f"{row['rate']:,.0f}" if "rate" in row else "-"
        print(f"{name:<58} {rate:>8} {cpu:>15}  {cell(row.get(1000.0)):>17}  {cell(row.get(args.slow_rate)):>17}")
    print("(CPU µs/fill: the streamer + each strategy process, or the one process, at max rate; latency: the "
          "simulator's send → the strategy callback, or ccxt.pro's watch_my_trades returning the fill)")
    for name, row in rows:
        if not row.get(1000.0, {}).get("stages"):
            continue
        p99 = pct(row[1000.0]["samples"], 0.99)
        print(f"{name}: p99 {p99:.1f} ms at 1,000 fills/s, target ≤ {TARGET_P99_MS:g} ms: "
              f"{'met' if p99 <= TARGET_P99_MS else 'NOT met'}; where the time goes (p50 / p99 ms):")
        for stage in row[1000.0]["stages"]:
            print(f"  {stage:<50} {cell({'samples': row[1000.0]['stages'][stage]}):>17}  "
                  f"{cell({'samples': row[args.slow_rate]['stages'][stage]}):>17}")
    if failover is not None:
        def s(value: float | None) -> str:
            return f"{value:.2f} s" if value is not None else "never"

        print(f"failover (kill -9 the owning streamer, a standby running, {failover['rate']:g} fills/s): the standby "
              f"owns the key after {s(failover['owned'])}, its socket is live after {s(failover['socket'])}; the first "
              f"fill sent after the kill reaches the strategy process after {s(failover['flowing'])}, the first sent "
              f"over the new socket after {s(failover['live'])}, and every fill sent before it (the gap, by backfill) "
              f"has arrived after {s(failover['whole'])}; of {failover['sent']:,} fills "
              f"{failover['missing']} missing, {failover['doubled']} came twice ({failover['redelivered']} marked "
              f"redelivered)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fills", type=int, default=5_000, help="fills per max-rate run (default 5000)")
    parser.add_argument("--latency-fills", type=int, default=5_000, help="fills at 1,000/s (default 5000)")
    parser.add_argument("--slow-rate", type=float, default=100.0,
                        help="a rate every path keeps up with: latency without queueing (default 100 fills/s)")
    parser.add_argument("--slow-fills", type=int, default=500, help="fills at the slow rate (default 500)")
    parser.add_argument("--processes", default="1,4,16", help="strategy process counts (default 1,4,16)")
    parser.add_argument("--failover-rate", type=float, default=200.0, help="fills/s around the kill (default 200)")
    parser.add_argument("--failover-seconds", type=float, default=12.0, help="seconds of fills (default 12)")
    parser.add_argument("--no-compare", action="store_true", help="leave out the one-process and ccxt.pro runs")
    parser.add_argument("--quick", action="store_true", help="2,000 fills at max rate and at 1,000/s, 300 at the slow rate")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--serve-sim", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--strategy-process", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--namespace", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--tmp", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sim:
        await serve_sim(Credentials(**json.loads(os.environ["E2E_CREDENTIALS"])))
        return
    if args.strategy_process:
        await strategy_process(args)
        return
    if args.quick:
        args.fills, args.latency_fills, args.slow_fills, args.failover_seconds = 2_000, 2_000, 300, 10.0
    counts = [int(n) for n in args.processes.split(",")]
    configure_console(os.environ.get("BENCH_LOG_LEVEL", "ERROR"))
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-out-"))
    bench = Bench(args, tmp)
    started = time.monotonic()
    print(f"{KEY} {SYMBOL}; the simulator, the streamers (store: PostgreSQL) and the strategy processes (SQLite "
          f"each) in their own processes; NATS {args.nats}, namespace {bench.namespace}; {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    rows: list[tuple[str, dict[str, Any]]] = []
    failover = None
    try:
        await bench.start_sim()
        if not args.no_compare:
            rows.append(("one process, no NATS (socket → SQLite → strategy)", await bench.direct()))
            print(f"  {rows[-1][0]}: {rows[-1][1]['rate']:,.0f} fills/s", flush=True)
            rows.append(("ccxt.pro, one process (no store)", await bench.ccxt()))
            print(f"  {rows[-1][0]}: {rows[-1][1]['rate']:,.0f} fills/s", flush=True)
        if not args.no_compare:  # the NATS hop alone: a streamer on SQLite (one streamer; failover needs PostgreSQL)
            bench.new_namespace()
            await bench.start_streamer("sQ", f"sqlite:///{tmp / 'streamer.sqlite'}")
            rows.append(("streamer (SQLite) → NATS → 1 strategy process", await bench.nats_group(1, throughput=False)))
            await bench.stop_streamers()
            bench.new_namespace()
        await bench.start_streamer("sA")
        for n in counts:
            row = await bench.nats_group(n)
            name = f"streamer (PostgreSQL) → NATS → {n} strategy process{'es' if n > 1 else ''}"
            rows.append((name, row))
            print(f"  {name}: {row['rate']:,.0f} fills/s ({row['common']:,} of {row['fills']:,} fills reached every "
                  f"process)", flush=True)
        await bench.start_streamer("sB")
        failover = await bench.failover()
        print(f"  failover measured (load {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        await bench.cleanup()
    print_table(args, rows, failover)
    print(f"run took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
