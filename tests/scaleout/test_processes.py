"""Scale-out with real processes (issue 13): streamers (`python -m framework.scaleout.cli`, one PostgreSQL store)
and strategy processes (tests/scaleout/strategy_proc.py) on the machine's NATS, against a simulator in this test.

- Failover: the owning streamer is killed with SIGKILL mid-stream; the standby owns the key within the lease and
  one round of its lease loop (the figure is printed), the simulator never sees two private sockets on the key at once, the store equals the
  simulator's ledger and every strategy got each of its fills once.
- 20 strategies in 4 processes on one account: one private socket, one listenKey; every fill reaches its owner
  (an unowned one every strategy on the symbol) once, and the store once.
- A strategy process killed with SIGKILL mid-stream and started again under its name resumes from its durable
  position at once (not after the server's ack wait): nothing missing; a repeat only marked redelivered.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import attrs
import pytest

from exchanges import get_exchange
from exchanges.connector import env_var
from exchanges.simulator import Simulator
from exchanges.simulator.venues.binance import BinanceSim
from framework.events import ConnectionKey
from framework.scaleout.jetstream import LEASE_SECONDS, Namespace, connect, token
from framework.store import open_store
from tests.scaleout.strategy_proc import deliveries_path

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "tests" / "scaleout" / "strategy_proc.py"
EXCHANGE, MARKET, SYMBOL = "binance", "future", "BTC/USDT:USDT"  # USD-M: a listenKey per private socket
KEY = ConnectionKey.parse(f"{EXCHANGE}_{MARKET}")
RATE = 30.0  # orders/s the simulator fills (1-3 fills each)
UNOWNED = [None, "zz"]  # orders without a client id, and with one no strategy owns
START_LIMIT = 20.0  # seconds a process may take to say it is up
SETTLE_LIMIT = 30.0  # seconds everything may take to reach the store and every strategy after the last fill
# Seconds past the lease a standby may take to own the key: the lease runs out at most one lease after the owner's
# last renewal (before the kill), and the standby, which sees every renewal, tries the moment it runs out; this is
# slack for the server's expiry timer and a loaded machine.
FAILOVER_MARGIN = 0.5


class Proc:
    """One child process: its stdout watched for the line that says it is up."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str, err: Path, up: Callable[[str], bool]) -> None:
        self.proc, self.name, self.err = proc, name, err
        self.up = asyncio.Event()
        self._is_up = up
        self._reader = asyncio.create_task(self._read(), name=f"stdout-{name}")

    async def _read(self) -> None:
        async for line in self.proc.stdout:
            if self._is_up(line.decode(errors="replace")):
                self.up.set()

    async def wait_up(self) -> None:
        exited = asyncio.ensure_future(self.proc.wait())
        up = asyncio.ensure_future(self.up.wait())
        await asyncio.wait({exited, up}, timeout=START_LIMIT, return_when=asyncio.FIRST_COMPLETED)
        for task in (exited, up):
            task.cancel()
        assert self.up.is_set(), f"{self.name} not up (exit code {self.proc.returncode}): {self.stderr_tail()}"

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        await self._reader

    async def terminate(self, limit: float = 20.0) -> int | None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(limit):
                code = await self.proc.wait()
        except TimeoutError:
            await self.kill()
            return None
        await self._reader
        return code

    def stderr_tail(self, lines: int = 8) -> str:
        try:
            return " | ".join(self.err.read_text(errors="replace").strip().splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def _private(session) -> bool:
    return not session.public and not session.state.get("trading")


@attrs.define
class SocketWatch:
    """The simulator's private sockets on the key, looked at every few ms: the most ever open at once, when
    each opened, and every listenKey it held."""

    sim: Simulator
    peak: int = 0
    opened: list[tuple[float, int]] = attrs.field(factory=list)  # (monotonic, id of the session)
    listen_keys: set[str] = attrs.field(factory=set)
    task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="socket-watch")

    async def _run(self) -> None:
        seen: set[int] = set()
        venue = self.sim.venue(EXCHANGE)
        while True:
            private = [s for s in self.sim.sessions(EXCHANGE, MARKET) if _private(s)]
            self.peak = max(self.peak, len(private))
            for session in private:
                if id(session) not in seen:
                    seen.add(id(session))
                    self.opened.append((time.monotonic(), id(session)))
            self.listen_keys |= set(venue.listen_keys)
            await asyncio.sleep(0.003)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


