"""Order entry benchmark: place→ack latency over WebSocket and over REST, in the same run, against the simulator
(its own process), and orders/s sustained per key within the venue's limits.

For each venue with WebSocket trading (Binance spot and USD-M, Bybit spot, Gate spot, Hyperliquid) and the REST-only
ones (MEXC spot; Bitget spot, whose WS trading is granted per account), alternating WS and REST rounds:

- tradesync: a strategy places passive limit orders one after the other (they rest: an ack, not a fill, is timed),
  through the gateway — WS first, then `force_websocket_preference(False)` for REST; the gateway's own ack latency
  (send → the venue's answer) p50 / p99;
- the peer a user would pick instead on the same feed: ccxt.pro `create_order_ws` and ccxt `create_order`,
  timed around the call (Binance spot and Bybit spot, where ccxt.pro has WS order entry and our offline client
  can point at the simulator);
- sustained: orders in flight at once (20) for a few seconds within the venue's rate budget (the gateway's token
  bucket: what the venue allows), orders/s acknowledged.

    python bench/orders.py [--orders 200] [--rounds 2] [--sustain-seconds 3] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exchanges.connector import Credentials, ExchangeConnector  # noqa: E402
from framework.console import configure_console  # noqa: E402
from framework.orders import WebSocketTradingConfig, setup_websocket_trading  # noqa: E402
from framework.orders.metrics import percentile  # noqa: E402
from framework.pool import ConnectionPool  # noqa: E402
from framework.strategy import BaseStrategy  # noqa: E402
from framework.venue import Endpoints  # noqa: E402

PAIRS = [  # (key, symbol, client id prefix)
    ("binance_spot", "BTC/USDT", "bn"), ("binance_future", "BTC/USDT:USDT", "bn"), ("bybit_spot", "BTC/USDT", "bb"),
    ("gate_spot", "BTC/USDT", "gt"), ("hyperliquid_future", "BTC/USDC:USDC", "0xbe"),
    ("mexc_spot", "BTC/USDT", "mx"), ("bitget_spot", "BTC/USDT", "bg"),
]
PRICE = Decimal("30000")  # a passive buy far under the simulator's ~65,000 book: it rests, never fills


class Placer(BaseStrategy):
    pass


def start_simulator(tmp: Path) -> tuple[subprocess.Popen, dict]:
    state = tmp / "sim.json"
    child = subprocess.Popen([sys.executable, "-m", "exchanges.simulator", "--state-file", str(state), "--seed", "1"],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        if state.exists():
            return child, json.loads(state.read_text())
        time.sleep(0.05)
    child.kill()
    raise SystemExit("the simulator did not start")


def connector(entry: dict) -> ExchangeConnector:
    return ExchangeConnector(entry["exchange"], entry["market"], credentials=Credentials(**entry["credentials"]),
                             endpoints=Endpoints(ws=entry["ws"], rest=entry["rest"]), backfill=False)


async def tradesync_round(strategy: Placer, trading: Any, symbol: str, count: int, websocket: bool) -> list[float]:
    """`count` orders one after the other; the gateway's ack latency of each (from the send: a wait for the rate
    budget is not in it)."""
    from framework.orders.channel import TokenBucket

    await trading.force_websocket_preference(websocket)
    channel = trading.gateways[strategy.exchange_connectors[0].key].channel
    kept = channel._bucket if channel is not None else None
    if channel is not None:  # one order at a time: the venue's budget would only space them out (not timed)
        channel._bucket = TokenBucket(1e9, 10**9)
    series = f"ack:{'websocket' if websocket else 'rest'}"
    trading.metrics.latency.pop(series, None)  # this round's samples only (the series keeps the newest 10,000)
    orders = []
    for _ in range(count):
        orders.append(await strategy.place_order(symbol, "buy", "0.001", price=PRICE))
    samples = list(trading.metrics.latency.get(series, ()))
    await strategy.cancel_all_orders(timeout=60)
    if channel is not None:
        channel._bucket = kept
    return samples


async def sustained(strategy: Placer, trading: Any, symbol: str, seconds: float, lifted: bool = False) -> float:
    """Orders acknowledged a second with 20 in flight; `lifted`: the WS rate budget lifted (what the gateway and
    the simulator can do), else the venue's."""
    from framework.orders.channel import TokenBucket

    await trading.force_websocket_preference(True)
    channel = trading.gateways[strategy.exchange_connectors[0].key].channel
    kept = channel._bucket if channel is not None else None
    if lifted and channel is not None:
        channel._bucket = TokenBucket(1e9, 10**9)
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            order = await strategy.place_order(symbol, "buy", "0.001", price=PRICE)
            if not order.final:
                done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(20)))
    rate = done / (time.perf_counter() - started)
    if channel is not None:
        channel._bucket = kept
    await strategy.cancel_all_orders(timeout=120)
    return rate


