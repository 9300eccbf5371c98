"""`python -m exchanges.simulator`: serve the paper exchange on loopback and print (or write) how to connect.

`--state-file PATH` writes, once listening, a JSON file (atomically, mode 0600) with the base URL, the
control URL (`/_sim/`, see control.py) and per key its endpoints and credentials, for a test in another process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import signal
from pathlib import Path

import attrs

from exchanges import EXCHANGES, get_exchange
from exchanges.connector import env_var
from exchanges.simulator.server import Simulator
from framework.console import configure_console


async def serve(args: argparse.Namespace) -> None:
    sim = Simulator(port=args.port, exchanges=args.exchange or None, seed=args.seed, control=args.control)
    await sim.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    for exchange in sim.exchanges:
        for market in sorted(sim.venue(exchange).markets) if args.rate else ():
            sim.autopilot(exchange, market, _symbol(exchange, market.value), rate=args.rate)
    if args.state_file:
        write_state(sim, args.state_file)
        print(f"simulator on {sim.base_url}; state in {args.state_file}", flush=True)
        await stop.wait()
        await sim.stop()
        return
    print("\n".join(environment_lines(sim)), flush=True)
    await stop.wait()
    await sim.stop()


def environment_lines(sim: Simulator) -> list[str]:
    """What to paste in another shell: the credentials as the tools read them, and how to attach (shell syntax)."""
    lines = [f"# simulator on {sim.base_url}: paste these lines in another shell, then e.g.",
             f"#   python scripts/run_strategy.py --sim-url {sim.base_url} --exchange {sim.exchanges[0]}"]
    for exchange in sim.exchanges:
        creds = attrs.asdict(sim.credentials_for(exchange))
        for field in get_exchange(exchange).credentials_required:
            lines.append(f"export {env_var(exchange, 'default', field)}={shlex.quote(creds[field])}")
        for market in sorted(sim.venue(exchange).markets):
            endpoints = sim.endpoints(exchange, market)
            lines.append(f"#   {exchange}_{market.value}: ws {endpoints.ws}  rest {endpoints.rest}")
    return lines


def state(sim: Simulator) -> dict:
    """What a client in another process needs: URLs, and per key its endpoints and credentials."""
    keys = {}
    for exchange in sim.exchanges:
        creds = attrs.asdict(sim.credentials_for(exchange))
        for market in sorted(sim.venue(exchange).markets):
            endpoints = sim.endpoints(exchange, market)
            keys[f"{exchange}_{market.value}"] = {
                "exchange": exchange, "market": market.value, "ws": endpoints.ws, "rest": endpoints.rest,
                "credentials": creds,
            }
    return {"pid": os.getpid(), "base_url": sim.base_url, "control": f"{sim.base_url}/_sim" if sim.control else None,
            "keys": keys}


def write_state(sim: Simulator, path: Path) -> None:
    """Write the state file atomically (a reader sees the whole file or none), readable by this user only."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(state(sim), out, indent=1)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def _symbol(exchange: str, market: str) -> str:
    if exchange == "hyperliquid":
        return "BTC/USDC:USDC"
    return "BTC/USDT" if market == "spot" else "BTC/USDT:USDT"


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    parser.add_argument("--exchange", action="append", choices=EXCHANGES, help="serve only these (repeatable)")
    parser.add_argument("--rate", type=float, default=0.0, help="fill orders automatically, per second per market")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--state-file", type=Path, default=None,
                        help="write URLs, endpoints and credentials here as JSON once listening (for tests)")
    parser.add_argument("--no-control", dest="control", action="store_false",
                        help="do not serve the /_sim/ control endpoints (served by default)")
    args = parser.parse_args(argv)
    configure_console("WARNING")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main(prog="python -m exchanges.simulator")