class Cluster:
    """Everything one test runs: the simulator, streamers and strategy processes, a NATS client to look."""

    def __init__(self, nats_url: str, namespace: str, pg_url: str, tmp: Path) -> None:
        self.nats_url, self.ns, self.pg_url, self.tmp = nats_url, Namespace(namespace), pg_url, tmp
        self.sim = Simulator(exchanges=[EXCHANGE])
        self.procs: list[Proc] = []
        self.strategies: dict[str, list[str]] = {}  # process -> its strategy ids
        self.runs: dict[str, int] = {}
        self.client = None
        self.watch = SocketWatch(self.sim)
        self.env: dict[str, str] = {}
        self.store = None
        self.listen_key_posts: list[float] = []
        self.settled_in = 0.0

    async def start(self) -> None:
        await self.sim.start()
        credentials = attrs.asdict(self.sim.credentials_for(EXCHANGE))
        self.env = {**os.environ, **{env_var(EXCHANGE, "default", field): credentials[field]
                                     for field in get_exchange(EXCHANGE).credentials_required}}
        self.client = await connect(self.nats_url, "tradesync-test-processes")
        self.watch.start()
        (self.tmp / "out").mkdir()

    async def close(self) -> None:
        await asyncio.gather(*(p.kill() for p in self.procs), return_exceptions=True)
        await self.watch.stop()
        await self.sim.stop()
        if self.store is not None:
            await self.store.stop()
        if self.client is not None:
            await self.client.close()

    async def _spawn(self, name: str, argv: list[str], up: Callable[[str], bool]) -> Proc:
        err = self.tmp / f"{name}.err"
        with open(err, "ab") as stderr:
            proc = await asyncio.create_subprocess_exec(sys.executable, *argv, cwd=ROOT, env=self.env,
                                                        stdout=asyncio.subprocess.PIPE, stderr=stderr)
        handle = Proc(proc, name, err, up)
        self.procs.append(handle)
        return handle

    async def streamer(self, name: str) -> Proc:
        proc = await self._spawn(name, [
            "-m", "framework.scaleout.cli", "--nats", self.nats_url, "--db", self.pg_url, "--namespace", self.ns.name,
            "--name", name, "--sim-url", self.sim.base_url, "--log-dir", str(self.tmp / f"logs-{name}"),
            "--status-every", "0"], lambda line: line.startswith("tradesync-streamer"))
        await proc.wait_up()
        return proc

    async def strategy_process(self, name: str, strategies: list[str]) -> Proc:
        self.strategies[name] = strategies
        run = self.runs[name] = self.runs.get(name, -1) + 1
        proc = await self._spawn(f"{name}-run{run}", [
            str(HARNESS), "--nats", self.nats_url, "--namespace", self.ns.name, "--name", name,
            "--sim-url", self.sim.base_url, "--exchange", EXCHANGE, "--market", MARKET, "--symbol", SYMBOL,
            "--strategies", ",".join(strategies), "--out-dir", str(self.tmp / "out"),
            "--store-url", f"sqlite:///{self.tmp / name}.sqlite", "--log-dir", str(self.tmp / f"logs-{name}"),
            "--run", str(run)], lambda line: line.strip() == "ready")
        return proc

    # what NATS says -------------------------------------------------------------------------------------------
    async def _entry(self, bucket: str, entry: str) -> dict | None:
        try:
            kv = await self.client.jetstream().key_value(bucket)
            found = await kv.get(entry)
        except Exception:  # noqa: BLE001 - no bucket yet, no entry, expired
            return None
        return json.loads(found.value) if found.value else None

    async def owner(self) -> str | None:
        record = await self._entry(self.ns.owners_bucket, token(KEY))
        return record["streamer"] if record else None

    async def interest_complete(self) -> bool:
        """Every process's interest names all its strategies (their prefixes are known to the others)."""
        for process, strategies in self.strategies.items():
            record = await self._entry(self.ns.interest_bucket, f"{token(KEY)}.{process}")
            if record is None or set(record.get("strategies") or ()) != set(strategies):
                return False
        return True

    async def until(self, what: str, check, limit: float = START_LIMIT) -> None:
        deadline = time.monotonic() + limit
        while not await check():
            assert time.monotonic() < deadline, f"not within {limit:g} s: {what}; " + self.tails()
            await asyncio.sleep(0.05)

    def tails(self) -> str:
        return "; ".join(f"{p.name} (exit {p.proc.returncode}): {p.stderr_tail(4)}" for p in self.procs)

    async def ready_to_fill(self) -> None:
        """Every process up, one streamer owning the key with its socket open, every strategy declared."""
        await asyncio.gather(*(p.wait_up() for p in self.procs))

        async def ready() -> bool:
            return (await self.owner() is not None and await self.interest_complete()
                    and sum(_private(s) for s in self.sim.sessions(EXCHANGE, MARKET)) == 1)

        await self.until("the key owned, its socket open and every strategy declared", ready)
        await asyncio.sleep(0.3)  # the other processes' prefix watchers have seen the declarations

    def autopilot(self) -> None:
        prefixes = [sid for strategies in self.strategies.values() for sid in strategies] + UNOWNED
        self.sim.autopilot(EXCHANGE, MARKET, SYMBOL, rate=RATE, client_order_id_prefixes=prefixes)

    # outcomes ------------------------------------------------------------------------------------------------
    def ledger(self) -> dict[tuple[str, str], str | None]:
        """(trade id, order id) -> client order id of every fill the simulator made."""
        return {(f.trade_id, f.order_id): f.client_order_id for f in self.sim.ledger(EXCHANGE, MARKET).fills}

    async def stored(self) -> Counter:
        if self.store is None:
            self.store = open_store(self.pg_url)
            await self.store.start()
        return Counter((t.trade_id, t.order_id) for t in await self.store.fetch_trades(KEY))

    def deliveries(self) -> dict[str, list[dict]]:
        """strategy -> every line it wrote, in order."""
        out: dict[str, list[dict]] = {}
        for process, strategies in self.strategies.items():
            for sid in strategies:
                path = deliveries_path(self.tmp / "out", process, sid)
                lines = path.read_text().splitlines() if path.exists() else []
                out[sid] = [json.loads(line) for line in lines if line.strip()]
        return out

    def expected(self, ledger: dict) -> dict[str, set[tuple[str, str]]]:
        """strategy -> the fills it must get: those its prefix owns, and every unowned one (all on the symbol)."""
        every = [sid for strategies in self.strategies.values() for sid in strategies]
        out: dict[str, set] = {sid: set() for sid in every}
        for fill, coid in ledger.items():
            owner = next((sid for sid in every if coid and coid.startswith(sid)), None)
            for sid in [owner] if owner else every:
                out[sid].add(fill)
        return out

    async def settle(self) -> None:
        """After the last fill: wait until the store and every strategy hold everything, then a little more
        (anything doubled would arrive too)."""
        await self.sim.stop_autopilots()
        ledger = self.ledger()
        expected = self.expected(ledger)

        async def settled() -> bool:
            if set(await self.stored()) < set(ledger):
                return False
            got = self.deliveries()
            return all(want <= {(d["key"][4], d["key"][5]) for d in got[sid]} for sid, want in expected.items())

        started = time.monotonic()
        await self.until("the store and every strategy hold every fill", settled, SETTLE_LIMIT)
        self.settled_in = time.monotonic() - started
        await asyncio.sleep(1.0)

    async def check(self, *, killed: frozenset[str] = frozenset()) -> dict:
        """The store equals the ledger; each strategy got exactly its fills, each once — a repeat only marked
        redelivered, and only in a process that was killed. Returns the figures."""
        ledger = self.ledger()
        stored = await self.stored()
        missing = set(ledger) - set(stored)
        extra = set(stored) - set(ledger)
        doubled = {k for k, n in stored.items() if n > 1}
        assert not (missing or extra or doubled), (
            f"store vs ledger ({len(ledger)} fills): missing {sorted(missing)[:5]} ({len(missing)}), not in the "
            f"ledger {sorted(extra)[:5]} ({len(extra)}), stored twice {sorted(doubled)[:5]} ({len(doubled)})")
        expected = self.expected(ledger)
        got = self.deliveries()
        process_of = {sid: process for process, strategies in self.strategies.items() for sid in strategies}
        repeats = 0
        problems = []
        for sid, want in expected.items():
            counts = Counter((d["key"][4], d["key"][5]) for d in got[sid])
            lacking = want - set(counts)
            foreign = set(counts) - want
            if lacking:
                problems.append(f"{sid} lacks {len(lacking)} of its {len(want)} fills, e.g. {sorted(lacking)[:3]}")
            if foreign:
                problems.append(f"{sid} got {len(foreign)} fills it does not own, e.g. {sorted(foreign)[:3]}")
            seen: set = set()
            for d in got[sid]:
                fill = (d["key"][4], d["key"][5])
                if fill in seen:
                    repeats += 1
                    if not d["redelivered"]:
                        problems.append(f"{sid} got {fill} again (run {d['run']}), not marked redelivered")
                    elif process_of[sid] not in killed:
                        problems.append(f"{sid} got {fill} again (marked redelivered) though {process_of[sid]} "
                                        "was never killed")
                seen.add(fill)
        assert not problems, f"{len(problems)} problems: " + "; ".join(problems[:10])
        return {"fills": len(ledger), "settled_s": round(self.settled_in, 2),
                "deliveries": sum(len(v) for v in got.values()), "repeats_marked_redelivered": repeats}

    async def stop_all(self) -> None:
        """SIGTERM every process still running; each exits 0."""
        live = [p for p in self.procs if p.proc.returncode is None]
        codes = await asyncio.gather(*(p.terminate() for p in live))
        bad = [f"{p.name}: exit {code}; {p.stderr_tail()}" for p, code in zip(live, codes) if code != 0]
        assert not bad, "; ".join(bad)


