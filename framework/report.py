"""`trade_sync_report`: what trade sync logs say: fills stored, duplicates by cause, connections, failures, a chart."""

from __future__ import annotations

import argparse
import asyncio
import re
import shlex
import sys
from collections import Counter, defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Iterator, Sequence

# Keys whose stream carries every fill twice, so one duplicate per fill is expected: Bitget pushes each fill
# on `orders` and on `fill`; Binance USD-M sends TRADE_LITE, then ORDER_TRADE_UPDATE with the fee.
TWO_CHANNEL_KEYS = frozenset({("bitget", "spot"), ("bitget", "future"), ("binance", "future")})
_LOG_NAME = re.compile(r"trade_sync_(\d{8})_(\d{6})(?:_(\d+))?\.log")
_LOG_TIME = "%Y-%m-%d %H:%M:%S.%f"


def parse_line(line: str) -> dict | None:
    """One log line → {time, level, message, fields}; None for a line that is not ours."""
    parts = line.rstrip("\n").split(" | ", 3)
    if len(parts) < 3:
        return None
    fields: dict[str, str] = {}
    if len(parts) == 4:
        try:
            tokens = shlex.split(parts[3], posix=True)
        except ValueError:
            tokens = parts[3].split()
        for token in tokens:
            key, sep, value = token.partition("=")
            if sep:
                fields[key] = value
    return {"time": parts[0], "level": parts[1].strip(), "message": parts[2], "fields": fields}


