"""`run_strategy`: run one strategy against a feed until its duration ends or Ctrl-C / SIGTERM, then summarize."""

from __future__ import annotations

import argparse
import hashlib
import asyncio
import importlib
import importlib.util
import inspect
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any, Sequence
from urllib.error import HTTPError
from urllib.parse import urlencode, urlsplit
from urllib.request import urlopen

from framework.console import configure_console
from framework.errors import AuthError, ConfigError, FrameworkError, StoreError
from framework.runtime import tune_gc
from framework.events import ConnectionKey, Market
from framework.pool import ConnectionPool
from framework.strategy import BaseStrategy

DEFAULT_STRATEGY = "quoter"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def venues_epilog(exchange: str | None = None) -> str:
    """The venues and their markets for --help; with an exchange, the symbols the simulator lists for it."""
    from exchanges import EXCHANGES, get_exchange
    from exchanges.listings import QUOTES, sim_symbols

    lines = ["venues and markets:"]
    for name in EXCHANGES:
        markets = sorted(m.value for m in get_exchange(name).markets)
        lines.append(f"  {name:<12} {', '.join(markets)}")
    if exchange in EXCHANGES:
        for market in sorted(get_exchange(exchange).markets):
            quotes = QUOTES.get((exchange, market), ())
            lines.append(f"{exchange} {market.value} symbols (simulator; --live: any base quoted in "
                         f"{', '.join(quotes)}):")
            lines.append(f"  {' '.join(sim_symbols(exchange, market))}")
    return "\n".join(lines)


def build_parser(prog: str | None = None, exchange: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description="Run a tradesync strategy. With no arguments: the example Quoter on binance spot BTC/USDT "
        "against the built-in exchange simulator (offline) for 5 seconds: it rests a bid and an ask on the "
        "simulator's book through the order gateway, gets filled, cancels and re-quotes as the book moves, and "
        "prints its orders, fills, position and PnL.",
        epilog=venues_epilog(exchange),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--strategy", default=DEFAULT_STRATEGY,
                        help="strategy: a name in strategies/ (quoter, position_tracker), module[:Class], or path/to/file.py[:Class]")
    parser.add_argument("--exchange", default="binance",
                        help="venue name (default: binance); `--exchange X --help` lists X's markets and symbols")
    parser.add_argument("--market", default=None,
                        help="spot or future (aliases: futures, perp, swap); default spot (hyperliquid: future)")
    parser.add_argument("--symbol", default=None,
                        help="unified symbol; default BTC/USDT, BTC/USDT:USDT for futures, BTC/USDC:USDC on hyperliquid")
    parser.add_argument("--live", action="store_true",
                        help="connect to the venue's real endpoints with credentials from the environment "
                        "(default: the built-in simulator on 127.0.0.1 with generated credentials)")
    parser.add_argument("--confirm-live", action="store_true",
                        help="with --live and a strategy that places orders (the Quoter does): yes, place real "
                        "orders with real money")
    parser.add_argument("--sim-url", default=None, metavar="URL",
                        help="attach to a running simulator (`python -m exchanges.simulator`, e.g. "
                        "http://127.0.0.1:8765) instead of starting one; credentials from the environment, "
                        "as the simulator printed them")
    parser.add_argument("--db", default=None,
                        help="store: sqlite:///path, a .sqlite file path, or postgresql://user@host/db (default "
                        "sqlite:///data/trades.sqlite; with --nats sqlite:///data/<process name>.sqlite: this "
                        "process's own delivery ledger, never the streamers' database)")
    parser.add_argument("--nats", default=None, metavar="URL",
                        help="scale-out: take the key's events from the streamers on this NATS (e.g. "
                        "nats://127.0.0.1:4222) instead of opening a socket; start `tradesync-streamer` first")
    parser.add_argument("--nats-name", default=None, metavar="NAME",
                        help="with --nats: this process's name, stable across restarts (it resumes from its durable "
                        "position under it; default: the strategy id and the host)")
    parser.add_argument("--nats-namespace", default="tradesync", metavar="NS",
                        help="with --nats: the deployment's NATS names, as the streamers were given (default tradesync)")
    parser.add_argument("--duration", type=_positive_float, default=5.0,
                        help="seconds to run (default 5); 0 runs until Ctrl-C")
    parser.add_argument("--log-dir", default="logs", help="directory for logs (trade sync log under <dir>/trade_sync)")
    parser.add_argument("--rate", type=_rate, default=10.0,
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
    parser.add_argument("--status-every", type=_rate, default=5.0, metavar="SECONDS",
                        help="with --duration 0: print a status line this often (default 5)")
    parser.add_argument("--metrics-port", type=_port, default=None, metavar="PORT",
                        help="serve the pipeline's figures in Prometheus text format at http://HOST:PORT/metrics "
                        "(0: any free port, printed at start)")
    parser.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                        help="address the metrics endpoint listens on (default 127.0.0.1)")
    parser.add_argument("--pipeline", default="balanced", choices=("basic", "balanced", "high-performance"),
                        help="event pipeline preset: queue sizes, latency tracking, monitor (default balanced)")
    parser.add_argument("--perf-report", default=None, metavar="FILE",
                        help="at the end, write the pipeline's performance report (JSON) to FILE")
    parser.add_argument("--verbose", action="store_true", help="log INFO to the console")
    return parser


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535, got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, got {text}")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
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


