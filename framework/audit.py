"""`audit_trades`: the store against the venue's own REST history: missing, duplicated, mismatched fills."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from typing import Callable, Sequence

import attrs

from framework.backfill import Backfiller
from framework.console import configure_console
from framework.dead_letters import existing_store_url
from framework.errors import ConfigError, FrameworkError
from framework.events import ConnectionKey, Market, Trade, now_ms
from framework.store import TradeStore, open_store

COMPARED = ("side", "amount", "price", "cost", "fee_cost", "fee_currency", "timestamp", "order_id")


@attrs.frozen(kw_only=True)
class AuditReport:
    venue_count: int
    store_count: int
    missing: list[Trade]  # at the venue, not in the store
    duplicated: list[tuple[str, int]]  # (trade id, rows) stored more than once under different keys
    mismatched: list[tuple[Trade, Trade, list[str]]]  # (venue's, ours, differing fields)
    unknown: list[Trade]  # in the store, not at the venue

    @property
    def clean(self) -> bool:
        return not (self.missing or self.duplicated or self.mismatched or self.unknown)


def compare(venue: list[Trade], stored: list[Trade]) -> AuditReport:
    ours = {t.dedup_key: t for t in stored}
    theirs = {t.dedup_key: t for t in venue}
    mismatched = []
    for key, their in theirs.items():
        mine = ours.get(key)
        if mine is None:
            continue
        fields = [f for f in COMPARED if getattr(mine, f) != getattr(their, f)]
        if fields:
            mismatched.append((their, mine, fields))
    per_trade = Counter((t.symbol, t.trade_id) for t in stored)
    return AuditReport(
        venue_count=len(theirs),
        store_count=len(ours),
        missing=[t for k, t in theirs.items() if k not in ours],
        duplicated=[(tid, n) for (_, tid), n in per_trade.items() if n > 1],
        mismatched=mismatched,
        unknown=[t for k, t in ours.items() if k not in theirs],
    )


async def audit(store: TradeStore, backfiller: Backfiller, symbols: list[str], since: int,
                until: int | None = None) -> AuditReport:
    until = until or now_ms()
    venue: list[Trade] = []
    stored: list[Trade] = []
    for symbol in symbols:
        venue += await backfiller.fetch(symbol, since, until)
        stored += [t for t in await store.fetch_trades(backfiller.key, symbol) if since <= t.timestamp <= until]
    return compare(venue, stored)


def render(report: AuditReport) -> str:
    lines = [f"venue fills: {report.venue_count}, stored fills: {report.store_count}",
             f"missing: {len(report.missing)}, duplicated: {len(report.duplicated)}, "
             f"mismatched: {len(report.mismatched)}, not at the venue: {len(report.unknown)}"]
    lines += [f"  missing {t.symbol} trade {t.trade_id} order {t.order_id} at {t.timestamp}" for t in report.missing]
    lines += [f"  duplicated trade {tid}: {n} rows" for tid, n in report.duplicated]
    for theirs, ours, fields in report.mismatched:
        diffs = ", ".join(f"{f}: venue {getattr(theirs, f)} / store {getattr(ours, f)}" for f in fields)
        lines.append(f"  mismatched trade {theirs.trade_id}: {diffs}")
    lines += [f"  not at the venue: {t.symbol} trade {t.trade_id}" for t in report.unknown]
    return "\n".join(lines)


def _moment(option: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        """Milliseconds since the epoch, or a duration back from now: 90m, 24h, 7d."""
        units = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
        if text[-1:] in units and text[:-1].isdigit():
            return now_ms() - int(text[:-1]) * units[text[-1]]
        if text.isdigit():
            return int(text)
        raise argparse.ArgumentTypeError(f"{option} takes ms since the epoch or a duration back like 24h, not {text!r}")

    return parse


_since = _moment("--since")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    from exchanges import get_exchange
    from exchanges.connector import ExchangeConnector
    from framework.venue import Endpoints

    parser = _Parser(prog=prog, description=__doc__)
    parser.add_argument("--exchange", required=True)
    parser.add_argument("--market", required=True)
    parser.add_argument("--account", default="default")
    parser.add_argument("--since", required=True, type=_since, help="ms since the epoch, or 90m / 24h / 7d back")
    parser.add_argument("--until", type=_moment("--until"), default=None,
                        help="end of the window, as --since (default: now); e.g. when the strategy stopped")
    parser.add_argument("--symbol", action="append", help="symbols to audit (default: every one stored)")
    parser.add_argument("--db", default="sqlite:///data/trades.sqlite")
    parser.add_argument("--live", action="store_true", help="the real venue, credentials from the environment")
    parser.add_argument("--rest-url", help="a simulator's REST base for this key, e.g. http://127.0.0.1:8765/binance_spot"
                        " (credentials from the environment, as the simulator printed them)")
    args = parser.parse_args(argv)
    if not args.live and not args.rest_url:
        parser.error("say where the venue is: --live, or --rest-url of a running simulator")
    if args.until is not None and args.until <= args.since:
        parser.error(f"--until ({args.until}) must be after --since ({args.since})")
    try:
        store_url = existing_store_url(args.db)
    except ConfigError as exc:
        parser.error(str(exc))
    configure_console("WARNING")

    async def run() -> AuditReport:
        spec = get_exchange(args.exchange)
        market = Market.parse(args.market)
        endpoints = None if args.live else Endpoints(ws="", rest=args.rest_url)
        connector = ExchangeConnector(args.exchange, market, args.account, endpoints=endpoints)
        key = ConnectionKey(exchange=args.exchange, market=market, account=args.account)
        store = open_store(store_url)
        await store.start()
        backfiller = Backfiller(key, spec.backfill, connector.credentials, spec.stream.endpoints(market), endpoints)
        backfiller.resolve_owners = False  # fills are compared by their dedup key: no order query per fill
        try:
            symbols = args.symbol or await store.symbols(key)
            return await audit(store, backfiller, symbols, args.since, args.until)
        finally:
            await backfiller.close()
            await store.stop()

    try:
        report = asyncio.run(run())
    except FrameworkError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    print(render(report))
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main(prog="python -m framework.audit"))