def read_log(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            record = parse_line(line)
            if record is not None:
                yield record


def read_logs(paths: Iterable[Path]) -> Iterator[dict]:
    for path in paths:
        yield from read_log(path)


def _log_order(path: Path) -> tuple:
    """Start time, then the collision suffix (`_2` after the bare name, `_10` after `_9`)."""
    match = _LOG_NAME.fullmatch(path.name)
    return (match[1], match[2], int(match[3] or 1)) if match else ("", "", 0)


def logs_of(log_dir: Path, day: str | None = None) -> list[Path]:
    """Trade sync logs under `log_dir`, oldest first; only those of `day` (YYYYMMDD) when given."""
    folder = log_dir / "trade_sync"
    logs = sorted((p for p in folder.glob("trade_sync_*.log") if _LOG_NAME.fullmatch(p.name)), key=_log_order)
    if day is not None:
        logs = [p for p in logs if _log_order(p)[0] == day]
        if not logs:
            raise FileNotFoundError(f"no trade sync log of {day} under {folder}")
    if not logs:
        raise FileNotFoundError(f"no trade sync log under {folder}: run a strategy first")
    return logs


def latest_log(log_dir: Path) -> Path:
    return logs_of(log_dir)[-1]


def summarize(records: Iterator[dict]) -> dict:
    """Counts from log records. `fills`: (exchange, market, symbol, source) → [stored, duplicates];
    `duplicate_kinds`: the same keys → [same fill on a second channel, replayed]; `timeline`: (time, stored,
    duplicates) per storage line; `failures`: strategy failures; `problems`: every WARNING or ERROR line; `span`: first and last times."""
    fills: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    kinds: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    seen_twice: set[tuple] = set()  # fills of a two-channel key whose expected second copy was counted
    connections: dict[str, Counter] = defaultdict(Counter)
    timeline: list[tuple[str, int, int]] = []
    failures: list[str] = []
    problems: list[str] = []
    first = last = None
    for record in records:
        f = record["fields"]
        first, last = first or record["time"], record["time"]
        if record["message"] == "trade storage":
            key = (f.get("exchange", "?"), f.get("market", "?"), f.get("symbol", "?"), f.get("source", "?"))
            stored, dup = int(f.get("stored", 0)), int(f.get("duplicates", 0))
            fills[key][0] += stored
            fills[key][1] += dup
            second, replayed = _split_duplicates(key, f, dup, seen_twice)
            kinds[key][0] += second
            kinds[key][1] += replayed
            timeline.append((record["time"], stored, dup))
        elif record["message"] == "connection event":
            connections[f.get("key", "?")][f.get("status", "?")] += 1
        elif record["message"] == "strategy event" and f.get("status") == "failed":
            where = f" in {f['hook']}" if f.get("hook") else ""
            failures.append(f"{record['time']} {f.get('strategy', '?')}{where}: {f.get('error', '?')}")
        if record["level"] in ("WARNING", "ERROR", "CRITICAL"):
            detail = " ".join(f"{k}={v}" for k, v in f.items() if k != "raw")
            problems.append(f"{record['time']} {record['level']} {record['message']} {detail}".rstrip())
    return {"fills": dict(fills), "duplicate_kinds": dict(kinds), "connections": dict(connections),
            "timeline": timeline, "failures": failures, "problems": problems, "span": (first, last)}


def _split_duplicates(key: tuple, fields: dict[str, str], count: int, seen_twice: set[tuple]) -> tuple[int, int]:
    """(same fill on a second channel, replayed) of one storage line's duplicates.

    A REST copy of a stored fill is the backfill overlapping the stream (or an earlier backfill): a second
    channel. On a two-channel key the first stream copy of each fill is its second channel; any further
    copy — and every stream copy elsewhere (a venue's snapshot on reconnect, a frame sent twice) — is replayed.
    """
    if not count:
        return 0, 0
    exchange, market, symbol, source = key
    if source == "rest":
        return count, 0
    if (exchange, market) not in TWO_CHANNEL_KEYS:
        return 0, count
    listed = [i for i in fields.get("duplicate_ids", "").removesuffix("…").split(",") if i]
    replayed = 0
    for trade_id in listed:
        fill = (exchange, market, symbol, trade_id)
        if fill in seen_twice:
            replayed += 1
        else:
            seen_twice.add(fill)
    return count - replayed, replayed  # ids past the log's first 20 count as the expected second copy


def render(paths: Sequence[Path] | Path, summary: dict) -> str:
    paths = [paths] if isinstance(paths, Path) else list(paths)
    title = str(paths[0]) if len(paths) == 1 else f"{len(paths)} logs: " + ", ".join(p.name for p in paths)
    out = [f"trade sync report for {title}", "",
           "fills stored / duplicates skipped (same fill on a second channel, replayed):"]
    if not summary["fills"]:
        out.append("  (none)")
    kinds = summary.get("duplicate_kinds", {})
    for key, (stored, dup) in sorted(summary["fills"].items()):
        exchange, market, symbol, source = key
        second, replayed = kinds.get(key, (0, dup))
        out.append(f"  {exchange:<12} {market:<7} {symbol:<18} {source:<10} stored {stored:>8}  duplicates {dup:>6}"
                   f"  (second channel {second}, replayed {replayed})")
    total_stored = sum(v[0] for v in summary["fills"].values())
    total_dup = sum(v[1] for v in summary["fills"].values())
    total_second = sum(v[0] for v in kinds.values())
    total_replayed = sum(v[1] for v in kinds.values())
    out.append(f"  total: stored {total_stored}, duplicates {total_dup}: same fill on a second channel "
               f"{total_second} (expected: Bitget orders + fill, Binance futures TRADE_LITE, REST overlap), "
               f"replayed {total_replayed}")
    out += ["", "connection events:"]
    if not summary["connections"]:
        out.append("  (none)")
    for key, counts in sorted(summary["connections"].items()):
        out.append(f"  {key:<24} " + ", ".join(f"{status} {n}" for status, n in sorted(counts.items())))
    failures = summary.get("failures", [])
    out += ["", f"strategy failures: {len(failures)}"]
    out += [f"  {line}" for line in failures[-20:]]
    out += ["", f"warnings and errors: {len(summary['problems'])}"]
    out += [f"  {line}" for line in summary["problems"][-50:]]
    return "\n".join(out)


def _log_time(text: str) -> datetime:
    return datetime.strptime(text, _LOG_TIME)


async def _pnl_series(store_url: str, start: datetime, end: datetime) -> dict[str, list[tuple[datetime, Decimal]]]:
    """Realized PnL (net of fees paid in the quote currency) after each stored fill between `start` and `end`,
    per exchange, market and symbol, in the strategies' units (PositionTracker's book)."""
    from framework.store import open_store
    from strategies.position_tracker import Book

    store = open_store(store_url)
    await store.start()
    try:
        trades = await store.fetch_trades()
    finally:
        await store.stop()
    lo, hi = start.timestamp() * 1000, end.timestamp() * 1000
    books: dict[str, Book] = defaultdict(Book)
    series: dict[str, list[tuple[datetime, Decimal]]] = defaultdict(list)
    for trade in sorted((t for t in trades if lo <= t.timestamp <= hi), key=lambda t: (t.timestamp, t.seq or 0)):
        name = f"{trade.exchange} {trade.market.value} {trade.symbol}"
        book = books[name]
        book.apply(trade)
        quote = trade.symbol.split("/")[-1].split(":")[0]
        series[name].append((datetime.fromtimestamp(trade.timestamp / 1000), book.realized_pnl - book.fees[quote]))
    return dict(series)


def plot(summary: dict, out: Path, pnl: dict[str, list[tuple[datetime, Decimal]]] | None) -> None:
    """A PNG: fills stored and duplicates skipped over time (top), realized PnL per symbol (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True, constrained_layout=True)
    times = [_log_time(t) for t, _, _ in summary["timeline"]]
    stored, dups, total_s, total_d = [], [], 0, 0
    for _, s, d in summary["timeline"]:
        total_s += s
        total_d += d
        stored.append(total_s)
        dups.append(total_d)
    top.step(times, stored, where="post", label=f"fills stored ({total_s})", color="tab:blue", linewidth=3)
    top.step(times, dups, where="post", label=f"duplicates skipped ({total_d})", color="tab:orange",
             linestyle="--", linewidth=1.5)
    top.set_ylabel("fills (cumulative)")
    top.set_title("trade sync: fills over time")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    if pnl:
        for name, points in sorted(pnl.items()):
            bottom.step([p[0] for p in points], [float(p[1]) for p in points], where="post",
                        label=f"{name}: {points[-1][1].quantize(Decimal('0.01'))}")  # float only to draw
        bottom.axhline(0, color="grey", linewidth=0.8)
        bottom.legend(loc="upper left", fontsize="small")
    else:
        bottom.text(0.5, 0.5, "no stored fills in this period (pass --db to read the store)",
                    ha="center", va="center", transform=bottom.transAxes)
    bottom.set_ylabel("realized PnL, quote currency\n(net of quote-currency fees)")
    bottom.set_title("realized PnL over time")
    bottom.grid(alpha=0.3)
    bottom.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    fig.savefig(out, dpi=100)
    plt.close(fig)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _day(text: str) -> str:
    try:
        datetime.strptime(text, "%Y%m%d")
    except ValueError:
        raise argparse.ArgumentTypeError(f"--day takes YYYYMMDD, e.g. 20250131, not {text!r}") from None
    return text


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    parser = _Parser(prog=prog, description=__doc__)
    parser.add_argument("--log-dir", default="logs", help="the directory given to run_strategy (default: logs)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--log", "--file", dest="log", default=None, metavar="FILE",
                       help="a specific trade_sync_*.log instead of the latest")
    which.add_argument("--day", type=_day, default=None, help="every log of that day (YYYYMMDD), together")
    parser.add_argument("--plot", type=Path, default=None, metavar="OUT.png",
                        help="also write a PNG chart of fills and realized PnL over time")
    parser.add_argument("--db", default="sqlite:///data/trades.sqlite",
                        help="the store, for --plot's PnL (as run_strategy's --db; default data/trades.sqlite)")
    args = parser.parse_args(argv)
    try:
        paths = [Path(args.log)] if args.log else logs_of(Path(args.log_dir), args.day)[-1 if not args.day else 0:]
        summary = summarize(read_logs(paths))
    except (FileNotFoundError, IsADirectoryError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    print(render(paths, summary))
    if args.plot:
        return _write_plot(parser.prog, summary, args.plot, args.db)
    return 0


def _write_plot(prog: str, summary: dict, out: Path, db: str) -> int:
    from framework.dead_letters import existing_store_url
    from framework.errors import FrameworkError

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(f"{prog}: error: --plot needs matplotlib: pip install 'tradesync[plot]'", file=sys.stderr)
        return 2
    if not summary["timeline"]:
        print(f"{prog}: error: no fills in the log to plot", file=sys.stderr)
        return 1
    pnl = None
    try:
        start, end = (_log_time(t) for t in summary["span"])
        pnl = asyncio.run(_pnl_series(existing_store_url(db), start, end))
    except FrameworkError as exc:
        print(f"PnL not plotted: {exc}")
    try:
        plot(summary, out, pnl)
    except OSError as exc:
        print(f"{prog}: error: cannot write {out}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"chart: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m framework.report"))