def _make_log_dir(log_dir: str) -> None:
    """Create the log directory now, so one that cannot be made is a one-line error before anything starts."""
    try:
        (Path(log_dir) / "trade_sync").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FrameworkError(f"--log-dir {log_dir} cannot be created ({exc.strerror or exc}): "
                             "choose a directory you can write to") from None


def _require_credentials(exchange: str, *, live: bool) -> None:
    """Every credential the venue needs is in the environment, else a FrameworkError naming the first missing."""
    from exchanges import get_exchange
    from exchanges.connector import env_var

    for field in get_exchange(exchange).credentials_required:
        name = env_var(exchange, "default", field)
        if not os.environ.get(name, "").strip():
            how = "--live reads the venue's credentials from the environment" if live else \
                "the `export` lines `python -m exchanges.simulator` printed"
            raise FrameworkError(f"{name} is not set: export it ({how})")


def _reachable_simulator(url: str) -> str:
    """The base URL of a simulator that answers on it (`http://127.0.0.1:8765`), else a FrameworkError."""
    parts = urlsplit(url.rstrip("/"))
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        raise FrameworkError(f"--sim-url {url!r} is not a simulator URL: write it as http://127.0.0.1:PORT, "
                             "as `python -m exchanges.simulator` printed it")
    try:
        socket.create_connection((parts.hostname, port), timeout=2).close()
    except OSError as exc:
        raise FrameworkError(f"no simulator answers at {url} ({exc.strerror or exc}): "
                             "start one with `python -m exchanges.simulator`") from None
    return f"{parts.scheme}://{parts.netloc}"


def _simulator_serves(url: str, exchange: str, market: Market) -> None:
    """Ask a simulator with control endpoints whether it serves the key (one without them is taken on trust)."""
    query = urlencode({"exchange": exchange, "market": market.value})
    try:
        with urlopen(f"{url}/_sim/sessions?{query}", timeout=2):
            return
    except HTTPError as exc:
        if exc.code != 400:  # 404: control is off
            return
        try:
            said = json.loads(exc.read() or b"{}").get("error", "")
        except ValueError:
            said = ""
        raise FrameworkError(f"the simulator at {url} does not serve {exchange} {market.value}: {said}") from None
    except OSError:
        return  # it answered the connect: a slow control endpoint is no reason to refuse


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
        with _strategy_import(target):
            module_spec.loader.exec_module(module)
    else:
        candidates = [target] if "." in target else [f"strategies.{target}", target]
        module = None
        for name in candidates:
            try:
                with _strategy_import(name, missing_ok=name):
                    module = importlib.import_module(name)
                break
            except ModuleNotFoundError:  # the module itself is not there: try the next candidate
                pass
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


class _strategy_import:
    """Turns what a strategy's own code raises while it is imported into one line that says what to fix."""

    def __init__(self, target: str, missing_ok: str | None = None) -> None:
        self.target, self.missing_ok = target, missing_ok

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, FrameworkError):
            return False
        if isinstance(exc, ModuleNotFoundError) and self.missing_ok and (
            exc.name == self.missing_ok or self.missing_ok.startswith(f"{exc.name}.")
        ):
            return False  # the module itself is missing, not something it imports
        if isinstance(exc, SyntaxError):
            where = f"{Path(exc.filename or self.target).name}, line {exc.lineno}"
            raise FrameworkError(f"strategy {self.target} has a syntax error ({where}): {exc.msg}: fix it") from None
        if isinstance(exc, ImportError):
            raise FrameworkError(f"strategy {self.target} cannot import what it needs: {exc}: "
                                 "install it or fix the import") from None
        first = (str(exc).splitlines() or [""])[0]
        raise FrameworkError(f"strategy {self.target} failed while loading: {type(exc).__name__}: {first}: "
                             "fix the module") from None


