"""A store for benchmarks: fills get a seq and the newest ones stay in memory (a catch-up can read them back);
nothing else is kept and nothing is written, so what a benchmark measures is not the database."""

from __future__ import annotations

import bisect
from typing import Any, Mapping, Sequence

from framework.events import ConnectionKey, OrderUpdate, Trade, now_ms


class MemoryStore:
    """Keeps the newest `window` fills with their seq (a catch-up can read them back); the rest is a no-op."""

    url = "memory://bench"

    def __init__(self, window: int = 50_000) -> None:
        self.window = window
        self.last = 0
        self.seqs: list[int] = []
        self.trades: list[Trade] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def insert_trades(self, trades: Sequence[Trade]) -> list[int | None]:
        first = self.last + 1
        self.last += len(trades)
        seqs = list(range(first, self.last + 1))
        self.seqs.extend(seqs)
        self.trades.extend(trades)
        if len(self.seqs) > 2 * self.window:
            del self.seqs[:-self.window], self.trades[:-self.window]
        return seqs

    async def write_batch(self, trades: Sequence[Trade], *rest: Any) -> tuple[list[int | None], list[tuple]]:
        return await self.insert_trades(trades), []

    async def complete_fees(self, trades: Sequence[Trade]) -> list[tuple]:
        return []

    async def max_seq(self) -> int:
        return self.last

    async def trades_after(self, keys: Sequence[ConnectionKey], after_seq: int, limit: int) -> list[tuple[int, Trade]]:
        start = bisect.bisect_right(self.seqs, after_seq)
        wanted = set(keys)
        return [(s, t) for s, t in zip(self.seqs[start:start + limit], self.trades[start:start + limit])
                if t.key in wanted]

    async def get_coverage(self, key: ConnectionKey) -> dict[str, int]:
        return {"*": now_ms()}

    async def advance_coverage(self, key: ConnectionKey, marks: Mapping[str, int]) -> None:
        return None

    async def get_delivery(self, strategy_id: str) -> tuple[int, bool] | None:
        return None

    async def set_delivery(self, strategy_id: str, position: int, running: bool, prefix: str | None) -> None:
        return None

    async def delivery_prefixes(self) -> dict[str, str]:
        return {}

    async def client_order_ids(self, key: ConnectionKey, order_ids: Sequence[str]) -> dict[str, str]:
        return {}

    async def fee_missing_keys(self, key: ConnectionKey, since_ms: int, limit: int) -> list[tuple]:
        return []

    async def upsert_orders(self, updates: Sequence[OrderUpdate]) -> int:
        return len(updates)

    async def orders_since(self, keys: Sequence[ConnectionKey], since_ms: int, limit: int) -> list[OrderUpdate]:
        return []  # order states are not kept

    async def add_dead_letter(self, key: str, raw: Any, error: str, received_at: int,
                              consumer: str | None = None) -> None:
        return None

    async def fetch_trades(self, key: ConnectionKey | None = None, symbol: str | None = None) -> list[Trade]:
        return list(self.trades)

    async def fetch_orders(self, key: ConnectionKey | None = None) -> list[OrderUpdate]:
        return []

    async def fetch_dead_letters(self, pending_only: bool = False, consumer: str | None = None) -> list[dict]:
        return []

    async def mark_dead_letter(self, letter_id: int, replayed_at: int | None, result: str) -> None:
        return None

    async def request_replay(self, consumer: str) -> int:
        return 0

    async def requested_letters(self, consumers: Sequence[str], limit: int) -> list[dict]:
        return []

    async def recent_trade_keys(self, key: ConnectionKey, since_ms: int, limit: int) -> list[tuple]:
        return []

    async def symbols(self, key: ConnectionKey) -> list[str]:
        return []
