"""The process-level chaos suite: real processes killed, stopped and restarted; the promise must hold.

For each venue a seeded scenario runs the simulator standalone (its own process, filling all along),
tests/chaos/proc_runner.py attached to it (three strategies: fast, slow async, blocking sync) and
PostgreSQL behind a loopback proxy. The runner is killed with SIGKILL at random moments (also during
start-up), stopped with SIGTERM during start-up, restarted after gaps longer than the backfill overlap;
the database goes away (also before a start); one poisoned frame of each kind is sent in the venue's
own wire format. After a final clean run: the store equals the ledger, every fill reached its
strategy (and no other) once — a copy marked redelivered only after a kill —, every poisoned frame is
a dead letter, and the runner's peak RSS stayed bounded. Replay: TRADESYNC_CHAOS_SEED=<seed printed>.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
import uuid
from collections import Counter, defaultdict
from decimal import Decimal
from enum import Enum
from pathlib import Path

import aiohttp
import psycopg
import pytest

from exchanges import get_exchange
from framework.events import ConnectionKey
from framework.store import open_store
from tests.chaos.proc_runner import prefix_for
from tests.chaos.tcp_proxy import TcpProxy
from tests.conftest import make_schema_url

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "tests" / "chaos" / "proc_runner.py"
BASE_SEED = int(os.environ.get("TRADESYNC_CHAOS_SEED", random.SystemRandom().randrange(1 << 30)))
EPISODES = int(os.environ.get("TRADESYNC_PROC_CHAOS_EPISODES", "6"))
OVERLAP_MS = 1000
RATE = 2.5  # orders/s the simulator fills all along (1-3 fills each)
STRATEGIES = "fast,slow:0.05,blocking:0.1"
STRATEGY_IDS = ("fast", "slow", "blocking")
RSS_LIMIT_KB = 400 * 1024
STOP_LIMIT = 40.0  # seconds a SIGTERM'd runner may take to exit
SETTLE_LIMIT = 60.0  # seconds the final clean run may take to store and deliver everything

PAIRS = [
    pytest.param("binance", "spot", "BTC/USDT", 0, id="binance_spot"),
    pytest.param("bybit", "future", "BTC/USDT:USDT", 1, id="bybit_future"),
    pytest.param("hyperliquid", "future", "BTC/USDC:USDC", 2, id="hyperliquid_future"),
]
DAY_MS = 24 * 3600 * 1000
# One poisoned frame of each kind: (kind, amount, time offset or absolute time, how the frame is spoiled).
POISONS = [
    ("timestamp 2**63", "0.010", ("abs", 2**63), None),
    ("negative timestamp", "0.010", ("abs", -1_000), None),
    ("timestamp a day ahead", "0.010", ("ahead", DAY_MS), None),
    ("amount 0", "0", None, None),
    ("amount -1", "-1", None, None),
    ("truncated JSON", "0.010", None, "truncate"),
    ("deeply nested JSON", "0.010", None, "nest"),
]


class Episode(str, Enum):
    KILL_AT_START = "kill -9 during start-up"
    KILL_LIVE = "kill -9 while live"
    TERM_AT_START = "SIGTERM during start-up"
    TERM_LIVE = "SIGTERM while live"


class Runner:
    """One proc_runner process: started, watched for "ready", killed or stopped."""

    def __init__(self, proc: asyncio.subprocess.Process, run: int, err_path: Path) -> None:
        self.proc, self.run, self.err_path = proc, run, err_path
        self.ready = asyncio.Event()
        self.peak_rss_kb = 0
        self._reader = asyncio.create_task(self._read(), name=f"runner-{run}-stdout")

    async def _read(self) -> None:
        async for line in self.proc.stdout:
            if line.strip() == b"ready":
                self.ready.set()

    def sample_rss(self) -> int:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_rss_kb = max(self.peak_rss_kb, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError):
            pass
        return self.peak_rss_kb

    async def wait_ready(self, timeout: float) -> bool:
        """True once it printed "ready"; False if it exited or took longer than `timeout`."""
        exited = asyncio.ensure_future(self.proc.wait())
        ready = asyncio.ensure_future(self.ready.wait())
        await asyncio.wait({exited, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for task in (exited, ready):
            task.cancel()
        await asyncio.gather(exited, ready, return_exceptions=True)
        return self.ready.is_set()

    async def kill(self) -> None:
        self.sample_rss()
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        await self._reader

    async def terminate(self) -> tuple[int | None, float]:
        """SIGTERM; (exit code or None if it did not exit within STOP_LIMIT, seconds taken)."""
        self.sample_rss()
        started = time.monotonic()
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_LIMIT):
                code = await self.proc.wait()
        except TimeoutError:
            await self.kill()
            return None, time.monotonic() - started
        await self._reader
        return code, time.monotonic() - started

    def stderr_tail(self, lines: int = 6) -> str:
        try:
            return " | ".join(self.err_path.read_text(errors="replace").strip().splitlines()[-lines:])
        except FileNotFoundError:
            return ""


class Scenario:
    """Everything one venue's run owns: processes, proxy, files, figures and the problems found."""

    def __init__(self, exchange: str, market: str, symbol: str, seed: int, pg_server: str, tmp: Path) -> None:
        self.exchange, self.market, self.symbol, self.seed = exchange, market, symbol, seed
        self.rng = random.Random(seed)
        self.pg_server = pg_server
        self.tmp = tmp
        self.schema = f"pchaos_{exchange}_{uuid.uuid4().hex[:8]}"
        self.direct_url = make_schema_url(pg_server, self.schema)
        self.proxy = TcpProxy("127.0.0.1", 5432)
        self.sim: asyncio.subprocess.Process | None = None
        self.http: aiohttp.ClientSession | None = None
        self.control = ""
        self.runs = 0
        self.killed_runs: set[int] = set()
        self.kills = self.terms = self.outages = 0
        self.peak_rss_kb = 0
        self.poisons_pending = list(POISONS)
        self.poison_markers: dict[str, str] = {}  # kind -> the trade id inside the poisoned frame
        self.problems: list[str] = []
        self.background: set[asyncio.Task] = set()
        self.timeline: list[str] = []  # what happened to each run, for the failure message

    # processes -----------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.proxy.start()
        state_file = self.tmp / "sim.json"
        with open(self.tmp / "sim.err", "wb") as err:
            self.sim = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "exchanges.simulator", "--port", "0", "--state-file", str(state_file),
                "--exchange", self.exchange, "--seed", str(self.seed), cwd=ROOT,
                stdout=asyncio.subprocess.DEVNULL, stderr=err,
            )
        async with asyncio.timeout(30):
            while not state_file.exists():
                assert self.sim.returncode is None, f"the simulator exited: {(self.tmp / 'sim.err').read_text()}"
                await asyncio.sleep(0.05)
        self.control = json.loads(state_file.read_text())["control"]
        self.http = aiohttp.ClientSession()

    async def close(self) -> None:
        for task in list(self.background):
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        if self.http is not None:
            await self.http.close()
        if self.sim is not None and self.sim.returncode is None:
            self.sim.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(10):
                    await self.sim.wait()
            except TimeoutError:
                self.sim.kill()
                await self.sim.wait()
        await self.proxy.stop()
        with psycopg.connect(self.pg_server, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    async def spawn(self) -> Runner:
        self.runs += 1
        run = self.runs
        err_path = self.tmp / f"runner_{run}.err"
        proxied = make_schema_url(self.pg_server.replace("127.0.0.1:5432", f"127.0.0.1:{self.proxy.port}"),
                                  self.schema)
        with open(err_path, "ab") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(RUNNER), "--store-url", proxied, "--sim-state", str(self.tmp / "sim.json"),
                "--exchange", self.exchange, "--market", self.market, "--symbol", self.symbol,
                "--strategies", STRATEGIES, "--deliveries", str(self.tmp / "deliveries.jsonl"),
                "--log-dir", str(self.tmp / "logs"), "--spool-dir", str(self.tmp / "spool"), "--run", str(run),
                "--overlap-ms", str(OVERLAP_MS), cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=err,
            )
        return Runner(proc, run, err_path)

    def note(self, runner: Runner | None, text: str) -> None:
        self.timeline.append(f"{'run ' + str(runner.run) if runner else 'gap'}: {text}")

    async def kill(self, runner: Runner) -> None:
        self.note(runner, f"kill -9 ({'ready' if runner.ready.is_set() else 'starting'})")
        await runner.kill()
        self.kills += 1
        self.killed_runs.add(runner.run)
        self.peak_rss_kb = max(self.peak_rss_kb, runner.peak_rss_kb)

    async def terminate(self, runner: Runner, when: str) -> None:
        code, took = await runner.terminate()
        self.note(runner, f"SIGTERM ({'ready' if runner.ready.is_set() else 'starting'}) -> exit {code} "
                          f"in {took:.1f}s")
        self.terms += 1
        self.peak_rss_kb = max(self.peak_rss_kb, runner.peak_rss_kb)
        if code is None:
            self.problems.append(f"run {runner.run} ({when}): no exit {STOP_LIMIT:.0f}s after SIGTERM "
                                 f"(killed); stderr: {runner.stderr_tail()}")
            self.killed_runs.add(runner.run)
        elif code != 0:
            self.problems.append(f"run {runner.run} ({when}): SIGTERM exit code {code} after {took:.1f}s; "
                                 f"stderr: {runner.stderr_tail()}")

    # control ---------------------------------------------------------------------------------------------
    async def call(self, path: str, **body) -> dict:
        key = {"exchange": self.exchange, "market": self.market}
        if path in ("ledger", "sessions", "account"):
            async with self.http.get(f"{self.control}/{path}", params=key) as resp:
                resp.raise_for_status()
                return await resp.json()
        async with self.http.post(f"{self.control}/{path}", json={**key, **body}) as resp:
            resp.raise_for_status()
            return await resp.json()

    def outage(self, seconds: float) -> None:
        """The database goes away now for `seconds` (in the background)."""
        self.outages += 1
        self.timeline.append(f"database cut for {seconds:.1f}s")
        self.proxy.cut()

        async def restore() -> None:
            await asyncio.sleep(seconds)
            self.proxy.restore()

        task = asyncio.create_task(restore(), name="pg-restore")
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def poison(self, how_many: int) -> None:
        """Send up to `how_many` pending poisoned frames (needs a subscribed socket to render for)."""
        for _ in range(min(how_many, len(self.poisons_pending))):
            kind, amount, when, spoil = self.poisons_pending[0]
            now = int(time.time() * 1000)
            stamp = None if when is None else when[1] if when[0] == "abs" else now + when[1]
            rendered = await self.call("render_fill", symbol=self.symbol, amount=amount, price="100.5", time=stamp)
            frames = rendered["frames"]
            if not frames:
                return  # nobody subscribed yet: later
            trade_id = rendered["fill"]["trade_id"]
            for frame in frames:
                if "text" not in frame or trade_id not in frame["text"]:
                    continue  # only the frames that carry the fill (an order frame is not poisoned)
                text = frame["text"]
                if spoil == "truncate":
                    text = text[: text.index(trade_id) + len(trade_id) + 1]
                elif spoil == "nest":
                    text = text[:-1] + ',"deep":' + "[" * 100_000 + "]" * 100_000 + "}"
                if (await self.call("inject_raw", text=text))["sockets"] == 0:
                    return
                break
            self.poison_markers[kind] = trade_id
            self.timeline.append(f"poisoned frame: {kind} ({trade_id})")
            self.poisons_pending.pop(0)

    async def live_sockets(self) -> int:
        return (await self.call("sessions"))["subscribed"]


