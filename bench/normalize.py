"""Normalize benchmark: our `SPEC.normalize` against ccxt's own parser on the same private fill messages.

The messages are the venues' documented fill frames (tests/data/exchanges/*.samples.json; Binance's
fills from ccxt's own captured frames, as in exchanges/binance/normalize.py). Ours yields exact
Decimals and, where the frame carries it, the order update too; ccxt's parser is run with its default
float numbers. Usage: `python bench/normalize.py [--seconds 0.5]`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ccxt.pro as ccxtpro  # noqa: E402

from exchanges import get_exchange  # noqa: E402
from framework.backfill import offline_market  # noqa: E402
from framework.events import Market  # noqa: E402

DATA = ROOT / "tests" / "data" / "exchanges"

BINANCE_SPOT_FILL = {"subscriptionId": 0, "event": {
    "e": "executionReport", "E": 1611063861489, "s": "BNBUSDT", "c": "m4M6AD5MF3b1ERe65l4SPq", "S": "BUY",
    "o": "MARKET", "f": "GTC", "q": "2.00000000", "p": "0.00000000", "P": "0.00000000", "F": "0.00000000",
    "g": -1, "C": "", "x": "TRADE", "X": "PARTIALLY_FILLED", "r": "NONE", "i": 1296882607, "l": "0.33200000",
    "z": "0.33200000", "L": "46.86600000", "n": "0.00033200", "N": "BNB", "T": 1611063861488, "t": 109747654,
    "I": 2696953381, "w": False, "m": False, "M": True, "O": 1611063861488, "Z": "15.55951200",
    "Y": "15.55951200", "Q": "0.00000000"}}
BINANCE_FUTURE_FILL = {"e": "ORDER_TRADE_UPDATE", "E": 1612095165368, "T": 1612095165362, "o": {
    "s": "BTCUSDT", "c": "pb2jD6ZQHpfzSdUac8VqMK", "S": "SELL", "o": "MARKET", "f": "GTC", "q": "0.001",
    "p": "0", "ap": "33468.46000", "sp": "0", "x": "TRADE", "X": "FILLED", "i": 13351197194, "l": "0.001",
    "z": "0.001", "L": "33468.46", "N": "USDT", "n": "0.01338738", "T": 1612095165362, "t": 458032604,
    "b": "0", "a": "0", "m": False, "R": False, "wt": "CONTRACT_PRICE", "ot": "MARKET", "ps": "BOTH",
    "cp": False, "rp": "0", "pP": False, "si": 0, "ss": 0}}


def _market(market_id: str, symbol: str, kind: str, contract_size: str | None = None) -> dict:
    market = Market.SPOT if kind == "spot" else Market.FUTURE
    return offline_market(market, symbol, market_id, Decimal(contract_size) if contract_size else None)


def _ccxt(name: str, markets: list[dict]) -> Any:
    exchange = getattr(ccxtpro, name)()
    exchange.set_markets(markets)
    return exchange


class _Client:
    """Stands in for ccxt's socket client: takes what a handler resolves."""

    def resolve(self, value: Any, message_hash: str) -> None:
        pass


def _samples(venue: str) -> list[dict]:
    return [s for s in json.loads((DATA / f"{venue}.samples.json").read_text(), parse_float=Decimal)
            if s["kind"] == "trade" and "raw" in s]


