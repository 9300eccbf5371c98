"""`replay_dead_letters`: normalize the kept frames again (after a fix) and store what they hold."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
from decimal import Decimal
from typing import Any, Sequence

from framework.console import configure_console
from framework.errors import ConfigError, FrameworkError, NormalizeError
from framework.events import ConnectionKey, OrderUpdate, Trade, now_ms
from framework.spool import decode
from framework.store import TradeStore, open_store


def frame_of(raw: str | None) -> Any:
    """The stored text back as the frame normalize saw: JSON with exact decimals, bytes, or plain text."""
    if raw is None:
        return None
    if raw.startswith("base64:"):
        return base64.b64decode(raw[len("base64:"):])
    try:
        return json.loads(raw, parse_float=Decimal)
    except ValueError:
        return raw


def events_of(letter: dict) -> list[Trade | OrderUpdate]:
    """What a dead letter holds: a refused store row (kept as [kind, fields]) or a venue frame."""
    from exchanges import get_exchange
    from exchanges.mock import normalize_mock

    raw = letter["raw"]
    if raw and raw.startswith("[") and raw.split(",", 1)[0].strip('["') in ("trade", "duplicate", "order"):
        kind, item = decode(raw)
        return [item]
    key = ConnectionKey.parse(letter["connection_key"])
    frame = frame_of(raw)
    try:
        normalize = get_exchange(key.exchange).normalize
    except ConfigError:
        return normalize_mock(frame, key.market, key.exchange)
    events = normalize(frame, key.market)
    if key.account != "default":
        import attrs

        events = [attrs.evolve(e, account=key.account) for e in events]
    return events


async def replay(store: TradeStore, *, dry_run: bool = False) -> dict[str, int]:
    """Replay every dead letter not yet replayed; returns counts of what happened."""
    counts = {"letters": 0, "replayed": 0, "still_failing": 0, "fills_new": 0, "fills_duplicate": 0,
              "order_updates": 0, "empty": 0}
    for letter in await store.fetch_dead_letters(pending_only=True):
        counts["letters"] += 1
        try:
            events = events_of(letter)
        except (NormalizeError, ValueError, TypeError, KeyError) as exc:
            counts["still_failing"] += 1
            if not dry_run:
                await store.mark_dead_letter(letter["id"], None, f"still failing: {exc}")
            continue
        trades = [e for e in events if isinstance(e, Trade)]
        orders = [e for e in events if isinstance(e, OrderUpdate)]
        if dry_run:
            counts["replayed"] += 1
            counts["fills_new"] += len(trades)
            continue
        inserted = await store.insert_trades(trades) if trades else []
        for order in orders:
            await store.upsert_orders([order])
        new = sum(inserted)
        counts["replayed"] += 1
        counts["fills_new"] += new
        counts["fills_duplicate"] += len(trades) - new
        counts["order_updates"] += len(orders)
        counts["empty"] += not events
        await store.mark_dead_letter(
            letter["id"], now_ms(), f"{new} new fills, {len(trades) - new} duplicates, {len(orders)} order updates"
        )
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="replay_dead_letters.py", description=__doc__)
    parser.add_argument("--db", default="sqlite:///data/trades.sqlite", help="the store (as run_strategy's --db)")
    parser.add_argument("--dry-run", action="store_true", help="report what would be stored, store nothing")
    args = parser.parse_args(argv)
    configure_console("WARNING")
    url = args.db if "://" in args.db else f"sqlite:///{args.db}"

    async def run() -> dict[str, int]:
        store = open_store(url)
        await store.start()
        try:
            return await replay(store, dry_run=args.dry_run)
        finally:
            await store.stop()

    try:
        counts = asyncio.run(run())
    except FrameworkError as exc:
        print(f"replay_dead_letters.py: error: {exc}", file=sys.stderr)
        return 1
    print(f"dead letters replayed: {counts['replayed']} of {counts['letters']}"
          f"{' (dry run)' if args.dry_run else ''}; still failing: {counts['still_failing']}")
    print(f"fills stored: {counts['fills_new']} new, {counts['fills_duplicate']} already stored; "
          f"order updates: {counts['order_updates']}; frames with nothing in them: {counts['empty']}")
    return 0
