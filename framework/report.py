"""`trade_sync_report`: what the latest trade sync log says: fills stored and duplicates, connections, errors."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterator, Sequence


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


def latest_log(log_dir: Path) -> Path:
    logs = sorted((log_dir / "trade_sync").glob("trade_sync_*.log"))
    if not logs:
        raise FileNotFoundError(f"no trade sync log under {log_dir / 'trade_sync'}: run a strategy first")
    return logs[-1]


def summarize(records: Iterator[dict]) -> dict:
    fills: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    connections: dict[str, Counter] = defaultdict(Counter)
    problems: list[str] = []
    for record in records:
        f = record["fields"]
        if record["message"] == "trade storage":
            row = fills[(f.get("exchange", "?"), f.get("market", "?"), f.get("symbol", "?"), f.get("source", "?"))]
            row[0] += int(f.get("stored", 0))
            row[1] += int(f.get("duplicates", 0))
        elif record["message"] == "connection event":
            connections[f.get("key", "?")][f.get("status", "?")] += 1
        if record["level"] in ("WARNING", "ERROR", "CRITICAL"):
            detail = " ".join(f"{k}={v}" for k, v in f.items() if k != "raw")
            problems.append(f"{record['time']} {record['level']} {record['message']} {detail}".rstrip())
    return {"fills": dict(fills), "connections": dict(connections), "problems": problems}


def render(path: Path, summary: dict) -> str:
    out = [f"trade sync report for {path}", "", "fills stored / duplicates skipped:"]
    if not summary["fills"]:
        out.append("  (none)")
    for (exchange, market, symbol, source), (stored, dup) in sorted(summary["fills"].items()):
        out.append(f"  {exchange:<12} {market:<7} {symbol:<18} {source:<10} stored {stored:>8}  duplicates {dup:>6}")
    total_stored = sum(v[0] for v in summary["fills"].values())
    total_dup = sum(v[1] for v in summary["fills"].values())
    out.append(f"  total: stored {total_stored}, duplicates {total_dup}")
    out += ["", "connection events:"]
    if not summary["connections"]:
        out.append("  (none)")
    for key, counts in sorted(summary["connections"].items()):
        out.append(f"  {key:<24} " + ", ".join(f"{status} {n}" for status, n in sorted(counts.items())))
    out += ["", f"warnings and errors: {len(summary['problems'])}"]
    out += [f"  {line}" for line in summary["problems"][-50:]]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--log-dir", default="logs", help="the directory given to run_strategy (default: logs)")
    parser.add_argument("--file", default=None, help="a specific trade_sync_*.log instead of the latest")
    args = parser.parse_args(argv)
    try:
        path = Path(args.file) if args.file else latest_log(Path(args.log_dir))
        print(render(path, summarize(read_log(path))))
    except (FileNotFoundError, IsADirectoryError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m framework.report"))
