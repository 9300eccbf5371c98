"""`tradesync-streamer` (hold the sockets strategy processes want, publish to JetStream) and `tradesync-status`
(keys, their owning streamer, subscribers per process, consumer lag)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from framework.console import configure_console
from framework.errors import ConfigError, FrameworkError
from framework.events import ConnectionKey
from framework.scaleout.jetstream import (
    DEFAULT_NAMESPACE,
    DEFAULT_NATS,
    Namespace,
    bucket,
    check_name,
    connect,
    default_process_name,
    key_of,
)
from framework.scaleout.shared_sim import SIMULATOR_ENTRY, SIMULATOR_TTL, shared_simulator, simulator_connector


# the shared simulator (offline: one streamer hosts it, every process attaches) -----------------------------------
async def _host_simulator(js: Any, ns: Namespace, args: argparse.Namespace) -> tuple[Any, dict] | None:
    """Start the built-in simulator and publish it as the namespace's (None: another streamer's won the race)."""
    from exchanges.simulator import Simulator
    from exchanges.simulator.__main__ import _symbol, state

    sim = Simulator(seed=args.seed)
    await sim.start()
    shared = state(sim)
    config = await bucket(js, ns.config_bucket, SIMULATOR_TTL)
    try:
        await config.create(SIMULATOR_ENTRY, json.dumps(shared).encode())
    except Exception:  # noqa: BLE001 - another streamer hosts one: attach to it
        await sim.stop()
        return None
    if args.rate:
        for exchange in sim.exchanges:
            for market in sorted(sim.venue(exchange).markets):
                sim.autopilot(exchange, market, _symbol(exchange, market.value), rate=args.rate)
    return sim, shared


async def _keep_simulator_entry(js: Any, ns: Namespace, shared: dict) -> None:
    config = await bucket(js, ns.config_bucket, SIMULATOR_TTL)
    while True:
        await asyncio.sleep(SIMULATOR_TTL / 4)
        try:
            await config.put(SIMULATOR_ENTRY, json.dumps(shared).encode())
        except Exception:  # noqa: BLE001 - NATS away: next time
            pass


# tradesync-streamer ------------------------------------------------------------------------------------------------
def streamer_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Hold the private sockets that strategy processes on NATS ask for (one socket per "
        "key across all streamers), store every fill, and publish every event to JetStream. Run one or more; a "
        "standby takes a dead streamer's keys when its lease runs out. Without --live or --sim-url the first "
        "streamer hosts the built-in simulator for the whole namespace.")
    parser.add_argument("--nats", default=DEFAULT_NATS, metavar="URL", help=f"NATS with JetStream (default {DEFAULT_NATS})")
    parser.add_argument("--db", default="sqlite:///data/streamer.sqlite",
                        help="the store every fill is written to: with more than one streamer, one PostgreSQL "
                        "(postgresql://user@host/db) shared by all of them (default sqlite:///data/streamer.sqlite)")
    parser.add_argument("--namespace", default=DEFAULT_NAMESPACE,
                        help="NATS names (stream, KV buckets, subjects) of this deployment (default tradesync)")
    parser.add_argument("--name", default=None,
                        help="this streamer's name in leases and status, and of its spool under data/spool/ (fills "
                        "waiting while the store is down): give a stable one to find it again after a restart "
                        "(default: pid and host)")
    parser.add_argument("--live", action="store_true",
                        help="connect to the venues' real endpoints with credentials from the environment")
    parser.add_argument("--sim-url", default=None, metavar="URL",
                        help="a running simulator (tradesync-sim), credentials from the environment as it printed them")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="hosted simulator: orders of nobody's it fills per second per market, fills every "
                        "strategy on the symbol sees (default 0: only the strategies' own orders fill)")
    parser.add_argument("--seed", type=int, default=None, help="hosted simulator: random seed")
    parser.add_argument("--log-dir", default="logs", help="directory for logs (trade sync log under <dir>/trade_sync)")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds to run (default 0: until Ctrl-C / SIGTERM)")
    parser.add_argument("--status-every", type=float, default=10.0, metavar="SECONDS",
                        help="print a status line this often (default 10; 0: never)")
    parser.add_argument("--verbose", action="store_true", help="log INFO to the console")
    return parser


def streamer_main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    from framework.runner import _reachable_simulator, execute, store_url_of
    from framework.store import open_store

    parser = streamer_parser(prog)
    args = parser.parse_args(argv)
    try:
        if args.live and args.sim_url:
            raise FrameworkError("--live and --sim-url exclude each other: choose the real venues or a simulator")
        if args.sim_url:
            args.sim_url = _reachable_simulator(args.sim_url)
        Namespace(args.namespace)
        args.name = check_name(args.name, "--name") if args.name else default_process_name(f"streamer-{os.getpid()}")
        open_store(store_url_of(args.db))
        if args.duration < 0 or args.status_every < 0:
            raise FrameworkError("--duration and --status-every take seconds >= 0")
    except FrameworkError as exc:
        parser.error(str(exc))
    configure_console("INFO" if args.verbose else "WARNING")
    return execute(parser, _run_streamer(args))


async def _run_streamer(args: argparse.Namespace) -> int:
    from exchanges.connector import ExchangeConnector
    from framework.pool import ConnectionPool
    from framework.runner import store_url_of
    from framework.scaleout.streamer import Streamer
    from framework.venue import Endpoints

    ns = Namespace(args.namespace)
    probe = await connect(args.nats, f"tradesync-streamer-{args.name}")  # unreachable: one line, exit 1
    js = probe.jetstream()
    sim, shared, where = None, None, ""
    if args.live:
        def connector_for(key: ConnectionKey) -> Any:
            return ExchangeConnector(key.exchange, key.market, account=key.account)
        where = "the LIVE venues"
    elif args.sim_url:
        def connector_for(key: ConnectionKey) -> Any:
            prefix = f"{args.sim_url}/{key.exchange}_{key.market.value}"
            return ExchangeConnector(key.exchange, key.market, account=key.account,
                                     endpoints=Endpoints(ws="ws" + prefix.removeprefix("http"), rest=prefix))
        where = f"the simulator at {args.sim_url}"
    else:
        shared = await shared_simulator(js, ns)
        if shared is None:
            hosted = await _host_simulator(js, ns, args)
            if hosted is not None:
                sim, shared = hosted
            else:
                shared = await shared_simulator(js, ns)
        if shared is None:
            raise ConfigError("no simulator to attach to: give --sim-url or --live")
        state = shared

        def connector_for(key: ConnectionKey) -> Any:
            return simulator_connector(state, key)
        where = ("the built-in simulator it hosts for the namespace" if sim is not None
                 else "the namespace's simulator") + f" ({shared['base_url']})"
    # A spool of its own (fills that wait while the store is down): streamers on one host may share a database URL.
    pool = ConnectionPool(store_url_of(args.db), args.log_dir, spool_dir=Path("data") / "spool" / args.name)
    streamer = Streamer(args.nats, pool, connector_for, name=args.name, namespace=ns)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    keeper = None
    try:
        await streamer.start()
        if sim is not None:
            keeper = asyncio.create_task(_keep_simulator_entry(js, ns, shared), name="simulator-entry")
        print(f"tradesync-streamer '{args.name}' on {args.nats} (namespace {ns.name}, lease {streamer.lease_seconds:g} s) "
              f"against {where}; store {pool.store.url}", flush=True)
        started = time.monotonic()
        while not stop.is_set():
            wait = args.status_every or None
            if args.duration:
                wait = min(wait or args.duration, max(args.duration - (time.monotonic() - started), 0.01))
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
            except TimeoutError:
                pass
            if args.duration and time.monotonic() - started >= args.duration:
                break
            if args.status_every and not stop.is_set():
                print(streamer_line(streamer.status()), flush=True)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if keeper is not None:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        await streamer.stop()
        if sim is not None:
            try:
                config = await js.key_value(ns.config_bucket)
                await config.delete(SIMULATOR_ENTRY)
            except Exception:  # noqa: BLE001 - it expires
                pass
            await sim.stop()
        await probe.close()
    status = streamer.status()
    stats = pool.trade_sync.stats()
    print(f"published {status['published']} events ({status['duplicates_dropped_by_nats']} dropped by NATS as "
          f"repeats); fills stored {stats['stored']}, duplicates skipped {stats['duplicates']}")
    return 0


def streamer_line(status: dict) -> str:
    owned = ", ".join(f"{key} ({len(info['subscribers'])} processes)" for key, info in status["owned"].items())
    return (f"streamer {status['streamer']}: owns {owned or 'no key'}; published {status['published']}, "
            f"waiting {status['waiting']}, NATS {status['nats']}")


# tradesync-status --------------------------------------------------------------------------------------------------
def status_main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    from framework.runner import execute

    parser = argparse.ArgumentParser(prog=prog, description="Keys on NATS: their owning streamer, the processes "
                                     "subscribed to each, and each durable consumer's lag.")
    parser.add_argument("--nats", default=DEFAULT_NATS, metavar="URL", help=f"default {DEFAULT_NATS}")
    parser.add_argument("--namespace", default=DEFAULT_NAMESPACE, help="default tradesync")
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    args = parser.parse_args(argv)
    try:
        Namespace(args.namespace)
    except FrameworkError as exc:
        parser.error(str(exc))
    configure_console("ERROR")
    return execute(parser, _status(args))


async def read_status(client: Any, ns: Namespace) -> dict[str, Any]:
    """{keys: {key: {owner, subscribers: {process: {strategies, heartbeat_ms_ago, consumer}}}}, stream: {...}}."""
    js = client.jetstream()
    now = int(time.time() * 1000)
    keys: dict[str, dict[str, Any]] = {}
    for name, fill in ((ns.owners_bucket, "owner"), (ns.interest_bucket, "interest")):
        try:
            kv = await js.key_value(name)
            entries = await kv.keys()
        except Exception:  # noqa: BLE001 - no bucket yet, or empty
            continue
        for entry_key in entries:
            try:
                record = json.loads((await kv.get(entry_key)).value)
            except Exception:  # noqa: BLE001 - gone meanwhile
                continue
            if fill == "owner":
                key = str(key_of(entry_key))
                keys.setdefault(key, {"owner": None, "subscribers": {}})["owner"] = {
                    "streamer": record.get("streamer"), "host": record.get("host"), "pid": record.get("pid"),
                    "since_ms": record.get("since"), "renewed_ms_ago": now - record.get("renewed", now)}
            else:
                key = str(key_of(entry_key.rsplit(".", 1)[0]))
                keys.setdefault(key, {"owner": None, "subscribers": {}})["subscribers"][record["process"]] = {
                    "strategies": sorted(record.get("strategies") or {}), "host": record.get("host"),
                    "pid": record.get("pid"), "heartbeat_ms_ago": now - record.get("at", now), "consumer": None}
    stream: dict[str, Any] = {"name": ns.stream}
    try:
        info = await js.stream_info(ns.stream)
        stream.update(messages=info.state.messages, last_seq=info.state.last_seq)
        consumers = await js.consumers_info(ns.stream)
    except Exception:  # noqa: BLE001 - no stream yet
        consumers = []
    for consumer in consumers:
        process, _, rest = (consumer.name or "").partition("__")
        key = str(key_of(rest.replace("_at_", "="))) if rest else None
        lag = {"durable": consumer.name, "lag": consumer.num_pending, "unacknowledged": consumer.num_ack_pending,
               "redelivered": consumer.num_redelivered}
        if key in keys and process in keys[key]["subscribers"]:
            keys[key]["subscribers"][process]["consumer"] = lag
        else:
            stream.setdefault("idle_consumers", []).append(lag)
    return {"namespace": ns.name, "keys": dict(sorted(keys.items())), "stream": stream}


async def _status(args: argparse.Namespace) -> int:
    client = await connect(args.nats, "tradesync-status")
    try:
        status = await read_status(client, Namespace(args.namespace))
    finally:
        await client.close()
    if args.json:
        print(json.dumps(status, indent=1))
        return 0
    print(f"namespace {status['namespace']} on {args.nats}: stream {status['stream']['name']}, "
          f"{status['stream'].get('messages', 0)} messages")
    if not status["keys"]:
        print("no keys: no strategy process has declared interest and no streamer owns a key")
    for key, info in status["keys"].items():
        owner = info["owner"]
        said = (f"owned by {owner['streamer']} (pid {owner['pid']} on {owner['host']}, renewed "
                f"{owner['renewed_ms_ago'] / 1000:.1f} s ago)" if owner else "NO OWNER (is a streamer running?)")
        print(f"{key}: {said}")
        for process, sub in sorted(info["subscribers"].items()):
            consumer = sub["consumer"]
            lag = (f"lag {consumer['lag']}, unacknowledged {consumer['unacknowledged']}" if consumer
                   else "no consumer yet")
            print(f"  {process} (pid {sub['pid']} on {sub['host']}): strategies {', '.join(sub['strategies']) or '-'}; "
                  f"{lag}; heartbeat {sub['heartbeat_ms_ago'] / 1000:.1f} s ago")
    for idle in status["stream"].get("idle_consumers", []):
        print(f"  (durable {idle['durable']}: no live process; {idle['lag']} events wait for it)")
    return 0


if __name__ == "__main__":
    sys.exit(streamer_main(prog="tradesync-streamer"))
