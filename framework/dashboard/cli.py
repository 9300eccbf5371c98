"""`run_dashboard`: the dashboard backend on 127.0.0.1:8000 beside a strategy run (run_strategy.py's options and
machinery: the Quoter against the simulator by default), until Ctrl-C."""

from __future__ import annotations

import argparse
import socket
import sys
from typing import Any, Sequence

from framework.console import configure_console
from framework.runner import _port, build_parser as build_run_parser, checked_args, chosen_exchange, execute, run

DEFAULT_PORT = 8000


def build_parser(prog: str | None = None, exchange: str | None = None) -> argparse.ArgumentParser:
    parser = build_run_parser(prog, exchange)
    parser.description = (
        "Start the live dashboard (http://127.0.0.1:8000/?token=…) and run a strategy it shows. With no arguments: "
        "the example Quoter on binance spot BTC/USDT against the built-in exchange simulator until Ctrl-C. Takes "
        "run_strategy.py's options.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address the dashboard listens on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT,
                        help=f"port of the dashboard (default {DEFAULT_PORT}; 0: any free port, printed at start)")
    for action in parser._actions:  # the dashboard runs until stopped unless told otherwise
        if action.dest == "duration":
            action.default = 0.0
            action.help = "seconds to run (default 0: until Ctrl-C)"
    return parser


def port_problem(host: str, port: int) -> str | None:
    """Why the dashboard could not listen on host:port (in use, no such address), or None."""
    if port == 0:
        return None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        return f"--host {host}: not an address of this machine ({exc.strerror or exc})"
    family, kind, proto, _, address = infos[0]
    probe = socket.socket(family, kind, proto)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds (TIME_WAIT is no obstacle)
        probe.bind(address)
    except OSError as exc:
        return (f"--port {port}: cannot listen on {host}:{port} ({exc.strerror or exc}): choose a free port, "
                "or 0 for any")
    finally:
        probe.close()
    return None


def dashboard_starter(args: argparse.Namespace) -> Any:
    """The runner's on_started hook: the dashboard on the run's pool, manual orders on the run's key."""

    async def started(*, pool: Any, connector: Any, symbol: str, strategy: Any, trading: Any, sim: Any) -> Any:
        from framework.dashboard.server import Dashboard

        rules = getattr(getattr(connector, "spec", None), "orders", None)
        can_trade = rules is not None and connector.key.market in rules.markets
        if args.live and not args.confirm_live:
            can_trade = False  # manual orders with real money only with --confirm-live
        dashboard = Dashboard(pool, host=args.host, port=args.port, connectors=[connector] if can_trade else [],
                              symbols=[symbol])
        await dashboard.start()
        print(f"dashboard: {dashboard.page_url}", flush=True)
        print(f"token={dashboard.token}", flush=True)
        if not can_trade:
            print("dashboard: manual orders are off" + (" (with --live add --confirm-live)" if args.live else
                                                        f" ({connector.key} has no order entry)"), flush=True)
        return dashboard.stop

    return started


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    parser = build_parser(prog, chosen_exchange(argv, prog))
    args = parser.parse_args(argv)
    strategy_cls = checked_args(parser, args)
    problem = port_problem(args.host, args.port)
    if problem:
        parser.error(problem)
    configure_console("INFO" if args.verbose else "WARNING")
    return execute(parser, run(args, strategy_cls, on_started=dashboard_starter(args)))


if __name__ == "__main__":
    sys.exit(main(prog="python -m framework.dashboard.cli"))