async def _episode(sc: Scenario, episode: Episode, db_down_at_start: bool, mid_outage: bool) -> None:
    rng = sc.rng
    if db_down_at_start:
        sc.outage(rng.uniform(1.5, 4.0))  # cut before the runner starts; restored while it runs
    runner = await sc.spawn()
    sc.note(runner, f"started for '{episode.value}'")
    if episode in (Episode.KILL_AT_START, Episode.TERM_AT_START):
        await asyncio.sleep(rng.uniform(0.3, 1.6))  # imports, store open, spool replay, the catch-up after ready
        if episode is Episode.KILL_AT_START:
            await sc.kill(runner)
        else:
            await sc.terminate(runner, episode.value)
        return
    if not await runner.wait_ready(30):
        sc.problems.append(f"run {runner.run}: not ready (database down at start: {db_down_at_start}); "
                           f"exit code {runner.proc.returncode}; stderr: {runner.stderr_tail()}")
        await sc.kill(runner)
        return
    live_for = rng.uniform(1.5, 4.0)
    deadline = time.monotonic() + live_for
    if mid_outage:
        await asyncio.sleep(rng.uniform(0.2, 0.8))
        sc.outage(rng.uniform(1.0, 2.5))
    for _ in range(20):  # a socket subscribed, then one or two poisoned frames
        if await sc.live_sockets():
            await sc.poison(rng.randint(1, 2))
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    runner.sample_rss()
    if episode is Episode.KILL_LIVE:
        await sc.kill(runner)
    else:
        await sc.terminate(runner, episode.value)


