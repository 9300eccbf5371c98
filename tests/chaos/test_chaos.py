"""The fault-injection suite: under random network, venue and database faults, the store equals the ledger.

For each (venue, market) a seeded scenario runs a strategy against the simulator while it makes fills
and, at random, drops sockets (also mid-frame), stalls the stream while answering pings, refuses new
sockets, fails REST calls with 429/5xx, expires listenKeys, duplicates and reorders frames — and
PostgreSQL becomes unreachable once, through a loopback TCP proxy the test cuts and restores. At the
end: every ledger fill is stored exactly once with every field as the venue reports it, and reached
the strategy exactly once. Replay a failure with TRADESYNC_CHAOS_SEED=<seed printed>.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter

import pytest

from exchanges import get_exchange
from exchanges.simulator import Simulator
from framework.pool import ConnectionPool
from framework.retry import reconnect_policy, rest_call_policy
from framework.strategy import BaseStrategy
from tests.chaos.tcp_proxy import TcpProxy
from tests.chaos.test_backfill import PAIRS
from tests.conftest import make_schema_url

BASE_SEED = int(os.environ.get("TRADESYNC_CHAOS_SEED", random.SystemRandom().randrange(1 << 30)))
STEPS = int(os.environ.get("TRADESYNC_CHAOS_STEPS", "30"))


def _ready(exchange: str) -> bool:
    try:
        return get_exchange(exchange).backfill is not None
    except Exception:  # noqa: BLE001 - a venue not built yet
        return False


pairs = [pytest.param(*p, i, id=f"{p[0]}_{p[1]}") for i, p in enumerate(PAIRS) if _ready(p[0])]


class Recorder(BaseStrategy):
    def on_start(self):
        self.trades = []

    def on_trade(self, trade):
        self.trades.append(trade)


async def _until(predicate, timeout: float) -> bool:
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.05)
        return True
    except TimeoutError:
        return False


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("exchange, market, symbol, index", pairs)
async def test_store_equals_ledger_under_faults(exchange, market, symbol, index, pg_server, tmp_path):
    seed = BASE_SEED + index
    rng = random.Random(seed)
    print(f"chaos seed for {exchange}_{market}: {seed} (replay: TRADESYNC_CHAOS_SEED={BASE_SEED})")
    pg_host, pg_port = "127.0.0.1", 5432
    proxy = TcpProxy(pg_host, pg_port)
    await proxy.start()
    schema = f"chaos_{exchange}_{market}_{seed}"
    url = make_schema_url(pg_server.replace(f"{pg_host}:{pg_port}", f"127.0.0.1:{proxy.port}"), schema)
    sim = Simulator(exchanges=[exchange], seed=seed)
    sim.faults.duplicate, sim.faults.reorder = 0.05, 0.05
    await sim.start()
    pool = ConnectionPool(url, tmp_path / "logs", spool_dir=tmp_path / "spool")
    key_name = f"{exchange}_{market}"
    try:
        await pool.start()
        policy = reconnect_policy(initial=0.05, maximum=0.3, jitter=0.05, give_up_after=120)
        connector = sim.connector(exchange, market, retry_policy=policy, stall_limit=1.0)
        strategy = Recorder("chaos", [connector], symbols=[symbol], pool=pool)
        await strategy.start()
        connection = pool.connection(connector.key)
        pool.scheduler(connector.key).backfiller.retry_policy = rest_call_policy(initial=0.02, maximum=0.2, jitter=0.02, attempts=8)
        live = lambda: pool.get_connection_status()["connections"][key_name]["live"]  # noqa: E731

        pg_cut_at = rng.randrange(STEPS)
        actions = ["fill"] * 5 + ["drop", "drop_mid", "stall", "refuse", "rest_fail", "expire"]
        for step in range(STEPS):
            if step == pg_cut_at:
                proxy.cut()
                await sim.fill(exchange, market, symbol, "buy", "0.005", "101.5", parts=2)
                await asyncio.sleep(rng.uniform(0.5, 1.5))
                proxy.restore()
            action = rng.choice(actions)
            side = rng.choice(("buy", "sell"))
            amount = f"0.{rng.randint(1, 60):03d}"
            price = f"{rng.randint(90, 110)}.{rng.randint(0, 9)}"
            if action == "fill":
                await sim.fill(exchange, market, symbol, side, amount, price, parts=rng.randint(1, 3))
            elif action in ("drop", "drop_mid"):
                await sim.drop(exchange, market, mid_frame=action == "drop_mid")
                await sim.fill(exchange, market, symbol, side, amount, price)
            elif action == "stall" and await _until(live, 10):
                order = await sim.place_order(exchange, market, symbol, side, "0.040", price)
                await sim.fill_order(exchange, market, order, "0.010")
                await asyncio.sleep(0.1)  # the client sees the order open
                reconnects = connection.reconnects
                sim.stall(exchange, market)
                await sim.fill_order(exchange, market, order, "0.030")
                await _until(lambda: connection.reconnects > reconnects, 15)
                sim.stall(exchange, market, False)
            elif action == "refuse":
                sim.refuse_connections(exchange, market, rng.uniform(0.2, 1.0))
                await sim.drop(exchange, market)
                await sim.fill(exchange, market, symbol, side, amount, price)
            elif action == "rest_fail":
                sim.fail_rest(exchange, market, rng.choices([429, 500, 502, 503], k=rng.randint(1, 3)))
                await sim.drop(exchange, market)
            elif action == "expire":
                await sim.expire_listen_keys(exchange, market)
                await sim.fill(exchange, market, symbol, side, amount, price)
            await asyncio.sleep(rng.uniform(0.01, 0.1))

        await sim.release_held()
        ledger = {f.trade_id: f for f in sim.ledger(exchange, market).fills}
        stored_ids: set[str] = set()

        async def refresh() -> None:
            stored_ids.clear()
            try:
                stored_ids.update(t.trade_id for t in await pool.store.fetch_trades(connector.key))
            except Exception:  # noqa: BLE001 - the store may still be coming back
                pass

        for _ in range(300):
            await refresh()
            if set(ledger) <= stored_ids and pool.trade_sync.stats()["spooled"] == 0:
                break
            await asyncio.sleep(0.2)
        await pool.flush(30)

        stored = await pool.store.fetch_trades(connector.key)
        counts = Counter(t.trade_id for t in stored)
        missing = sorted(set(ledger) - set(counts))
        extra = sorted(set(counts) - set(ledger))
        doubled = sorted(t for t, n in counts.items() if n > 1)
        assert (missing, extra, doubled) == ([], [], []), f"seed {seed}: missing/extra/doubled fills"
        venue = sim.venue(exchange)
        for trade in stored:
            expected = venue.expected_trade(connector.key.market, ledger[trade.trade_id])
            got = {name: getattr(trade, name) for name in expected}
            got["side"] = trade.side.value
            assert got == expected, f"seed {seed}: fill {trade.trade_id} ({trade.source.value}) differs"
        delivered = Counter(t.trade_id for t in strategy.trades)
        assert set(delivered) == set(ledger) and set(delivered.values()) == {1}, f"seed {seed}: delivery"
        await strategy.stop()
    finally:
        await pool.stop()
        await sim.stop()
        await proxy.stop()
        import psycopg

        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
