"""A real store whose writes of fills fail while `down` is set, as an unreachable database's would."""

from __future__ import annotations

from framework.errors import StoreError


class FlakyStore:
    def __init__(self, inner, *, down: bool = False) -> None:
        self.inner, self.down, self.url = inner, down, inner.url

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def insert_trades(self, trades):
        if self.down:
            raise StoreError("database unreachable")
        return await self.inner.insert_trades(trades)

    async def write_batch(self, trades, fee_copies, orders, dead_rows):
        if self.down and trades:
            raise StoreError("database unreachable")
        return await self.inner.write_batch(trades, fee_copies, orders, dead_rows)