async def ccxt_round(entry: dict, symbol: str, count: int, websocket: bool) -> list[float] | None:
    """ccxt.pro create_order_ws / ccxt create_order on the same simulator (None where it cannot be pointed)."""
    import ccxt.pro as pro

    exchange, market = entry["exchange"], entry["market"]
    if exchange not in ("binance", "bybit") or market != "spot":
        return None
    creds = entry["credentials"]
    client = getattr(pro, exchange)({"apiKey": creds["api_key"], "secret": creds["secret"], "enableRateLimit": False,
                                     "options": {"defaultType": "spot"}})  # unthrottled, as our client offline
    rest_base, ws_base = entry["rest"], entry["ws"]
    client.urls["api"] = _point(client.urls["api"], rest_base, ws_base, exchange)
    client.set_markets([_market(symbol, exchange)])
    samples = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            if websocket:
                order = await client.create_order_ws(symbol, "limit", "buy", 0.001, 30000.0)
            else:
                order = await client.create_order(symbol, "limit", "buy", 0.001, 30000.0)
            samples.append((time.perf_counter() - started) * 1000)
            try:
                await client.cancel_order(order["id"], symbol)
            except Exception:  # noqa: BLE001 - the cancel is housekeeping, not measured
                pass
    finally:
        await client.close()
    return samples


def _point(urls: Any, rest: str, ws: str, exchange: str) -> Any:
    if isinstance(urls, dict):
        return {k: _point(v, rest, ws, exchange) for k, v in urls.items()}
    if not isinstance(urls, str):
        return urls
    if urls.startswith("ws"):
        if exchange == "binance":
            return ws  # the spot WS-API is the socket our simulator serves at the key's root
        return ws + "/v5/trade" if "trade" in urls else ws
    from urllib.parse import urlsplit

    return rest + urlsplit(urls.replace("{hostname}", "bybit.com")).path


def _market(symbol: str, exchange: str) -> dict:
    base, quote = symbol.split("/")
    return {"id": base + quote, "symbol": symbol, "base": base, "quote": quote, "baseId": base, "quoteId": quote,
            "type": "spot", "spot": True, "swap": False, "future": False, "option": False, "contract": False,
            "linear": None, "inverse": None, "settle": None, "settleId": None, "contractSize": None,
            "active": True, "precision": {"amount": 0.00001, "price": 0.01},
            "limits": {"amount": {}, "price": {}, "cost": {}},
            "info": {"orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"], "filters": []} if exchange == "binance" else {}}


def row(name: str, samples: list[float] | None) -> str:
    if not samples:
        return f"  {name:<44} {'-':>8} {'-':>8} {'-':>6}"
    return f"  {name:<44} {percentile(samples, 0.5):>8.2f} {percentile(samples, 0.99):>8.2f} {len(samples):>6}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=200, help="orders per path per round (default 200)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sustain-seconds", type=float, default=3.0)
    parser.add_argument("--quick", action="store_true", help="30 orders, 1 round, 1 s sustained")
    args = parser.parse_args()
    if args.quick:
        args.orders, args.rounds, args.sustain_seconds = 30, 1, 1.0
    configure_console("ERROR")
    tmp = Path(tempfile.mkdtemp(prefix="bench-orders-"))
    child, state = start_simulator(tmp)
    print(f"order entry benchmark: simulator pid {child.pid} on {state['base_url']}, {args.orders} orders a path a "
          f"round, {args.rounds} rounds; latency in ms (place → the venue's answer)")
    try:
        pool = ConnectionPool(f"sqlite:///{tmp}/bench.db", log_dir=tmp)
        await pool.start()
        config = WebSocketTradingConfig(max_concurrent_orders=50, ack_timeout_seconds=5.0)
        trading = await setup_websocket_trading(pool, config)
        results = []
        for key, symbol, prefix in PAIRS:
            entry = state["keys"][key]
            strategy = Placer(f"bench-{key}", [connector(entry)], symbols=[symbol], pool=pool,
                              client_order_id_prefix=prefix)
            await strategy.start()
            ws, rest, peer_ws, peer_rest = [], [], [], []
            for _ in range(args.rounds):
                ws += await tradesync_round(strategy, trading, symbol, args.orders, True)
                rest += await tradesync_round(strategy, trading, symbol, args.orders, False)
                peer_ws += await ccxt_round(entry, symbol, args.orders, True) or []
                peer_rest += await ccxt_round(entry, symbol, args.orders, False) or []
            rate = await sustained(strategy, trading, symbol, args.sustain_seconds)
            capacity = await sustained(strategy, trading, symbol, args.sustain_seconds, lifted=True)
            gateway = trading.gateways[strategy.exchange_connectors[0].key]
            channel = gateway.rules.ws
            budget = f"{channel.rate:g}/s" if channel is not None and gateway.channel is not None else "REST"
            results.append((key, ws, rest, peer_ws, peer_rest, rate, budget, capacity))
            await strategy.stop()
        await pool.stop()
    finally:
        child.terminate()
        child.wait(10)
    print(f"  {'':<44} {'p50':>8} {'p99':>8} {'n':>6}")
    for key, ws, rest, peer_ws, peer_rest, rate, budget, capacity in results:
        print(f"{key}")
        print(row("tradesync over WebSocket", ws))
        print(row("tradesync over REST", rest))
        if peer_ws or peer_rest:
            print(row("ccxt.pro create_order_ws", peer_ws))
            print(row("ccxt create_order (REST)", peer_rest))
        if ws and rest:
            print(f"  WS vs REST p50: {percentile(rest, 0.5) / percentile(ws, 0.5):.1f}x faster over WebSocket")
        print(f"  sustained: {rate:.1f} orders/s acknowledged within the venue's budget ({budget}); "
              f"{capacity:.0f}/s with it lifted")


if __name__ == "__main__":
    if os.environ.get("PYTHONASYNCIODEBUG"):
        print("note: asyncio debug mode slows everything down")
    asyncio.run(main())
