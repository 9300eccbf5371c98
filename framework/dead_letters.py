"""`replay_dead_letters`: normalize the kept frames again (after a fix) and store what they hold; with
`--consumer NAME`, ask the running pipeline to hand that consumer the events it missed."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Sequence

import attrs

from framework.console import configure_console
from framework.errors import ConfigError, FrameworkError, NormalizeError
from framework.events import ConnectionKey, OrderUpdate, Trade, now_ms
from framework.spool import decode
from framework.store import TradeStore, open_store
from framework.sync_log import redact


def existing_store_url(db: str) -> str:
    """The store URL for a tool that reads an existing store (`--db`: a URL or a SQLite file path).

    A SQLite file that does not exist is a `ConfigError`: opening it would create an empty store and the
    tool would report on nothing as if all were well."""
    url = db if "://" in db else f"sqlite:///{db}"
    if url.startswith("sqlite://"):
        from framework.store.sqlite import _path_of

        path = _path_of(url)
        if str(path) != ":memory:" and not Path(path).is_file():
            raise ConfigError(f"no database at {path}: pass --db with the store run_strategy.py wrote "
                              "(default data/trades.sqlite, or its --db)")
    return url


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
        events = [attrs.evolve(e, account=key.account) for e in events]
    return events


@attrs.frozen(kw_only=True)
class StillFailing:
    """A dead letter that normalize refuses again, and why."""

    letter_id: int
    connection_key: str
    error: str

    def render(self) -> str:
        return f"  dead letter {self.letter_id} ({self.connection_key}) still fails: {self.error}"


async def replay(store: TradeStore, *, dry_run: bool = False, failures: list[StillFailing] | None = None,
                 consumer_letters: Counter[str] | None = None) -> dict[str, int]:
    """Replay every dead letter not yet replayed; returns counts of what happened. Letters that still fail
    are appended to `failures` (when given) with the error normalize gave this time. A consumer's letters are
    events it missed, not frames: they are left alone and counted per consumer in `consumer_letters`."""
    counts = {"letters": 0, "replayed": 0, "still_failing": 0, "fills_new": 0, "fills_duplicate": 0,
              "order_updates": 0, "empty": 0}
    for letter in await store.fetch_dead_letters(pending_only=True):
        if letter.get("consumer") is not None:
            if consumer_letters is not None:
                consumer_letters[letter["consumer"]] += 1
            continue
        counts["letters"] += 1
        try:
            events = events_of(letter)
        except (NormalizeError, ValueError, TypeError, KeyError) as exc:
            counts["still_failing"] += 1
            if failures is not None:
                error = redact(" ".join(f"{type(exc).__name__}: {exc}".split()))
                failures.append(StillFailing(letter_id=letter["id"], connection_key=str(letter["connection_key"]),
                                             error=error[:300] + ("…" if len(error) > 300 else "")))
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


async def request_for_consumer(store: TradeStore, consumer: str, *, dry_run: bool = False) -> int:
    """Mark that consumer's letters not yet replayed as replay requested (the running pipeline hands them to
    it); returns how many are requested. `dry_run`: count them, mark nothing."""
    if dry_run:
        return len(await store.fetch_dead_letters(pending_only=True, consumer=consumer))
    return await store.request_replay(consumer)


def describe_letter(letter: dict) -> str:
    """One line for a consumer's letter: the event it holds, why it was missed, where its replay stands."""
    try:
        kind, event = decode(letter["raw"])
    except (ValueError, TypeError, KeyError) as exc:
        what = f"unreadable event ({type(exc).__name__})"
    else:
        if isinstance(event, Trade):
            what = (f"fill {event.trade_id} of order {event.order_id}: {event.symbol} {event.side.value} "
                    f"{event.amount} @ {event.price}")
        else:
            what = f"order {event.order_id}: {event.symbol} {event.status.value}, {event.filled} of {event.amount}"
    missed = datetime.fromtimestamp(letter["received_at"] / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    state = "replay requested" if letter.get("replay_requested_at") is not None else "waiting for a request"
    if letter.get("replay_result"):
        state += f", last attempt: {letter['replay_result']}"
    error = redact(" ".join(str(letter["error"]).split()))[:200]
    return f"  dead letter {letter['id']} ({letter['connection_key']}) {what}; missed {missed} UTC: {error}; {state}"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    parser = _Parser(
        prog=prog, description=__doc__,
        epilog="exit 0: every letter replayed (with --consumer: the request is recorded); 1: some still fail "
               "(each is printed with its error); 2: bad arguments")
    parser.add_argument("--db", default="sqlite:///data/trades.sqlite", help="the store (as run_strategy's --db)")
    parser.add_argument("--dry-run", action="store_true", help="report what would be stored, store nothing")
    parser.add_argument("--consumer", metavar="NAME",
                        help="ask the running pipeline to hand the events consumer NAME missed back to it "
                             "(at its next registration if it is not running); frames are not replayed")
    parser.add_argument("--list", action="store_true", help="with --consumer: list its letters, request nothing")
    args = parser.parse_args(argv)
    if args.consumer is not None and not args.consumer.strip():
        parser.error("--consumer needs a consumer name, as given to register_component")
    if args.list and args.consumer is None:
        parser.error("--list needs --consumer NAME")
    configure_console("WARNING")
    try:
        url = existing_store_url(args.db)
    except ConfigError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2

    if args.consumer is not None:
        return _consumer_main(parser.prog, url, args.consumer, listing=args.list, dry_run=args.dry_run)

    failures: list[StillFailing] = []
    consumer_letters: Counter[str] = Counter()

    async def run() -> dict[str, int]:
        store = open_store(url)
        await store.start()
        try:
            return await replay(store, dry_run=args.dry_run, failures=failures, consumer_letters=consumer_letters)
        finally:
            await store.stop()

    try:
        counts = asyncio.run(run())
    except FrameworkError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    print(f"dead letters replayed: {counts['replayed']} of {counts['letters']}"
          f"{' (dry run)' if args.dry_run else ''}; still failing: {counts['still_failing']}")
    print(f"fills stored: {counts['fills_new']} new, {counts['fills_duplicate']} already stored; "
          f"order updates: {counts['order_updates']}; frames with nothing in them: {counts['empty']}")
    for failure in failures:
        print(failure.render())
    if consumer_letters:
        print("left for their consumers (replay with --consumer NAME): "
              + ", ".join(f"{name} {n}" for name, n in sorted(consumer_letters.items())))
    return 1 if failures else 0


def _consumer_main(prog: str, url: str, consumer: str, *, listing: bool, dry_run: bool) -> int:
    """`--consumer NAME [--list]`: request that consumer's replay, or list its letters."""

    async def run() -> tuple[int, list[dict], Counter[str]]:
        store = open_store(url)
        await store.start()
        try:
            letters = await store.fetch_dead_letters(pending_only=True)
            others = Counter(x["consumer"] for x in letters if x.get("consumer") not in (None, consumer))
            if listing:
                return 0, [x for x in letters if x.get("consumer") == consumer], others
            return await request_for_consumer(store, consumer, dry_run=dry_run), [], others
        finally:
            await store.stop()

    try:
        requested, letters, others = asyncio.run(run())
    except FrameworkError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    if listing:
        waiting = sum(x.get("replay_requested_at") is not None for x in letters)
        print(f"dead letters of consumer {consumer!r} not yet replayed: {len(letters)} ({waiting} replay requested)")
        for letter in letters:
            print(describe_letter(letter))
    elif dry_run:
        print(f"would request a replay of {requested} dead letters of consumer {consumer!r} (dry run: nothing marked)")
    elif requested:
        print(f"replay requested for {requested} dead letters of consumer {consumer!r}: the running process hands "
              f"them to {consumer} (or at {consumer}'s next registration)")
    else:
        known = ", ".join(f"{name} {n}" for name, n in sorted(others.items())) or "none"
        print(f"no dead letters of consumer {consumer!r} wait for a replay; consumers with letters: {known}")
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m framework.dead_letters"))
