"""An append-only spool file for fills the store cannot take right now; replayed in order when it can."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import attrs

from framework.account import BalanceUpdate, PositionUpdate
from framework.events import OrderUpdate, Trade
from framework.store import raw_to_text

_CLASSES: dict[str, type] = {"order": OrderUpdate, "balance": BalanceUpdate, "position": PositionUpdate}
_FIELDS = {cls: [a.name for a in attrs.fields(cls)] for cls in (Trade, OrderUpdate, BalanceUpdate, PositionUpdate)}


def encode(kind: str, item: Any) -> str:
    """One queued item as a JSON line: decimals and enums as text, the raw frame as audit text."""
    if kind == "dead":
        key, raw, error, received_at, *consumer = item  # a consumer's letter names it (5th field)
        body: Any = [key, raw_to_text(raw), error, received_at, *consumer]
    else:
        body = {name: getattr(item, name) for name in _FIELDS[type(item)]}
        body["raw"] = raw_to_text(body["raw"])
    return json.dumps([kind, body], default=str, separators=(",", ":"))


def decode(line: str) -> tuple[str, Any]:
    kind, body = json.loads(line)
    if kind == "dead":
        return kind, tuple(body)
    cls = _CLASSES.get(kind, Trade)  # trade, duplicate and fee items are all fills
    return kind, cls(**body)


class Spool:
    """Items in arrival order on disk. `append` is durable (fsync) before it returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0  # bytes already handed out by read() and confirmed by advance()
        self._pending: int | None = None

    def exists(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > self._offset

    def append(self, items: list[tuple[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write("".join(encode(kind, item) + "\n" for kind, item in items))
            handle.flush()
            os.fsync(handle.fileno())

    def read(self, limit: int) -> list[tuple[str, Any]]:
        """Up to `limit` items from the current position (call advance() once they are written)."""
        items = []
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            position = self._offset
            for raw_line in handle:
                if not raw_line.endswith(b"\n"):
                    break  # a line cut by a crash mid-append: it was never acknowledged
                position += len(raw_line)
                items.append(decode(raw_line.decode("utf-8")))
                if len(items) >= limit:
                    break
        self._pending = position
        return items

    def advance(self) -> None:
        """The items last read are in the store: move past them; remove the file once all are."""
        if self._pending is not None:
            self._offset, self._pending = self._pending, None
        if self.path.exists() and self.path.stat().st_size <= self._offset:
            self.path.unlink()
            self._offset = 0

    def count(self) -> int:
        if not self.path.exists():
            return 0
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            return sum(1 for line in handle if line.endswith(b"\n"))
