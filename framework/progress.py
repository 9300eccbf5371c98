"""Counters of work submitted and done, so `flush()` can wait for everything received so far."""

from __future__ import annotations

import asyncio
from typing import Any


class Progress:
    def __init__(self) -> None:
        self.submitted = 0
        self.completed = 0
        self.stats: Any = None  # the monitor's counters of this consumer, when it has some (enqueued, handled)
        self._changed = asyncio.Event()

    def submit(self, n: int = 1) -> None:
        self.submitted += n
        if self.stats is not None:
            self.stats.enqueued += n

    def done(self, n: int = 1) -> None:
        self.completed += n
        if self.stats is not None:
            self.stats.handled += n
        self._changed.set()

    def skip_pending(self) -> None:
        """Count everything submitted as done (its consumer is gone)."""
        self.done(self.submitted - self.completed)

    async def wait_until(self, target: int, timeout: float | None) -> None:
        """Wait until `target` items are done; TimeoutError past `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while self.completed < target:
                self._changed.clear()
                await self._changed.wait()
