"""A strategy process for the scale-out process tests: K collecting strategies on one key, its events from the
streamers over NATS (framework.scaleout.remote.ScaleOut), built on the public API only.

`python tests/scaleout/strategy_proc.py --nats URL --namespace NS --name P --sim-url URL --exchange X --market M
--symbol S --strategies st01,st02 --out-dir DIR --store-url sqlite:///… --log-dir DIR`

Each strategy (its id is its client-order-id prefix) appends one JSON line per on_trade call to its own file
`<out-dir>/<process>.<strategy>.jsonl` with one write(2) on an O_APPEND file (kill -9 keeps every line written):
the fill's dedup key and whether it came marked redelivered. The venue credentials come from the environment
(as `tradesync-streamer --sim-url` reads them). Prints "ready" once every strategy runs; SIGTERM / SIGINT stop
strategies, pool and NATS and exit 0.
"""

from __future__ import annotations

import signal

_early_signal: list[int] = []  # a signal before the loop's handlers exist
for _sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(_sig, lambda number, frame: _early_signal.append(number))

import argparse  # noqa: E402 - the handlers above come first
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from exchanges.connector import ExchangeConnector  # noqa: E402
from framework.console import configure_console  # noqa: E402
from framework.pool import ConnectionPool  # noqa: E402
from framework.scaleout.remote import ScaleOut  # noqa: E402
from framework.strategy import BaseStrategy  # noqa: E402
from framework.venue import Endpoints  # noqa: E402


def deliveries_path(out_dir: Path | str, process: str, strategy_id: str) -> Path:
    return Path(out_dir) / f"{process}.{strategy_id}.jsonl"


class Collector(BaseStrategy):
    """Writes every fill it is handed, nothing else."""

    def on_start(self) -> None:
        path = deliveries_path(self.config["out_dir"], self.config["process"], self.strategy_id)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def on_trade(self, trade) -> None:
        line = json.dumps({"key": list(trade.dedup_key), "client_order_id": trade.client_order_id,
                           "redelivered": trade.redelivered, "seq": trade.seq, "run": self.config["run"]})
        os.write(self._fd, (line + "\n").encode())

    def on_stop(self) -> None:
        os.close(self._fd)


async def run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if _early_signal:
        stop.set()
    prefix = f"{args.sim_url}/{args.exchange}_{args.market}"
    venue = ExchangeConnector(args.exchange, args.market,
                              endpoints=Endpoints(ws="ws" + prefix.removeprefix("http"), rest=prefix))
    scaleout = ScaleOut(args.nats, args.name, args.namespace)
    await scaleout.start()
    connector = scaleout.connector(venue)
    pool = ConnectionPool(args.store_url, args.log_dir)
    strategies = [Collector(sid, [connector], symbols=[args.symbol], pool=pool, client_order_id_prefix=sid,
                            out_dir=args.out_dir, process=args.name, run=args.run)
                  for sid in filter(None, args.strategies.split(","))]
    try:
        await pool.start()
        for strategy in strategies:
            await strategy.start()
        print("ready", flush=True)
        await stop.wait()
    finally:
        for strategy in strategies:
            await strategy.stop()
        await pool.stop()
        await scaleout.stop()
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="strategy_proc.py", description=__doc__)
    parser.add_argument("--nats", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--name", required=True, help="the process name (its durable consumers resume under it)")
    parser.add_argument("--sim-url", required=True)
    parser.add_argument("--exchange", required=True)
    parser.add_argument("--market", required=True)
    parser.add_argument("--symbol", required=True)
    parser.add_argument("--strategies", required=True, help="strategy ids, comma-separated (each its own prefix)")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--store-url", required=True)
    parser.add_argument("--log-dir", required=True)
    parser.add_argument("--run", type=int, default=0, help="written in every delivery line")
    args = parser.parse_args()
    configure_console("WARNING")
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
