"""A strategy process for the process-level chaos suite, built on the public API only.

`python tests/chaos/proc_runner.py --store-url URL --sim-state FILE --exchange X --market M --symbol S
--strategies fast,slow:0.05,blocking:0.2 --deliveries FILE --log-dir DIR --spool-dir DIR --run N`

Strategies have stable ids ("fast": async, records; "slow": async, sleeps per fill; "blocking": a sync
on_trade that calls time.sleep) and append one JSON line per on_trade call to the deliveries file.
Prints "ready" once they run; SIGTERM / SIGINT stop strategies and pool and exit 0 (3 if stopping
took longer than --stop-timeout).
"""

from __future__ import annotations

import signal

_early_signal: list[int] = []  # a signal before the loop's handlers exist (imports take a second)
for _sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(_sig, lambda number, frame: _early_signal.append(number))

import argparse  # noqa: E402 - the handlers above come first
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from exchanges.connector import Credentials, ExchangeConnector  # noqa: E402
from framework.venue import Endpoints  # noqa: E402
from framework.console import configure_console  # noqa: E402
from framework.pool import ConnectionPool  # noqa: E402
from framework.retry import reconnect_policy, rest_call_policy  # noqa: E402
from framework.strategy import BaseStrategy  # noqa: E402

# Client order id prefixes per strategy. Hyperliquid's client ids are cloids (0x + 32 hex digits).
PREFIXES = {"fast": "fast", "slow": "slow", "blocking": "block"}
HEX_PREFIXES = {"fast": "0xfa57", "slow": "0x5107", "blocking": "0xb10c"}


def prefix_for(exchange: str, strategy_id: str) -> str:
    return (HEX_PREFIXES if exchange == "hyperliquid" else PREFIXES)[strategy_id]


class _Deliveries:
    """One JSON line per on_trade call, one write(2) each on an O_APPEND file (kill -9 keeps what was written)."""

    def __init__(self, path: Path, run: int) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._run = run

    def record(self, strategy_id: str, trade) -> None:
        line = json.dumps({
            "run": self._run, "strategy": strategy_id, "trade_id": trade.trade_id, "order_id": trade.order_id,
            "client_order_id": trade.client_order_id, "seq": trade.seq, "redelivered": trade.redelivered,
            "owner_unknown": trade.owner_unknown, "source": trade.source.value,
        })
        os.write(self._fd, (line + "\n").encode())


class Fast(BaseStrategy):
    async def on_trade(self, trade):
        self.config["deliveries"].record(self.strategy_id, trade)


class Slow(BaseStrategy):
    async def on_trade(self, trade):
        self.config["deliveries"].record(self.strategy_id, trade)
        await asyncio.sleep(self.config["delay"])


class Blocking(BaseStrategy):
    def on_trade(self, trade):
        self.config["deliveries"].record(self.strategy_id, trade)
        time.sleep(self.config["delay"])  # blocks this strategy's own worker, nothing else


KINDS = {"fast": Fast, "slow": Slow, "blocking": Blocking}


def parse_strategies(spec: str) -> list[tuple[str, float]]:
    """`fast,slow:0.05,blocking:0.2` → [(id, delay)]."""
    out = []
    for item in filter(None, spec.split(",")):
        name, _, delay = item.partition(":")
        if name not in KINDS:
            raise SystemExit(f"proc_runner: unknown strategy {name!r}: use {', '.join(KINDS)}")
        out.append((name, float(delay or 0)))
    return out


async def run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if _early_signal:
        stop.set()

    state = json.loads(Path(args.sim_state).read_text())
    entry = state["keys"][f"{args.exchange}_{args.market}"]
    connector = ExchangeConnector(
        args.exchange, args.market, credentials=Credentials(**entry["credentials"]),
        endpoints=Endpoints(ws=entry["ws"], rest=entry["rest"]),
        retry_policy=reconnect_policy(initial=0.05, maximum=0.5, jitter=0.05, give_up_after=600),
        stall_limit=5.0, backfill_overlap_ms=args.overlap_ms,
        backfill_retry_policy=rest_call_policy(initial=0.05, maximum=0.5, jitter=0.05, attempts=8),
    )
    deliveries = _Deliveries(Path(args.deliveries), args.run)
    pool = ConnectionPool(args.store_url, args.log_dir, spool_dir=args.spool_dir,
                          backfill_since_ms=args.backfill_since_ms)
    strategies = [
        KINDS[name](name, [connector], symbols=[args.symbol], pool=pool,
                    client_order_id_prefix=prefix_for(args.exchange, name), deliveries=deliveries, delay=delay)
        for name, delay in parse_strategies(args.strategies)
    ]

    async def start() -> None:
        await pool.start()
        for strategy in strategies:
            await strategy.start()

    starting = asyncio.create_task(start(), name="proc-runner-start")
    stopping = asyncio.create_task(stop.wait(), name="proc-runner-stop-signal")
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if starting.done() and starting.exception() is None and not stop.is_set():
        print("ready", flush=True)
        await stopping
    if not starting.done():  # a signal during start-up: let it finish a little, then stop anyway
        await asyncio.wait({starting}, timeout=args.stop_timeout / 3)
        starting.cancel()
    stopping.cancel()
    failed = starting.done() and not starting.cancelled() and starting.exception() is not None
    if failed:
        print(f"start failed: {starting.exception()!r}", file=sys.stderr, flush=True)
    try:
        async with asyncio.timeout(args.stop_timeout):
            for strategy in strategies:
                await strategy.stop()
            await pool.stop()
    except TimeoutError:
        busy = [s.strategy_id for s in strategies if getattr(s, "busy_in", None)]
        print(f"stop took longer than {args.stop_timeout}s; busy: {busy}", file=sys.stderr, flush=True)
        return 3
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="proc_runner.py", description=__doc__)
    parser.add_argument("--store-url", required=True)
    parser.add_argument("--sim-state", required=True, help="the simulator's --state-file")
    parser.add_argument("--exchange", required=True)
    parser.add_argument("--market", required=True)
    parser.add_argument("--symbol", required=True)
    parser.add_argument("--strategies", default="fast,slow:0.05,blocking:0.2")
    parser.add_argument("--deliveries", required=True)
    parser.add_argument("--log-dir", required=True)
    parser.add_argument("--spool-dir", required=True)
    parser.add_argument("--run", type=int, default=0, help="written in every delivery line")
    parser.add_argument("--overlap-ms", type=int, default=1000)
    parser.add_argument("--backfill-since-ms", type=int, default=3600 * 1000)
    parser.add_argument("--stop-timeout", type=float, default=30.0)
    args = parser.parse_args()
    configure_console("WARNING")
    sys.exit(asyncio.run(run(args)))  # a thread left running past the stop shows as a hang here


if __name__ == "__main__":
    main()