def available_strategies() -> list[str]:
    folder = Path(__file__).resolve().parent.parent / "strategies"
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))


def default_symbol(exchange: str, market: Market) -> str:
    if exchange == "hyperliquid":
        return "BTC/USDC:USDC"
    return "BTC/USDT" if market is Market.SPOT else "BTC/USDT:USDT"


async def run(args: argparse.Namespace, strategy_cls: type[BaseStrategy], on_started: Any = None) -> int:
    """The job. `on_started(pool=, connector=, symbol=, strategy=, trading=, sim=)`, awaited once the strategy
    runs, may return a coroutine function that is awaited first thing at shutdown (scripts/run_dashboard.py)."""
    from exchanges.connector import ExchangeConnector
    from exchanges.simulator import Simulator
    from framework.orders import setup_websocket_trading
    from framework.publisher import start_publisher
    from framework.venue import Endpoints

    market = Market.parse(args.market)
    symbol = args.symbol or default_symbol(args.exchange, market)
    strategy_id = args.strategy_id or args.strategy.split(":")[0].split("/")[-1].removesuffix(".py").split(".")[-1]
    pool = ConnectionPool(store_url_of(args.db), args.log_dir, backfill_since_ms=args.backfill_since,
                          pipeline_config=getattr(args, "pipeline", None))
    metrics = None
    scaleout = shared = None
    if getattr(args, "nats", None):
        from framework.scaleout.shared_sim import shared_simulator
        from framework.scaleout.remote import ScaleOut

        scaleout = ScaleOut(args.nats, args.nats_name, args.nats_namespace)
        await scaleout.start()  # unreachable: one line, exit 1
        if not (args.live or args.sim_url):
            shared = await shared_simulator(scaleout.js, scaleout.ns)
            if shared is None:
                await scaleout.stop()
                raise ConfigError(f"no streamer hosts a simulator in namespace {scaleout.ns.name!r} on {args.nats}: "
                                  "start `tradesync-streamer` there first (or give --sim-url / --live)")
    sim = None if args.live or args.sim_url or scaleout else Simulator(exchanges=[args.exchange], seed=args.seed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    strategy = None
    trading = None
    on_stop = None
    publisher = None
    try:
        if sim is not None:
            await sim.start()
            connector = sim.connector(args.exchange, market)
            where = f"the simulator on 127.0.0.1:{sim.port}"
        elif args.sim_url:
            prefix = f"{args.sim_url}/{args.exchange}_{market.value}"  # the simulator's endpoints for a key
            endpoints = Endpoints(ws="ws" + prefix.removeprefix("http"), rest=prefix)
            connector = ExchangeConnector(args.exchange, market, endpoints=endpoints)
            where = f"the running simulator at {args.sim_url}"
        elif shared is not None:
            from framework.scaleout.shared_sim import simulator_connector

            connector = simulator_connector(shared, ConnectionKey(exchange=args.exchange, market=market))
            if connector is None:
                raise ConfigError(f"the streamers' simulator does not serve {args.exchange} {market.value}")
            where = f"the streamers' simulator at {shared['base_url']}"
        else:
            connector = ExchangeConnector(args.exchange, market)
            where = "the LIVE venue"
        if scaleout is not None:
            connector = scaleout.connector(connector)
            where += f", its events from the streamers on {args.nats} (process {scaleout.process})"
        watched = None  # a strategy that writes market data hooks and declares none watches the run's symbol
        if strategy_cls.market_data is None and _writes_market_hooks(strategy_cls):
            watched = {str(connector.key): [symbol]}
        places_orders = bool(getattr(strategy_cls, "places_orders", False))
        prefix = None
        if places_orders and args.exchange == "hyperliquid":  # cloids are hex: a hex prefix of the strategy id
            prefix = "0x" + hashlib.sha256(strategy_id.encode()).hexdigest()[:8]
        strategy = strategy_cls(strategy_id, [connector], symbols=[symbol], pool=pool, market_data=watched,
                                client_order_id_prefix=prefix)
        rules = connector.spec.orders
        closed = rules is None or market not in rules.markets
        if places_orders and closed:
            reason = rules.closed.get(market) if rules is not None else None
            print(f"tradesync: no order entry on {connector.key}" + (f" ({reason})" if reason else "")
                  + f"; {strategy_cls.__name__} only watches, the simulator makes the fills")
            places_orders = strategy.places_orders = False
        await pool.start()
        publisher = await start_publisher(pool)  # SYSTEM__ENABLE_WEBSOCKET_PUBLISHING (framework.publisher)
        trading = await setup_websocket_trading(pool) if places_orders else None
        print(f"tradesync: {strategy_cls.__name__} '{strategy_id}' on {connector.key} {symbol} against {where}; "
              f"store {pool.store.url}")
        if getattr(args, "metrics_port", None) is not None:
            metrics = _serve_metrics(pool, args.metrics_host, args.metrics_port)
            print(f"metrics: {metrics.url}", flush=True)
        await strategy.start()
        tune_gc()  # start-up's heap frozen, fewer young collections: shorter pauses on the event path
        if sim is not None and not places_orders:  # a strategy placing orders gets its own fills, not made-up ones
            sim.autopilot(args.exchange, market, symbol, rate=args.rate,
                          client_order_id_prefix=strategy.client_order_id_prefix)
        if on_started is not None:
            on_stop = await on_started(pool=pool, connector=connector, symbol=symbol, strategy=strategy,
                                       trading=trading, sim=sim)
        if args.duration:
            try:
                await asyncio.wait_for(stop.wait(), timeout=args.duration)
            except TimeoutError:
                pass
        else:
            await _until_stopped_with_status(pool, stop, args.status_every)
        deadline = loop.time() + args.shutdown_timeout
        if places_orders:
            strategy.places_orders = False  # no new quotes while its open ones are cancelled
            await strategy.cancel_all_orders(timeout=_left(loop, deadline) / 2)
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
        if publisher is not None:
            await publisher.stop(timeout=min(args.shutdown_timeout, 5.0))
        if on_stop is not None:
            await on_stop()
        await pool.stop(timeout=max(_left(loop, loop.time() + args.shutdown_timeout), 1.0))
        if scaleout is not None:
            await scaleout.stop()
        if metrics is not None:
            await asyncio.to_thread(metrics.stop)
        if sim is not None:
            await sim.stop()

    if getattr(args, "perf_report", None):
        written = pool.pipeline.monitor.export_performance_data(args.perf_report)
        print(f"performance report: {written}")

    stats = pool.trade_sync.stats()
    if sim is not None:
        print(f"fills made by the simulator: {len(sim.ledger(args.exchange, market).fills)}")
    print(f"fills stored: {stats['stored']}, duplicates skipped: {stats['duplicates']}, "
          f"order states written: {stats['orders']}, dead letters: {stats['dead_letters']}")
    if stats["spooled"]:
        print(f"waiting in the spool for the database: {stats['spooled']} events (written when it is back, "
              f"or at the next start)")
    if trading is not None:
        for line in order_lines(trading, sim.ledger(args.exchange, market) if sim is not None else None):
            print(line)
    summary = getattr(strategy, "summary", None)
    for line in summary() if callable(summary) else []:
        print(f"  {line}")
    for line in account_lines(strategy, sim.account(args.exchange, market) if sim is not None else None):
        print(line)
    print(f"strategy state: {strategy.state.value}")
    path = getattr(pool.store, "path", None)
    print(f"database: {pool.store.url}" + (f" ({path.resolve()})" if path else ""))
    print(f"trade sync log: {pool.sync_log.path}")
    if strategy.caught_up:
        print(f"fills read back from the store for the strategy: {strategy.caught_up}")
    return 0 if strategy.state.value == "stopped" else 1


async def _until_stopped_with_status(pool: ConnectionPool, stop: asyncio.Event, every: float) -> None:
    """Run until Ctrl-C / SIGTERM, printing one status line every `every` seconds."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
        except TimeoutError:
            print(status_line(pool.get_connection_status()), flush=True)


def account_lines(strategy: BaseStrategy, sim_account: Any = None) -> list[str]:
    """The balances and positions the strategy ended with (as the venue reported them), and whether they are
    the simulator's account."""
    balances = strategy.balances.all()
    positions = strategy.positions.all()
    if not balances and not positions:
        return []
    lines = ["balances:"]
    for (key, asset), b in sorted(balances.items()):
        lines.append(f"  {key} {asset}: free {_plain(b.free)}, locked {_plain(b.locked)}, total {_plain(b.total)}")
    open_positions = [(k, p) for k, p in sorted(positions.items()) if p.size]
    if open_positions or positions:
        lines.append("positions:" + ("" if open_positions else " none open"))
    for (key, symbol, side), p in open_positions:
        leg = "" if side == "net" else f" ({side} leg)"
        lines.append(f"  {key} {symbol}{leg}: {p.direction.value} {_plain(p.size)} @ {_plain(p.entry_price)}, "
                     f"unrealized PnL {_plain(p.unrealized_pnl)}, leverage {_plain(p.leverage)}, "
                     f"liquidation {_plain(p.liquidation_price)}")
    if sim_account is not None:
        differ = [asset for (_, asset), b in balances.items() if asset in sim_account.balances
                  and (b.free, b.locked, b.total) != (sim_account.balances[asset].free,
                                                       sim_account.balances[asset].locked,
                                                       sim_account.balances[asset].total)]
        differ += [symbol for (_, symbol, _), p in positions.items() if symbol in sim_account.positions
                   and p.signed_size != sim_account.positions[symbol].size]
        lines.append("the simulator's account: " + ("the same" if not differ else f"differs in {', '.join(differ)}"))
    return lines


def order_lines(trading: Any, ledger: Any = None) -> list[str]:
    """What order entry did: counts, latency per path, fallbacks, and (on the simulator) its orders against the
    simulator's book of record."""
    figures = trading.get_metrics()
    ack = figures["ack_latency"]
    paths = ", ".join(f"{path} {ack[path]['count']} (ack p50 {ack[path]['p50_ms']} ms, p99 {ack[path]['p99_ms']} ms)"
                      for path in ("websocket", "rest") if ack[path]["count"])
    lines = [f"orders placed: {figures['orders_placed']}, filled {figures['orders_filled']}, canceled "
             f"{figures['orders_canceled']}, rejected {figures['orders_rejected']}, unknown {figures['orders_unknown']}"
             f"; requests by path: {paths or 'none'}"]
    if figures["fallback_events"]:
        lines.append(f"REST fallbacks: {figures['fallback_events']}")
    if ledger is not None:
        ours = [o for g in trading.gateways.values() for o in g.orders.values()]
        names = {o.request.client_order_id for o in ours} | {o.client_order_id for o in ours}
        ids = {o.order_id for o in ours if o.order_id}
        # by venue order id (a cancel may rename the client id: Binance) or by client id (no id known yet)
        venue = [o for o in ledger.orders.values() if o.order_id in ids or o.client_order_id in names]
        wrong = [o for o in ours if o.order_id is not None and o.order_id not in ledger.orders]
        doubled = len(venue) - len({o.order_id for o in venue if o.order_id in ids}) - len(
            [o for o in ours if o.order_id is None and o.client_order_id in {v.client_order_id for v in venue}])
        lines.append(f"the simulator's orders: {len(venue)} of ours, " + (
            "the same as the gateway's" if not wrong and not doubled
            else f"{len(wrong)} missing, {doubled} doubled (a defect: please report it)"))
    return lines


def _plain(value: Any) -> str:
    """A Decimal as people write it (0, not 0E-8; no exponent); None as "-"."""
    if value is None:
        return "-"
    return "0" if value == 0 else format(value, "f")


def _writes_market_hooks(strategy_cls: type[BaseStrategy]) -> bool:
    return any(getattr(strategy_cls, hook) is not getattr(BaseStrategy, hook)
               for hook in ("on_ticker", "on_order_book", "on_public_trade", "on_candle"))


def status_line(status: dict) -> str:
    """`[12:00:05] connections: binance_spot connected; fills stored: 42, duplicates: 0, dead letters: 0`."""
    connections = ", ".join(f"{key} {info['status']}" for key, info in status["connections"].items()) or "none"
    public = status.get("public_connections", {})
    if public:
        connections += "; market data: " + ", ".join(f"{key} {info['state']}" for key, info in public.items())
    sync = status["trade_sync"]
    alerts = status.get("pipeline", {}).get("alerts", [])
    line = (f"[{time.strftime('%H:%M:%S')}] connections: {connections}; fills stored: {sync['stored']}, "
            f"duplicates: {sync['duplicates']}, dead letters: {sync['dead_letters']}")
    if alerts:
        line += "; alerts: " + ", ".join(f"{a['severity']} {a['name']} ({a['scope']})" for a in alerts)
    return line


def _serve_metrics(pool: ConnectionPool, host: str, port: int):
    from framework.pipeline.metrics import MetricsServer

    server = MetricsServer(pool.pipeline.monitor, host=host, port=port)
    server.add_source(lambda: pool.trading.prometheus_samples() if pool.trading is not None else [])
    try:
        server.start()
    except OSError as exc:
        raise ConfigError(f"--metrics-port {port}: cannot listen on {host}:{port} ({exc.strerror or exc}): "
                          "choose a free port, or 0 for any") from None
    return server


def _left(loop: asyncio.AbstractEventLoop, deadline: float) -> float:
    return max(deadline - loop.time(), 0.1)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    parser = build_parser(prog, chosen_exchange(argv, prog))
    args = parser.parse_args(argv)
    strategy_cls = checked_args(parser, args)
    configure_console("INFO" if args.verbose else "WARNING")
    return execute(parser, run(args, strategy_cls))


def chosen_exchange(argv: Sequence[str] | None, prog: str | None = None) -> str | None:
    """The --exchange given (lowercase), for the venue --help shows; None when there is none."""
    chosen = _Parser(prog=prog, add_help=False)
    chosen.add_argument("--exchange", default=None)
    return (chosen.parse_known_args(argv)[0].exchange or "").lower() or None


def checked_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> type[BaseStrategy]:
    """Check the run's options before anything starts (a mistake: one line naming it, exit 2) and load the
    strategy class; fills in the market."""
    from exchanges import EXCHANGES, get_exchange
    from exchanges.listings import check_symbol
    from framework.store import open_store

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
        symbol = args.symbol or default_symbol(args.exchange, market)
        refused = check_symbol(args.exchange, market, symbol, live=args.live)
        if refused:
            raise FrameworkError(refused)
        if args.nats:
            from framework.scaleout.jetstream import Namespace, check_name, default_process_name

            Namespace(args.nats_namespace)
            sid = args.strategy_id or args.strategy.split(":")[0].split("/")[-1].removesuffix(".py").split(".")[-1]
            args.nats_name = (check_name(args.nats_name, "--nats-name") if args.nats_name
                              else default_process_name(sid))
            if args.db is None:
                args.db = f"sqlite:///data/{args.nats_name}.sqlite"
        elif args.nats_name:
            raise FrameworkError("--nats-name needs --nats")
        if args.db is None:
            args.db = "sqlite:///data/trades.sqlite"
        open_store(store_url_of(args.db))  # an unsupported URL is a ConfigError; no I/O yet
        if args.live and args.sim_url:
            raise FrameworkError("--live and --sim-url exclude each other: choose the real venue or the simulator")
        if args.sim_url:
            args.sim_url = _reachable_simulator(args.sim_url)
            _simulator_serves(args.sim_url, args.exchange, market)
        if args.live or args.sim_url:
            _require_credentials(args.exchange, live=args.live)
        strategy_cls = load_strategy_class(args.strategy)
        if args.live and getattr(strategy_cls, "places_orders", False) and not args.confirm_live:
            raise FrameworkError(f"{strategy_cls.__name__} places real orders: with --live add --confirm-live to "
                                 f"trade on {args.exchange} with real money (or leave out --live to use the simulator)")
        _make_log_dir(args.log_dir)
    except FrameworkError as exc:
        parser.error(str(exc))
    if args.live:
        print(f"tradesync: {symbol} follows {args.exchange}'s {market.value} rules; its listing is not checked "
              "offline (no table of the live venue): a symbol it does not list brings no fills")
    return strategy_cls


def execute(parser: argparse.ArgumentParser, main_coroutine: Any) -> int:
    """Run the job; what the user has to fix is one line on stderr (exit 2), an outage exit 1."""
    try:
        return asyncio.run(main_coroutine)
    except (ConfigError, AuthError) as exc:  # the user's to fix: a credential, a setting
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:  # refused by the database (no such database, user): not an outage
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1 if exc.transient else 2
    except FrameworkError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 130


if __name__ == "__main__":
    sys.exit(main(prog="python -m framework.runner"))
