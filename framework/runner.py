"""`run_strategy`: run one strategy against a feed until its duration ends or Ctrl-C / SIGTERM, then summarize."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import inspect
import signal
import sys
from pathlib import Path
from typing import Sequence

from framework.console import configure_console
from framework.errors import FrameworkError
from framework.events import Market
from framework.pool import ConnectionPool
from framework.strategy import BaseStrategy

DEFAULT_STRATEGY = "position_tracker"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description="Run a tradesync strategy. With no arguments: the example PositionTracker on "
        "binance spot BTC/USDT against the built-in exchange simulator (offline) for 5 seconds.",
    )
    parser.add_argument("--strategy", default=DEFAULT_STRATEGY,
                        help="strategy: a name in strategies/ (position_tracker), module[:Class], or path/to/file.py[:Class]")
    parser.add_argument("--exchange", default="binance", help="venue name (default: binance)")
    parser.add_argument("--market", default=None,
                        help="spot or future (aliases: futures, perp, swap); default spot (hyperliquid: future)")
    parser.add_argument("--symbol", default=None,
                        help="unified symbol; default BTC/USDT, BTC/USDT:USDT for futures, BTC/USDC:USDC on hyperliquid")
    parser.add_argument("--live", action="store_true",
                        help="connect to the venue's real endpoints with credentials from the environment "
                        "(default: the built-in simulator on 127.0.0.1 with generated credentials)")
    parser.add_argument("--db", default="sqlite:///data/trades.sqlite",
                        help="store: sqlite:///path, a .sqlite file path, or postgresql://user@host/db")
    parser.add_argument("--duration", type=_positive_float, default=5.0,
                        help="seconds to run (default 5); 0 runs until Ctrl-C")
    parser.add_argument("--log-dir", default="logs", help="directory for logs (trade sync log under <dir>/trade_sync)")
    parser.add_argument("--rate", type=_positive_float, default=10.0,
                        help="simulator: orders filled per second (default 10)")
    parser.add_argument("--seed", type=int, default=None, help="simulator: random seed for a repeatable run")
    parser.add_argument("--strategy-id", default=None,
                        help="strategy id, stable across runs: its delivery position is kept under it "
                        "(default: the strategy's module name)")
    parser.add_argument("--backfill-since", type=_duration_ms, default=24 * 3600 * 1000, metavar="DURATION",
                        help="on a first start, how far back to read the account's fills (e.g. 90m, 24h, 7d; "
                        "default 24h); later starts read from where the store is complete")
    parser.add_argument("--shutdown-timeout", type=_positive_float, default=10.0, metavar="SECONDS",
                        help="Ctrl-C / SIGTERM: seconds to finish delivering and writing before exiting (default 10)")
    parser.add_argument("--verbose", action="store_true", help="log INFO to the console")
    return parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, got {text}")
    return value


_UNITS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _duration_ms(text: str) -> int:
    """`90m`, `24h`, `7d`, `30s` (or plain seconds) as milliseconds."""
    value, unit = text.strip().lower(), "s"
    if value and value[-1] in _UNITS_MS:
        value, unit = value[:-1], value[-1]
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (write e.g. 90m, 24h or 7d)") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return int(number * _UNITS_MS[unit])


def store_url_of(db: str) -> str:
    """A --db value as a store URL: a bare path means a SQLite file."""
    return db if "://" in db else f"sqlite:///{db}"


def load_strategy_class(spec: str) -> type[BaseStrategy]:
    """`position_tracker`, `strategies.position_tracker`, `pkg.mod:Class` or `path/file.py[:Class]`."""
    target, _, class_name = spec.partition(":")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise FrameworkError(f"strategy file {target} does not exist")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        candidates = [target] if "." in target else [f"strategies.{target}", target]
        module = None
        for name in candidates:
            try:
                module = importlib.import_module(name)
                break
            except ModuleNotFoundError as exc:
                if exc.name != name and not name.startswith(f"{exc.name}."):
                    raise
        if module is None:
            raise FrameworkError(f"no strategy module {target!r}: try one of {', '.join(available_strategies())}")
    classes = [
        obj for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, BaseStrategy) and obj is not BaseStrategy
        and obj.__module__ == module.__name__ and (not class_name or name == class_name)
    ]
    if len(classes) != 1:
        found = ", ".join(c.__name__ for c in classes) or "none"
        raise FrameworkError(
            f"{spec}: expected exactly one BaseStrategy subclass, found {found}; name it as module:Class"
        )
    return classes[0]


def available_strategies() -> list[str]:
    folder = Path(__file__).resolve().parent.parent / "strategies"
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))


def default_symbol(exchange: str, market: Market) -> str:
    if exchange == "hyperliquid":
        return "BTC/USDC:USDC"
    return "BTC/USDT" if market is Market.SPOT else "BTC/USDT:USDT"


async def run(args: argparse.Namespace, strategy_cls: type[BaseStrategy]) -> int:
    from exchanges.connector import ExchangeConnector
    from exchanges.simulator import Simulator

    market = Market.parse(args.market)
    symbol = args.symbol or default_symbol(args.exchange, market)
    strategy_id = args.strategy_id or args.strategy.split(":")[0].split("/")[-1].removesuffix(".py").split(".")[-1]
    pool = ConnectionPool(store_url_of(args.db), args.log_dir, backfill_since_ms=args.backfill_since)
    sim = None if args.live else Simulator(exchanges=[args.exchange], seed=args.seed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    strategy = None
    try:
        if sim is not None:
            await sim.start()
            connector = sim.connector(args.exchange, market)
            where = f"the simulator on 127.0.0.1:{sim.port}"
        else:
            connector = ExchangeConnector(args.exchange, market)
            where = "the LIVE venue"
        strategy = strategy_cls(strategy_id, [connector], symbols=[symbol], pool=pool)
        await pool.start()
        print(f"tradesync: {strategy_cls.__name__} '{strategy_id}' on {connector.key} {symbol} against {where}; "
              f"store {pool.store.url}")
        await strategy.start()
        if sim is not None:
            sim.autopilot(args.exchange, market, symbol, rate=args.rate,
                          client_order_id_prefix=strategy.client_order_id_prefix)
        try:
            await asyncio.wait_for(stop.wait(), timeout=args.duration or None)
        except TimeoutError:
            pass
        deadline = loop.time() + args.shutdown_timeout
        if sim is not None:
            await sim.stop_autopilots()
        await asyncio.sleep(0.2)  # frames already on the wire arrive
        try:
            await pool.flush(timeout=_left(loop, deadline))
        except TimeoutError:
            pass
        await strategy.stop(timeout=_left(loop, deadline))
        if strategy.stopped_busy_in is not None:
            print(f"run_strategy.py: strategy {strategy.strategy_id!r} was still busy in {strategy.stopped_busy_in} "
                  f"after {args.shutdown_timeout:g} s: left behind (its fill comes again, marked redelivered)",
                  file=sys.stderr)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await pool.stop(timeout=max(_left(loop, loop.time() + args.shutdown_timeout), 1.0))
        if sim is not None:
            await sim.stop()

    stats = pool.trade_sync.stats()
    if sim is not None:
        print(f"fills made by the simulator: {len(sim.ledger(args.exchange, market).fills)}")
    print(f"fills stored: {stats['stored']}, duplicates skipped: {stats['duplicates']}, "
          f"order states written: {stats['orders']}, dead letters: {stats['dead_letters']}")
    summary = getattr(strategy, "summary", None)
    for line in summary() if callable(summary) else []:
        print(f"  {line}")
    print(f"strategy state: {strategy.state.value}")
    path = getattr(pool.store, "path", None)
    print(f"database: {pool.store.url}" + (f" ({path.resolve()})" if path else ""))
    print(f"trade sync log: {pool.sync_log.path}")
    if strategy.caught_up:
        print(f"fills read back from the store for the strategy: {strategy.caught_up}")
    return 0 if strategy.state.value == "stopped" else 1


def _left(loop: asyncio.AbstractEventLoop, deadline: float) -> float:
    return max(deadline - loop.time(), 0.1)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    from exchanges import EXCHANGES, get_exchange

    args.exchange = args.exchange.lower()
    if args.exchange not in EXCHANGES:
        parser.error(f"unknown exchange {args.exchange!r}: use one of {', '.join(EXCHANGES)}")
    if args.symbol is not None and "/" not in args.symbol:
        parser.error(f"--symbol {args.symbol!r} is not a unified symbol: write it as BASE/QUOTE, e.g. BTC/USDT")
    try:
        markets = get_exchange(args.exchange).markets
        market = Market.parse(args.market) if args.market else (Market.SPOT if Market.SPOT in markets else Market.FUTURE)
        if market not in markets:
            raise FrameworkError(f"{args.exchange} has no {market.value} market: use {', '.join(sorted(markets))}")
        args.market = market.value
        strategy_cls = load_strategy_class(args.strategy)
    except FrameworkError as exc:
        parser.error(str(exc))
    configure_console("INFO" if args.verbose else "WARNING")
    try:
        return asyncio.run(run(args, strategy_cls))
    except FrameworkError as exc:
        print(f"run_strategy.py: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 130


if __name__ == "__main__":
    sys.exit(main(prog="python -m framework.runner"))
