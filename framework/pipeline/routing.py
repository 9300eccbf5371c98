"""Which strategies an event on a key goes to: the owner by client-order-id prefix, else by symbol."""

from __future__ import annotations

from typing import Any, Protocol

import attrs

from framework.events import ConnectionKey, Event, Trade


class Consumer(Protocol):
    """What the pipeline delivers to a strategy (a BaseStrategy is one). Fills come after they are stored,
    with their seq; a consumer that fell behind (or just started) reads on from the store."""

    strategy_id: str
    client_order_id_prefix: str | None
    last_seq: int | None  # the last stored fill it has processed (its durable delivery position)
    redelivery_bound: int | None  # after an unclean end: fills up to this seq come marked redelivered
    unconfirmed: int  # fills it has seen from the spool whose stored copy it has not seen yet

    def deliver(self, event: Event) -> None: ...

    def deliver_stored(self, trades: list[Trade]) -> None: ...  # stored fills, in seq order

    def deliver_updates(self, updates: list[Event]) -> None: ...  # order updates of one frame, in order

    def amended(self, trade: Trade) -> None: ...

    def begin_delivery(self, position: int | None, redelivery_bound: int | None) -> None: ...

    def request_catch_up(self) -> None: ...

    def expect_seen(self, keys: list[tuple]) -> None: ...

    async def drained(self) -> None: ...


@attrs.define(kw_only=True)
class Subscription:
    strategy_id: str
    consumer: Consumer | None
    symbols: frozenset[str] | None

    def wants_symbol(self, event: Any) -> bool:
        return self.symbols is None or event.symbol in self.symbols or event.symbol_raw in self.symbols


class _Prefixes(dict):
    """strategy id -> client-order-id prefix, with an index by prefix length kept in step (the owner of a fill
    is found with one dict lookup per distinct prefix length, not a scan of every strategy)."""

    def __init__(self) -> None:
        super().__init__()
        self.index: list[tuple[int, dict[str, str]]] | None = None
        self.version = 0  # bumped by every change

    def _changed(self) -> None:
        self.index = None
        self.version += 1

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key, value)
        self._changed()

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._changed()

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self._changed()

    def pop(self, *args: Any) -> Any:
        self._changed()
        return super().pop(*args)

    def build(self) -> list[tuple[int, dict[str, str]]]:
        by_length: dict[int, dict[str, str]] = {}
        for strategy_id, prefix in self.items():
            if prefix:
                by_length.setdefault(len(prefix), {})[prefix] = strategy_id  # on an equal prefix the latest declared
        self.index = sorted(by_length.items(), reverse=True)
        return self.index


class Router:
    """Subscriptions per key and every strategy's client-order-id prefix (running or not: a stopped owner's
    fills wait in the store for its next start, never go to another strategy)."""

    def __init__(self) -> None:
        self.subscribers: dict[ConnectionKey, dict[str, Subscription]] = {}
        self.prefixes: dict[str, str] = _Prefixes()
        # Routes already worked out, by (key, owner) or (key, symbol, symbol_raw): the same list object each
        # time, so a batch can be split into runs of fills that go to the same strategies.
        self._routes: dict[tuple, list[Subscription]] = {}
        self._routes_version = 0  # the prefixes' version the cached routes were worked out with

    def add(self, key: ConnectionKey, subscription: Subscription) -> None:
        self.subscribers.setdefault(key, {})[subscription.strategy_id] = subscription
        self._routes.clear()

    def remove(self, key: ConnectionKey, strategy_id: str) -> bool:
        """Remove a strategy from a key; True if the key has no subscriber left."""
        self._routes.clear()
        subscribers = self.subscribers.get(key, {})
        subscribers.pop(strategy_id, None)
        if not subscribers:
            self.subscribers.pop(key, None)
            return True
        return False

    def declare(self, strategy_id: str, prefix: str) -> str | None:
        """Give a strategy its client-order-id prefix. Declared last, it owns the prefix if another strategy had
        the very same one (returned, so the caller can say so): a renamed strategy takes its fills over."""
        previous = next((sid for sid, p in self.prefixes.items() if p == prefix and sid != strategy_id), None)
        self.prefixes.pop(strategy_id, None)
        self.prefixes[strategy_id] = prefix
        return previous

    def owner(self, client_order_id: str) -> str | None:
        """The strategy with the longest prefix of this client order id, or None."""
        index = self.prefixes.index
        if index is None:
            index = self.prefixes.build()
        for length, table in index:
            owner = table.get(client_order_id[:length])
            if owner is not None:
                return owner
        return None

    def route(self, event: Any) -> list[Subscription]:
        """The owner by client-order-id prefix (nobody now if it is not running), else by symbol.
        The list returned is shared: never change it."""
        key = event.key
        subscribers = self.subscribers.get(key)
        if not subscribers:
            return _NOBODY
        if self.prefixes.version != self._routes_version:
            self._routes.clear()  # a prefix was declared: owners may have changed
            self._routes_version = self.prefixes.version
        coid = event.client_order_id
        if coid:
            owner = self.owner(coid)
            if owner is not None:
                cached = self._routes.get((key, owner))
                if cached is None:
                    subscription = subscribers.get(owner)
                    cached = [subscription] if subscription is not None and subscription.consumer is not None else []
                    self._routes[(key, owner)] = cached
                return cached
        marker = (key, event.symbol, event.symbol_raw)
        cached = self._routes.get(marker)
        if cached is None:
            cached = [s for s in subscribers.values() if s.consumer is not None and s.wants_symbol(event)]
            self._routes[marker] = cached
        return cached


_NOBODY: list[Subscription] = []