async def _final_run(sc: Scenario) -> dict:
    """A clean run that lets everything settle; returns the ledger it settled against."""
    sc.proxy.restore()
    runner = await sc.spawn()
    if not await runner.wait_ready(30):
        sc.problems.append(f"final run: not ready; exit code {runner.proc.returncode}; "
                           f"stderr: {runner.stderr_tail()}")
    for _ in range(50):
        if not sc.poisons_pending:
            break
        if await sc.live_sockets():
            await sc.poison(len(sc.poisons_pending))
        await asyncio.sleep(0.1)
    await sc.call("autopilot/stop")
    ledger = await sc.call("ledger")
    wanted = {f["trade_id"] for f in ledger["fills"]}
    expected_deliveries = _expected_recipients(sc, ledger["fills"])
    deadline = time.monotonic() + SETTLE_LIMIT
    while time.monotonic() < deadline:
        stored = _stored_ids(sc)
        delivered = _delivered_pairs(sc)
        if wanted <= stored and expected_deliveries <= delivered:
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(1.0)  # let anything doubled arrive too
    await sc.terminate(runner, "final clean stop")
    return ledger


def _expected_recipients(sc: Scenario, fills: list[dict]) -> set[tuple[str, str]]:
    """(strategy, trade_id) pairs that must be delivered: the owner, or every strategy for an unowned fill."""
    pairs = set()
    for fill in fills:
        for strategy in _recipients(sc, fill):
            pairs.add((strategy, fill["trade_id"]))
    return pairs