@pytest.fixture
async def cluster(nats_url, namespace, pg_url, tmp_path, monkeypatch):
    made = Cluster(nats_url, namespace, pg_url, tmp_path)
    original = BinanceSim._listen_key

    async def counting(venue, sim, market, request):  # every listenKey asked for (POST), whoever asks
        if request.method == "POST":
            made.listen_key_posts.append(time.monotonic())
        return await original(venue, sim, market, request)

    monkeypatch.setattr(BinanceSim, "_listen_key", counting)  # before the simulator starts: its routes take it
    await made.start()
    try:
        yield made
    finally:
        await made.close()


@pytest.mark.timeout(90)
async def test_failover_the_standby_owns_the_key_within_the_lease_and_nothing_is_lost_or_doubled(cluster):
    one, two = await asyncio.gather(cluster.streamer("s-one"), cluster.streamer("s-two"))
    await cluster.strategy_process("p1", ["st01", "st02", "st03"])
    await cluster.strategy_process("p2", ["st04", "st05"])
    await cluster.ready_to_fill()
    first = await cluster.owner()
    owning, standby = (one, "s-two") if first == "s-one" else (two, "s-one")
    cluster.autopilot()
    await asyncio.sleep(3.0)

    killed_at = time.monotonic()
    await owning.kill()
    while await cluster.owner() != standby:
        assert time.monotonic() - killed_at < LEASE_SECONDS * 4, f"{standby} never took the key; {cluster.tails()}"
        await asyncio.sleep(0.01)
    owned_after = time.monotonic() - killed_at
    while not [t for t, _ in cluster.watch.opened if t > killed_at]:
        assert time.monotonic() - killed_at < LEASE_SECONDS * 4, f"{standby} never opened the socket"
        await asyncio.sleep(0.01)
    socket_after = min(t for t, _ in cluster.watch.opened if t > killed_at) - killed_at
    print(f"\nfailover: {standby} owned the key {owned_after:.2f} s after kill -9 of {first} (lease "
          f"{LEASE_SECONDS:g} s), its socket open after {socket_after:.2f} s")
    await asyncio.sleep(3.0)

    await cluster.settle()
    figures = await cluster.check()
    print(f"failover: {figures}; at most {cluster.watch.peak} private socket(s) at once")
    assert owned_after <= LEASE_SECONDS + FAILOVER_MARGIN, f"the standby took {owned_after:.2f} s to own the key"
    assert cluster.watch.peak == 1, f"the simulator saw {cluster.watch.peak} private sockets on the key at once"
    assert len(cluster.watch.opened) == 2, f"{len(cluster.watch.opened)} private sockets opened (one per owner)"
    await cluster.stop_all()


