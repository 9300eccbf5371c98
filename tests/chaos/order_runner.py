"""A strategy process that places orders, for the order kill suite, built on the public API only.

`python tests/chaos/order_runner.py --store-url URL --sim-state FILE --exchange X --market M --symbol S
--prefix P --orders-per-second R`

One strategy ("maker") places orders all along (resting limits it cancels a moment later, and orders that take
liquidity) through the order gateway; with `--orders-per-second 0` it places none and only takes over what an
earlier run left unfinished. Prints "ready" once running; SIGTERM / SIGINT stop it and exit 0.
"""

from __future__ import annotations

import signal

_early_signal: list[int] = []
for _sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(_sig, lambda number, frame: _early_signal.append(number))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
from decimal import Decimal  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from exchanges.connector import Credentials, ExchangeConnector  # noqa: E402
from framework.console import configure_console  # noqa: E402
from framework.orders import WebSocketTradingConfig, setup_websocket_trading  # noqa: E402
from framework.pool import ConnectionPool  # noqa: E402
from framework.retry import reconnect_policy  # noqa: E402
from framework.strategy import BaseStrategy  # noqa: E402
from framework.venue import Endpoints  # noqa: E402

CONFIG = WebSocketTradingConfig(ack_timeout_seconds=1.0, confirm_timeout_seconds=1.0, order_timeout_seconds=15.0,
                                clock_skew_ms=200, websocket_retry_attempts=20)


class Maker(BaseStrategy):
    pass


async def trade(strategy: Maker, symbol: str, rate: float, rng: random.Random, stop: asyncio.Event) -> None:
    tasks: set[asyncio.Task] = set()

    async def one() -> None:
        ticker = strategy.config["book"]
        price = Decimal(str(ticker()))
        if rng.random() < 0.5:  # rests a moment, then cancelled
            order = await strategy.place_order(symbol, "buy", "0.001", price=price - 50)
            await asyncio.sleep(rng.random())
            if not order.final:
                await strategy.cancel_order(order)
        else:  # takes liquidity
            await strategy.place_order(symbol, rng.choice(("buy", "sell")), "0.001", price=price,
                                       order_type="ioc")

    while not stop.is_set():
        task = asyncio.create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        await asyncio.sleep(1.0 / rate)


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
    )
    pool = ConnectionPool(args.store_url, args.log_dir, spool_dir=args.log_dir)
    prices = {"last": Decimal(args.price)}
    strategy = Maker("maker", [connector], symbols=[args.symbol], pool=pool, client_order_id_prefix=args.prefix,
                     book=lambda: prices["last"])
    await pool.start()
    await setup_websocket_trading(pool, CONFIG)
    await strategy.start()
    print("ready", flush=True)
    trader = None
    if args.orders_per_second > 0:
        trader = asyncio.create_task(trade(strategy, args.symbol, args.orders_per_second,
                                           random.Random(args.seed), stop))
    await stop.wait()
    if trader is not None:
        await asyncio.gather(trader, return_exceptions=True)
    await strategy.stop()
    await pool.stop()
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="order_runner.py", description=__doc__)
    parser.add_argument("--store-url", required=True)
    parser.add_argument("--sim-state", required=True)
    parser.add_argument("--exchange", required=True)
    parser.add_argument("--market", required=True)
    parser.add_argument("--symbol", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--price", required=True, help="the book's price about now (orders are placed around it)")
    parser.add_argument("--orders-per-second", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-dir", required=True)
    args = parser.parse_args()
    configure_console("ERROR")
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