def _recipients(sc: Scenario, fill: dict) -> tuple[str, ...]:
    coid = fill.get("client_order_id")
    if coid:
        for strategy in STRATEGY_IDS:
            if coid.startswith(prefix_for(sc.exchange, strategy)):
                return (strategy,)
    return STRATEGY_IDS  # no owner: every strategy on the symbol


def _stored_ids(sc: Scenario) -> set[str]:
    try:
        with psycopg.connect(sc.pg_server, connect_timeout=3) as conn:
            rows = conn.execute(
                f'SELECT trade_id FROM "{sc.schema}".trades WHERE exchange = %s AND market = %s',
                (sc.exchange, sc.market),
            ).fetchall()
        return {r[0] for r in rows}
    except psycopg.Error:
        return set()


def _deliveries(sc: Scenario) -> list[dict]:
    path = sc.tmp / "deliveries.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a line cut by kill -9 mid-write (one write(2) each, so this should not happen)
    return out


def _delivered_pairs(sc: Scenario) -> set[tuple[str, str]]:
    return {(d["strategy"], d["trade_id"]) for d in _deliveries(sc)}


def _short(ids, limit: int = 8) -> str:
    ids = sorted(ids)
    return f"{len(ids)} {ids[:limit]}{'…' if len(ids) > limit else ''}"