@pytest.mark.timeout(90)
async def test_twenty_strategies_in_four_processes_share_one_socket_and_one_listen_key(cluster):
    await cluster.streamer("s-one")
    for n in range(4):
        await cluster.strategy_process(f"p{n + 1}", [f"st{5 * n + k + 1:02d}" for k in range(5)])
    await cluster.ready_to_fill()
    cluster.autopilot()
    await asyncio.sleep(5.0)
    await cluster.settle()
    figures = await cluster.check()
    print(f"\n20 strategies in 4 processes: {figures}; private sockets at once at most {cluster.watch.peak}, "
          f"opened {len(cluster.watch.opened)}; listenKeys {len(cluster.watch.listen_keys)}, "
          f"asked for {len(cluster.listen_key_posts)} times")
    assert cluster.watch.peak == 1 and len(cluster.watch.opened) == 1, "more than one private socket on the key"
    assert len(cluster.listen_key_posts) == 1 and len(cluster.watch.listen_keys) == 1, (
        f"listenKeys asked for {len(cluster.listen_key_posts)} times, {len(cluster.watch.listen_keys)} issued")
    await cluster.stop_all()


@pytest.mark.timeout(90)
async def test_a_strategy_process_killed_and_started_again_resumes_from_its_durable_position(cluster):
    await cluster.streamer("s-one")
    victim = await cluster.strategy_process("p1", ["st01", "st02", "st03"])
    await cluster.strategy_process("p2", ["st04", "st05"])
    await cluster.ready_to_fill()
    cluster.autopilot()
    await asyncio.sleep(2.5)
    await victim.kill()
    await asyncio.sleep(1.0)  # fills go on; p1's durable consumer keeps them
    again = await cluster.strategy_process("p1", ["st01", "st02", "st03"])
    await again.wait_up()
    await asyncio.sleep(2.5)
    await cluster.settle()
    figures = await cluster.check(killed=frozenset({"p1"}))
    print(f"\nstrategy process restarted: {figures}")
    # Resumed at once: what the killed run had fetched and not acknowledged did not wait for the server's ack wait.
    assert cluster.settled_in < 10.0, f"the restarted process got everything only {cluster.settled_in:.1f} s later"
    assert cluster.watch.peak == 1
    await cluster.stop_all()
