"""`python -m exchanges.simulator`: serve the paper exchange on loopback and print how to connect."""

from __future__ import annotations

import argparse
import asyncio
import signal

from exchanges import EXCHANGES
from exchanges.simulator.server import Simulator
from framework.console import configure_console


async def serve(args: argparse.Namespace) -> None:
    sim = Simulator(port=args.port, exchanges=args.exchange or None, seed=args.seed)
    await sim.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"simulator on {sim.base_url}")
    for exchange in sim.exchanges:
        creds = sim.credentials_for(exchange)
        for market in sorted(sim.venue(exchange).markets):
            endpoints = sim.endpoints(exchange, market)
            print(f"  {exchange}_{market.value}: ws {endpoints.ws}  rest {endpoints.rest}")
            if args.rate:
                sim.autopilot(exchange, market, _symbol(exchange, market.value), rate=args.rate)
        print(f"    credentials: api_key={creds.api_key} secret={creds.secret}"
              + (f" passphrase={creds.passphrase}" if creds.passphrase else "")
              + (f" wallet={creds.wallet_address}" if exchange == "hyperliquid" else ""))
    await stop.wait()
    await sim.stop()


def _symbol(exchange: str, market: str) -> str:
    if exchange == "hyperliquid":
        return "BTC/USDC:USDC"
    return "BTC/USDT" if market == "spot" else "BTC/USDT:USDT"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m exchanges.simulator", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    parser.add_argument("--exchange", action="append", choices=EXCHANGES, help="serve only these (repeatable)")
    parser.add_argument("--rate", type=float, default=0.0, help="fill orders automatically, per second per market")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    configure_console("WARNING")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