def _same(expected, got) -> bool:
    if expected is None or got is None:
        return expected is None and got is None
    if isinstance(got, Decimal):
        return Decimal(str(expected)) == got
    if hasattr(got, "value"):
        return str(expected) == str(got.value)
    if isinstance(got, int) and not isinstance(got, bool):
        return int(expected) == got
    return expected == got


def _check_account(sc: Scenario, account: dict, balances: list, positions: list) -> None:
    """Every balance and position the simulator's account holds is the store's latest state, exactly."""
    stored_b = {b.asset: b for b in balances}
    for asset, held in account["balances"].items():
        got = stored_b.get(asset)
        want = tuple(Decimal(held[k]) for k in ("free", "locked", "total"))
        if got is None or (got.free, got.locked, got.total) != want:
            sc.problems.append(f"balance {asset}: store {got and (got.free, got.locked, got.total)} ≠ venue {want}")
    stored_p = {p.symbol: p for p in positions}
    for symbol, held in account["positions"].items():
        got = stored_p.get(symbol)
        size = Decimal(held["size"])
        if (got.signed_size if got is not None else None) != size and not (got is None and size == 0):
            sc.problems.append(f"position {symbol}: store {got and got.signed_size} ≠ venue {size}")


async def _check(sc: Scenario, ledger: dict) -> dict:
    figures: dict = {}
    store = open_store(sc.direct_url)
    await store.start()
    try:
        key = ConnectionKey(exchange=sc.exchange, market=sc.market, account="default")
        trades = await store.fetch_trades(key)
        letters = await store.fetch_dead_letters()
        balances = await store.fetch_balances(key)
        positions = await store.fetch_positions(key)
    finally:
        await store.stop()
    if get_exchange(sc.exchange).account is not None:  # the store's account must be the venue's at the end
        account = await sc.call("account")
        _check_account(sc, account, balances, positions)
    fills = {f["trade_id"]: f for f in ledger["fills"]}
    expected = {f["trade_id"]: e for f, e in zip(ledger["fills"], ledger["expected"])}
    counts = Counter(t.trade_id for t in trades)
    missing = set(fills) - set(counts)
    extra = set(counts) - set(fills)
    doubled = {t for t, n in counts.items() if n > 1}
    for name, ids in (("missing from the store", missing), ("in the store but not the ledger", extra),
                      ("stored twice", doubled)):
        if ids:
            sc.problems.append(f"fills {name}: {_short(ids)}")
    differs = []
    for trade in trades:
        if trade.trade_id in expected:
            bad = [f"{k}={getattr(trade, k)!r}≠{v!r}" for k, v in expected[trade.trade_id].items()
                   if not _same(v, getattr(trade, k))]
            if bad:
                differs.append(f"{trade.trade_id} ({trade.source.value}): {', '.join(bad)}")
    if differs:
        sc.problems.append(f"{len(differs)} stored fills differ from the ledger: {differs[:5]}")

    deliveries = _deliveries(sc)
    by_pair: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for d in deliveries:
        by_pair[(d["strategy"], d["trade_id"])].append(d)
    wanted = _expected_recipients(sc, list(fills.values()))
    lost = {f"{s}:{t}" for s, t in wanted if not by_pair.get((s, t))}
    twice = {f"{s}:{t}" for (s, t), ds in by_pair.items() if sum(not d["redelivered"] for d in ds) > 1}
    misrouted = {f"{s}:{t}" for (s, t) in by_pair if (s, t) not in wanted and t in fills}
    unknown = {f"{s}:{t}" for (s, t) in by_pair if t not in fills}
    bad_redelivery = {f"{d['strategy']}:{d['trade_id']}@run{d['run']}" for d in deliveries
                      if d["redelivered"] and not any(k < d["run"] for k in sc.killed_runs)}
    for name, ids in (("never delivered to their strategy", lost), ("delivered twice unmarked", twice),
                      ("delivered to a strategy that does not own them", misrouted),
                      ("delivered but not fills of the ledger", unknown),
                      ("marked redelivered with no kill before", bad_redelivery)):
        if ids:
            sc.problems.append(f"deliveries {name}: {_short(ids)}")

    raws = [str(letter.get("raw") or "") for letter in letters]
    for kind, marker in sc.poison_markers.items():
        if not any(marker in raw for raw in raws):
            sc.problems.append(f"poisoned frame '{kind}' (trade id {marker}) is not in dead_letters")
    if sc.poisons_pending:
        sc.problems.append(f"poisoned frames never sent (no subscribed socket): {[p[0] for p in sc.poisons_pending]}")
    if sc.peak_rss_kb > RSS_LIMIT_KB:
        sc.problems.append(f"runner peak RSS {sc.peak_rss_kb // 1024} MB > {RSS_LIMIT_KB // 1024} MB")

    figures.update(
        fills=len(fills), owned=sum(1 for f in fills.values() if f.get("client_order_id")), kills=sc.kills,
        sigterms=sc.terms, restarts=sc.runs - 1, outages=sc.outages, dead_letters=len(letters),
        poisoned=len(sc.poison_markers), deliveries=len(deliveries),
        redeliveries=sum(d["redelivered"] for d in deliveries),
        owner_unknown=sum(d["owner_unknown"] for d in deliveries),
        by_source=dict(Counter(t.source.value for t in trades)), peak_rss_mb=sc.peak_rss_kb // 1024,
    )
    return figures


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("exchange, market, symbol, index", PAIRS)
async def test_promise_holds_across_kills_restarts_outages_and_poisoned_frames(
    exchange, market, symbol, index, pg_server, tmp_path
):
    seed = BASE_SEED + index
    print(f"\nprocess chaos seed for {exchange}_{market}: {seed} (replay: TRADESYNC_CHAOS_SEED={BASE_SEED})")
    sc = Scenario(exchange, market, symbol, seed, pg_server, tmp_path)
    started = time.monotonic()
    try:
        await sc.start()
        prefixes = [prefix_for(exchange, s) for s in STRATEGY_IDS] + [None]
        await sc.call("autopilot/start", symbol=symbol, rate=RATE, client_order_id_prefixes=prefixes)
        episodes = [Episode.KILL_AT_START, Episode.TERM_AT_START, Episode.KILL_LIVE, Episode.TERM_LIVE]
        episodes += [sc.rng.choice(list(Episode)) for _ in range(max(0, EPISODES - len(episodes)))]
        sc.rng.shuffle(episodes)
        db_at_start = sc.rng.randrange(len(episodes))  # at least one start with the database down
        live = [i for i, e in enumerate(episodes) if e in (Episode.KILL_LIVE, Episode.TERM_LIVE)]
        mid = sc.rng.choice(live)  # at least one outage while running
        for i, episode in enumerate(episodes):
            down = i == db_at_start or sc.rng.random() < 0.15
            await _episode(sc, episode, down, i == mid or sc.rng.random() < 0.2)
            await asyncio.sleep(sc.rng.uniform(1.5, 3.0) * OVERLAP_MS / 1000)  # the gap: fills go on meanwhile
        ledger = await _final_run(sc)
        figures = await _check(sc, ledger)
    finally:
        await sc.close()
    figures["seconds"] = round(time.monotonic() - started, 1)
    print(f"process chaos {exchange}_{market} seed {seed}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    assert not sc.problems, (
        f"seed {seed} (replay: TRADESYNC_CHAOS_SEED={BASE_SEED}) {exchange}_{market}:\n  "
        + "\n  ".join(sc.problems) + f"\n  figures: {figures}\n  timeline: " + "; ".join(sc.timeline)
    )
