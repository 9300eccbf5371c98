"""Leases and faults of scale-out (issue 13), in one process against the machine's NATS: streamers racing for a
key never both hold its socket whatever the start / crash / stop schedule, a key nobody wants is let go, and NATS
lost while running loses nothing (the streamer keeps the socket and the store; the strategy side is degraded, then
resumes from its durable position).

Each streamer is a "host" of its own: proxies in front of the simulator, the store (PostgreSQL, shared) and NATS,
so a crash cuts its sockets as a kill -9 does (`Streamer.abandon()` then ends what is left in this process)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from nats.js.errors import KeyDeletedError, KeyNotFoundError

from exchanges.connector import ExchangeConnector
from exchanges.simulator import Simulator
from framework.events import ConnectionKey
from framework.pool import ConnectionPool
from framework.scaleout.jetstream import Namespace, connect, token
from framework.scaleout.remote import INTEREST_TTL, ScaleOut
from framework.scaleout.streamer import Streamer
from framework.store import open_store
from framework.strategy import BaseStrategy
from framework.venue import Endpoints
from tests.chaos.tcp_proxy import TcpProxy
from tests.conftest import make_schema_url
from tests.scaleout.conftest import drop_namespace

KEY = ConnectionKey.parse("bybit_spot")
SYMBOL = "BTC/USDT"
RATE = 40.0  # simulator fills per second while a scenario runs
OWNED_WITHIN = 8.0  # seconds a schedule waits for an owner to crash or stop
SETTLE = 15.0  # seconds the store and the strategy may take to hold every fill once the venue stops


class Collector(BaseStrategy):
    def on_start(self) -> None:
        self.fills = []

    def on_trade(self, trade) -> None:
        self.fills.append(trade)


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.replace(f":{parts.port}", f":{port}")).geturl()


class Host:
    """One streamer as if on a machine of its own: its proxies to the simulator, the store and NATS."""

    def __init__(self, world: World, name: str) -> None:
        self.world = world
        self.name = name
        self.proxies = {"sim": TcpProxy("127.0.0.1", world.sim.port), "pg": TcpProxy("127.0.0.1", 5432),
                        "nats": TcpProxy("127.0.0.1", urlsplit(world.nats_url).port)}
        self.streamer: Streamer | None = None
        self.state = "starting"
        self.wanted_up = True  # what the schedule made of it (its actions run later, in order)
        self.left: float | None = None  # when it crashed or stopped (epoch seconds, as leases say)
        self.started = asyncio.Event()
        self.ready: float | None = None  # when its start() returned (epoch seconds)
        self.owned_when_leaving = False

    async def start(self) -> None:
        for proxy in self.proxies.values():
            await proxy.start()
        sim = self.proxies["sim"].port
        credentials = self.world.sim.credentials_for(KEY.exchange)

        def connector_for(key: ConnectionKey):
            prefix = f"127.0.0.1:{sim}/{key.exchange}_{key.market.value}"
            return ExchangeConnector(key.exchange, key.market, credentials=credentials,
                                     endpoints=Endpoints(ws=f"ws://{prefix}", rest=f"http://{prefix}"))

        where = self.world.tmp / self.name
        pool = ConnectionPool(_with_port(self.world.pg_url, self.proxies["pg"].port), where / "logs",
                              spool_dir=where / "spool")
        self.streamer = Streamer(_with_port(self.world.nats_url, self.proxies["nats"].port), pool, connector_for,
                                 name=self.name, namespace=self.world.ns)
        try:
            await self.streamer.start()
            self.state = "running"
            self.ready = time.time()
        finally:
            self.started.set()

    def owns(self) -> bool:
        return self.state == "running" and str(KEY) in self.streamer.status()["owned"]

    async def crash(self) -> None:
        await self.started.wait()  # killed once started (leases are taken after start() returns)
        self.owned_when_leaving = self.owns()
        self.state = "dead"
        self.left = time.time()
        for proxy in self.proxies.values():
            proxy.cut()  # every socket of the "machine" dies at once, as at a kill -9
        await self.streamer.abandon()

    async def stop(self) -> None:
        await self.started.wait()
        self.owned_when_leaving = self.owns()
        self.state = "stopping"
        await self.streamer.stop(timeout=5.0)
        self.state = "stopped"
        self.left = time.time()

    async def close(self) -> None:
        """Free what is left in this process: a crashed streamer's pool (its store reachable again so it stops
        at once; the venue and NATS stay cut)."""
        if self.state in ("running", "stopping"):
            await self.crash()
        if self.state == "dead":
            self.proxies["pg"].restore()
            try:
                await asyncio.wait_for(self.streamer.pool.stop(timeout=2.0), 10)
            except TimeoutError:
                pass
        for proxy in self.proxies.values():
            await proxy.stop()


class World:
    """A simulator, a namespace, a store schema, and one strategy process (its own SQLite store) wanting KEY;
    a monitor reads the simulator's open private sockets of KEY every 2 ms."""

    def __init__(self, nats_url: str, pg_server: str, tmp: Path) -> None:
        self.nats_url = nats_url
        self.pg_server = pg_server
        self.schema = f"t_{uuid.uuid4().hex[:12]}"
        self.pg_url = make_schema_url(pg_server, self.schema)
        self.ns = f"t{uuid.uuid4().hex[:10]}"
        self.tmp = tmp / self.ns
        self.sim = Simulator(exchanges=[KEY.exchange])
        self.hosts: list[Host] = []
        self.most_sockets = 0
        self.samples = 0
        self.strategy_nats: TcpProxy | None = None
        self._monitor: asyncio.Task | None = None

    async def __aenter__(self) -> World:
        await self.sim.start()
        self._monitor = asyncio.create_task(self._watch(), name="socket-monitor")
        self.strategy_nats = TcpProxy("127.0.0.1", urlsplit(self.nats_url).port)
        await self.strategy_nats.start()
        self.so = ScaleOut(_with_port(self.nats_url, self.strategy_nats.port), "proc-a", self.ns)
        await self.so.start()
        self.pool = ConnectionPool(f"sqlite:///{self.tmp / 'proc-a.sqlite'}", self.tmp / "proc-a-logs")
        self.strategy = Collector("a", [self.so.connector(self.sim.connector(KEY.exchange, KEY.market))],
                                  symbols=[SYMBOL], pool=self.pool)
        await self.strategy.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.sim.stop_autopilots()
        try:
            await asyncio.wait_for(self.strategy.stop(), 10)
            await asyncio.wait_for(self.pool.stop(), 10)
            await asyncio.wait_for(self.so.stop(), 10)
        finally:
            self._monitor.cancel()
            await asyncio.gather(self._monitor, return_exceptions=True)
            await asyncio.gather(*(host.close() for host in self.hosts), return_exceptions=True)
            await self.strategy_nats.stop()
            await self.sim.stop()
            await drop_namespace(self.nats_url, self.ns)
            with psycopg.connect(self.pg_server, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def sockets(self) -> int:
        return len(self.private_sessions())

    async def _watch(self) -> None:
        while True:
            self.most_sockets = max(self.most_sockets, self.sockets())
            self.samples += 1
            await asyncio.sleep(0.002)

    def host(self, name: str) -> Host:
        host = Host(self, name)
        self.hosts.append(host)
        return host

    async def owner(self) -> str | None:
        """The streamer the owners bucket names for KEY now, read afresh (None: nobody)."""
        client = await connect(self.nats_url, "tradesync-test-reader")
        try:
            owners = await client.jetstream().key_value(Namespace(self.ns).owners_bucket)
            try:
                entry = await owners.get(token(KEY))
            except (KeyNotFoundError, KeyDeletedError):  # never taken, released or expired
                return None
            return json.loads(entry.value)["streamer"] if entry.value else None
        finally:
            await client.close()

    async def released(self, host: Host) -> None:
        """The streamer lets the key go as it closes its socket (the socket is gone first)."""
        await _until(lambda: host.streamer.status()["owned"] == {}, 2.0, "the streamer still holds the key")
        assert await self.owner() is None, "the lease was not released"

    def owners(self) -> list[Host]:
        return [h for h in self.hosts if h.owns()]

    async def owned_within(self, seconds: float, among: list[Host] | None = None) -> Host:
        deadline = time.monotonic() + seconds
        while True:
            owners = [h for h in self.owners() if among is None or h in among]
            if owners and self.sockets() == 1:
                return owners[0]
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        raise AssertionError(f"nobody owns {KEY} {seconds:g} s on: owners {[h.name for h in self.owners()]}, "
                             f"{self.sockets()} socket(s), hosts {[(h.name, h.state) for h in self.hosts]}")

    def private_sessions(self) -> list:
        return [s for s in self.sim.sessions(KEY.exchange, KEY.market) if not s.public]

    def delivery(self) -> dict:
        return self.pool.get_connection_status()["connections"][str(KEY)]

    async def stored(self) -> int:
        store = open_store(self.pg_url)
        await store.start()
        try:
            return len(await store.fetch_trades(KEY))
        finally:
            await store.stop()

    def feed(self) -> None:
        self.sim.autopilot(KEY.exchange, KEY.market, SYMBOL, rate=RATE,
                           client_order_id_prefix=self.strategy.client_order_id_prefix)

    async def settled(self) -> None:
        """Once the venue stops: the store holds the ledger exactly, the strategy got each fill once."""
        await self.sim.stop_autopilots()
        ledger = {f.trade_id: (f.amount, f.price) for f in self.sim.ledger(KEY.exchange, KEY.market).fills}
        assert ledger, "the simulator made no fill"
        store = open_store(self.pg_url)
        await store.start()
        try:
            deadline = time.monotonic() + SETTLE
            while True:
                trades = await store.fetch_trades(KEY)
                got = Counter(f.trade_id for f in self.strategy.fills)
                if ({t.trade_id for t in trades} >= ledger.keys() and got.keys() >= ledger.keys()) \
                        or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
        finally:
            await store.stop()
        stored = Counter(t.trade_id for t in trades)
        missing = ledger.keys() - stored.keys()
        assert not missing, f"{len(missing)} of {len(ledger)} fills not in the store: {sorted(missing)[:5]}"
        assert stored.keys() == ledger.keys() and max(stored.values()) == 1, "the store differs from the ledger"
        assert {t.trade_id: (t.amount, t.price) for t in trades} == ledger
        unseen = ledger.keys() - got.keys()
        assert not unseen, f"the strategy missed {len(unseen)} of {len(ledger)} fills: {sorted(unseen)[:5]}"
        twice = [trade_id for trade_id, n in got.items() if n > 1]
        assert not twice and got.keys() == ledger.keys(), f"fills given twice or foreign: {twice[:5]}"


# 1. racing streamers ------------------------------------------------------------------------------------------------
# A schedule: start a streamer; crash or stop the n-th streamer that is up (-1: the owner of the key now); wait ms.
OPS = st.one_of(
    st.just(("start", 0)),
    st.just(("start", 0)),
    st.tuples(st.sampled_from(["crash", "stop"]), st.sampled_from([-1, -1, 0, 1, 2])),
    st.tuples(st.just("wait"), st.sampled_from([0, 5, 50, 300, 1000, 2000])),
)


async def _race(nats_url: str, pg_server: str, tmp: Path, schedule: list[tuple[str, int]]) -> None:
    async with World(nats_url, pg_server, tmp) as world:
        world.feed()
        actions: list[asyncio.Task] = []
        for op, arg in schedule:
            up = [h for h in world.hosts if h.wanted_up]
            if op == "wait":
                await asyncio.sleep(arg / 1000)
            elif op == "start":  # at once: a start races with whatever else runs
                actions.append(asyncio.create_task(world.host(f"s{len(world.hosts)}").start()))
            elif up:
                host = (await world.owned_within(OWNED_WITHIN, among=up)) if arg < 0 else up[arg % len(up)]
                host.wanted_up = False
                actions.append(asyncio.create_task(host.crash() if op == "crash" else host.stop()))
        await asyncio.gather(*actions)
        if not any(h.state == "running" for h in world.hosts):
            await world.host("last").start()
        # An owner that left: its lease runs out (a crash) or is deleted (a stop), and a standby takes the key
        # within the lease and a lease round (or at once, if it started later).
        lease = world.hosts[0].streamer.lease_seconds
        owner = await world.owned_within(lease * 1.25 + 2.0)
        since = owner.streamer.status()["owned"][str(KEY)]["since"] / 1000
        left = max((h.left for h in world.hosts if h.left and h.owned_when_leaving), default=None)
        took = "with no owner leaving"
        if left is not None and since > left:
            took = f"{since - left:.2f} s after its owner left"
            assert since - max(left + lease * 1.25, owner.ready) < 1.5, f"the key taken {took}"
        await asyncio.sleep(0.5)  # fills flow through the owner
        await world.settled()
        assert world.most_sockets == 1, f"{world.most_sockets} private sockets of {KEY} at once"
        print(f"schedule {schedule}: {owner.name} owns the key {took}, "
              f"{len(world.sim.ledger(KEY.exchange, KEY.market).fills)} fills, {world.samples} socket samples")


@pytest.mark.slow
@settings(max_examples=6, deadline=None, phases=(Phase.explicit, Phase.generate),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(schedule=st.lists(OPS, min_size=3, max_size=7))
@example(schedule=[("start", 0), ("start", 0), ("start", 0), ("wait", 1000), ("crash", -1)])
@example(schedule=[("start", 0), ("crash", -1), ("start", 0), ("start", 0), ("wait", 2000)])  # two race for its lease
@example(schedule=[("start", 0), ("wait", 1000), ("stop", -1), ("start", 0), ("start", 0)])
def test_two_streamers_racing_for_one_key_never_both_open_a_socket(nats_url, pg_server, tmp_path, schedule):
    asyncio.run(asyncio.wait_for(_race(nats_url, pg_server, tmp_path, schedule), 60))


async def _until(check, seconds: float, what: str) -> float:
    """Seconds until `check()` holds (AssertionError after `seconds`)."""
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > seconds:
            raise AssertionError(f"{what}: not within {seconds:g} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - began


# 2. NATS lost while running ------------------------------------------------------------------------------------------
async def test_nats_lost_while_running_keeps_the_socket_and_the_store_and_resumes_every_fill_once(
        nats_url, pg_server, tmp_path):
    """NATS goes away for everyone (the streamer and the strategy process) for longer than a lease."""
    async with World(nats_url, pg_server, tmp_path) as world:
        world.feed()
        host = world.host("s0")
        await host.start()
        lease = host.streamer.lease_seconds
        await world.owned_within(lease)
        await _until(lambda: len(world.strategy.fills) > 0, 10, "first fills delivered")
        session = world.private_sessions()
        stored_before = await world.stored()
        host.proxies["nats"].cut()
        world.strategy_nats.cut()
        await _until(lambda: world.delivery()["degraded"], 3, "the strategy process reports degraded")
        assert world.delivery()["status"] == "reconnecting"
        await asyncio.sleep(lease + 1.0)  # the lease runs out on the server meanwhile
        assert host.streamer.status()["nats"] == "down"
        assert world.private_sessions() == session and not session[0].closed, "the streamer let its socket go"
        made = len(world.sim.ledger(KEY.exchange, KEY.market).fills)
        assert await world.stored() > stored_before + RATE, "the streamer stopped storing while NATS was away"
        host.proxies["nats"].restore()
        world.strategy_nats.restore()
        back = await _until(lambda: not world.delivery()["degraded"], 5, "the strategy process healthy again")
        await _until(lambda: len({f.trade_id for f in world.strategy.fills}) >= made, 10,
                     "the fills made while NATS was away delivered")
        assert world.owners() == [host] and world.private_sessions() == session, "the socket changed hands"
        assert host.streamer.status()["nats"] == "up"
        await world.settled()
        assert world.most_sockets == 1
        print(f"healthy {back:.2f} s after NATS came back; {made} fills made by then")


# 3. leases let go ----------------------------------------------------------------------------------------------------
async def test_a_key_nobody_wants_is_let_go_after_one_lease(nats_url, pg_server, tmp_path):
    async with World(nats_url, pg_server, tmp_path) as world:
        host = world.host("s0")
        await host.start()
        lease = host.streamer.lease_seconds
        await world.owned_within(lease)
        await world.strategy.stop()  # the process's last strategy on the key: its interest is withdrawn
        await asyncio.sleep(lease / 2)
        assert world.sockets() == 1, "closed at once: a process restarting would have its socket torn down"
        closed = lease / 2 + await _until(lambda: world.sockets() == 0, lease + 2.0, "the socket closed")
        assert lease <= closed <= lease * 1.25 + 1.5, closed
        print(f"socket closed {closed:.2f} s after the interest was withdrawn")
        await world.released(host)


async def test_a_killed_process_interest_expires_and_its_key_is_let_go(nats_url, pg_server, tmp_path):
    async with World(nats_url, pg_server, tmp_path) as world:
        host = world.host("s0")
        await host.start()
        lease = host.streamer.lease_seconds
        await world.owned_within(lease)
        world.strategy_nats.cut()  # the process is gone as far as NATS knows: no heartbeat, no withdrawal
        closed = await _until(lambda: world.sockets() == 0, INTEREST_TTL + lease * 1.25 + 3.0, "the socket closed")
        # its last heartbeat was at most a quarter TTL before the cut; then one lease without interest
        assert INTEREST_TTL * 0.75 + lease <= closed, closed
        print(f"socket closed {closed:.2f} s after the process was cut off")
        await world.released(host)
        world.strategy_nats.restore()