def cases() -> list[tuple]:
    """(venue, market, message, ccxt parse of the same message) for every fill frame we have."""
    out = []
    binance = _ccxt("binance", [_market("BNBUSDT", "BNB/USDT", "spot"), _market("BTCUSDT", "BTC/USDT:USDT", "swap")])
    out.append(("binance", "spot", BINANCE_SPOT_FILL,
                lambda: binance.parse_ws_trade(BINANCE_SPOT_FILL["event"])))
    out.append(("binance", "future", BINANCE_FUTURE_FILL, lambda: binance.parse_ws_trade(BINANCE_FUTURE_FILL)))
    # ccxt's whole handling of the same frame (order + trade, as ours yields both): handle_order_update.
    client = _Client()
    out.append(("binance", "spot", BINANCE_SPOT_FILL,
                lambda: binance.handle_order_update(client, BINANCE_SPOT_FILL["event"]), "handle_order_update"))
    out.append(("binance", "future", BINANCE_FUTURE_FILL,
                lambda: binance.handle_order_update(client, BINANCE_FUTURE_FILL), "handle_order_update"))

    bybit = _ccxt("bybit", [_market("BTCUSDT", "BTC/USDT:USDT", "swap"), _market("ICPUSDT", "ICP/USDT:USDT", "swap")])
    for sample in _samples("bybit"):
        frame = sample["raw"]
        out.append(("bybit", sample["market"], frame, lambda f=frame: [bybit.parse_trade(r) for r in f["data"]]))

    gate = _ccxt("gate", [_market("BTC_USDT", "BTC/USDT", "spot"), _market("BTC_USD", "BTC/USD:USDT", "swap")])
    for sample in _samples("gate"):
        frame = sample["raw"]
        out.append(("gate", sample["market"], frame, lambda f=frame: [gate.parse_trade(r) for r in f["result"]]))

    bitget = _ccxt("bitget", [_market("BTCUSDT", "BTC/USDT:USDT", "swap")])
    for sample in _samples("bitget"):
        frame = sample["raw"]
        out.append(("bitget", sample["market"], frame,
                    lambda f=frame: [bitget.parse_ws_trade(r) for r in f["data"]]))

    hyperliquid = _ccxt("hyperliquid", [_market("BTC", "BTC/USDC:USDC", "swap")])
    for sample in _samples("hyperliquid"):
        frame = sample["raw"]
        out.append(("hyperliquid", sample["market"], frame,
                    lambda f=frame: [hyperliquid.parse_ws_trade(r) for r in f["data"]["fills"]]))

    mexc = _ccxt("mexc", [_market("MXUSDT", "MX/USDT", "spot"), _market("BTC_USDT", "BTC/USDT:USDT", "swap", "0.0001")])
    for sample in _samples("mexc"):
        frame = sample["raw"]
        parse = (lambda f=frame: mexc.parse_ws_trade(f["d"])) if sample["market"] == "spot" else None
        out.append(("mexc", sample["market"], frame, parse))
    return out


def rate(fn: Callable[[], Any], seconds: float) -> float:
    """Calls per second of `fn`, measured for about `seconds`."""
    fn()
    n, start = 0, time.perf_counter()
    batch = 200
    while True:
        for _ in range(batch):
            fn()
        n += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=0.5, help="time per measurement (default 0.5)")
    args = parser.parse_args()
    print(f"{'venue':<12} {'market':<7} {'ours msg/s':>11} {'events':>7} {'ccxt msg/s':>11} {'ours/ccxt':>9}  ccxt call")
    for venue, market, message, ccxt_parse, *label in cases():
        normalize = get_exchange(venue).normalize
        m = Market.parse(market)
        events = normalize(message, m)
        ours = rate(lambda: normalize(message, m), args.seconds)
        theirs = None
        if ccxt_parse is not None:
            try:
                ccxt_parse()
                theirs = rate(ccxt_parse, args.seconds)
            except Exception as exc:  # noqa: BLE001 - a parser that cannot read this frame is reported, not fatal
                print(f"  (ccxt {venue} {market}: {type(exc).__name__}: {exc})")
        kinds = "+".join(sorted({type(e).__name__[0] for e in events}))  # T: Trade, O: OrderUpdate
        ratio = f"{ours / theirs:>8.1f}x" if theirs else f"{'-':>9}"
        call = label[0] if label else ("parse_ws_trade" if venue in ("binance", "bitget", "hyperliquid", "mexc")
                                       else "parse_trade")
        print(f"{venue:<12} {market:<7} {ours:>11,.0f} {len(events):>3} {kinds:<3} "
              f"{(f'{theirs:,.0f}' if theirs else 'n/a'):>11} {ratio}  {call if theirs else ''}")


if __name__ == "__main__":
    main()
