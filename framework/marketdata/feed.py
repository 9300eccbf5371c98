"""One public (market data) connection per (venue, market): a ccxt.pro client, one watch loop per (kind, symbol
[, timeframe]) that someone watches, each value published on the pipeline.

ccxt.pro reconnects only when asked: every loop calls its `watch_*` again after an error, at once the first
time (a book resync: ccxt fetches or awaits a fresh snapshot itself) and then backing off (MARKET_WATCH),
so a dropped socket is reopened and every subscription of it sent again. The time a watch was failing is a
gap: logged, written to the trade sync log and kept in the status. A watch failing `degraded_after` times in a
row (a book that cannot be resynced) marks the connection degraded with the reason until it works again.
A frame ccxt's handler cannot read becomes a dead letter and the socket goes on (ccxt would otherwise stop
reading it: its receive loop dies with the handler's exception).
"""

from __future__ import annotations

import asyncio
import difflib
from collections import deque
from decimal import Decimal
from typing import Any, Callable, Iterable

import attrs
from loguru import logger

from framework.errors import ConfigError
from framework.events import ConnectionKey, now_ms
from framework.marketdata.client import add_markets, ccxt_client
from framework.marketdata.values import book_from_ccxt, candle_from_ccxt, ticker_from_ccxt, trade_from_ccxt
from framework.retry import MARKET_WATCH, Backoff
from framework.venue import Endpoints, MarketDataRules

KINDS = ("ticker", "book", "public_trade", "ohlc")
DEFAULT_DEPTH = 20
DEGRADED_AFTER = 5


@attrs.frozen(order=True)
class Watch:
    """One stream a public connection keeps: a kind (`ticker`, `book`, `public_trade`, `ohlc`) of one symbol."""

    kind: str
    symbol: str
    timeframe: str | None = None  # ohlc only

    def __str__(self) -> str:
        return f"{self.kind} {self.symbol}" + (f" {self.timeframe}" if self.timeframe else "")


@attrs.define
class Gap:
    watch: str
    since: int  # ms: the first failure
    until: int | None  # ms: the next good value (None: still failing)
    reason: str


class PublicConnection:
    """A key's market data connection, shared by every strategy watching that (venue, market)."""

    def __init__(
        self,
        key: ConnectionKey,
        rules: MarketDataRules,
        endpoints: Endpoints | None,
        publish: Callable[[str, Any, ConnectionKey, str, str | None], None],
        *,
        dead_letter: Callable[[ConnectionKey, Any, str], None] | None = None,
        event_log: Callable[..., None] | None = None,
        backoff: Backoff = MARKET_WATCH,
        degraded_after: int = DEGRADED_AFTER,
    ) -> None:
        self.key = key
        self.rules = rules
        self.endpoints = endpoints
        self._publish = publish
        self._dead_letter = dead_letter
        self._event_log = event_log
        self.backoff = backoff
        self.degraded_after = degraded_after
        self.exchange: Any = None
        self.state = "created"
        self._watchers: dict[Watch, set[str]] = {}
        self._depths: dict[tuple[str, str], int] = {}  # (watcher, symbol) -> book depth it wants
        self._depths_left: dict[str, int] = {}  # symbol -> the depth its book was watched at, once nobody wants it
        self._tasks: dict[Watch, asyncio.Task] = {}
        self._failing: dict[Watch, str] = {}  # watches failing `degraded_after` times in a row: the reason
        self._candles: dict[Watch, list] = {}  # the bar being formed, per ohlc watch
        self._sizes: dict[str, Decimal | None] = {}
        self._book_ids: dict[str, int] = {}  # venue symbol -> the last book update id handed to ccxt
        self._resyncing: set[str] = set()  # venue symbols whose book is being watched afresh
        self._resync_streak: dict[str, int] = {}  # symbol -> resyncs since its books last flowed (10 in a row)
        self._resyncs: set[asyncio.Task] = set()
        self._flowing: dict[str, int] = {}  # symbol -> books published since its last resync
        self.gaps: deque[Gap] = deque(maxlen=50)
        self.gap_count = 0
        self.errors = 0
        self.dead_letters = 0
        self.published: dict[str, int] = dict.fromkeys(KINDS, 0)
        self._log = logger.bind(key=str(key), stream="public")

    # watchers ------------------------------------------------------------------------------------------------
    def check_symbols(self, symbols: Iterable[str]) -> None:
        """A ConfigError naming the first symbol the venue does not list here, with its nearest listed ones."""
        listed = self._listed()
        if listed is None:
            return
        for symbol in symbols:
            if symbol not in listed:
                nearest = difflib.get_close_matches(symbol.upper(), sorted(listed), n=3, cutoff=0.5)
                hint = f": nearest {', '.join(nearest)}" if nearest else ""
                raise ConfigError(f"{symbol} is not listed on {self.key.exchange} {self.key.market.value}{hint}")

    def _listed(self) -> set[str] | None:
        if self.endpoints is not None:
            return set(self.rules.listed(self.key.market)) if self.rules.listed is not None else None
        return set(self.exchange.markets) if self.exchange is not None and self.exchange.markets else None

    async def watch(self, watcher: str, watches: Iterable[Watch], depth: int = DEFAULT_DEPTH) -> None:
        """Start the streams this watcher needs that nobody watches yet (the symbols are checked first)."""
        watches = sorted(set(watches))
        if self.exchange is None:
            self.exchange = ccxt_client(self.key, self.rules, self.endpoints, {w.symbol for w in watches})
            self._guard_handler(self.exchange)
            if self.endpoints is None:  # live: the venue's own list says what exists
                await self.exchange.load_markets()
            self.state = "live"
        for w in watches:
            if w.kind not in KINDS:
                raise ConfigError(f"unknown market data kind {w.kind!r}: use one of {', '.join(KINDS)}")
            if w.kind == "ohlc" and w.timeframe not in self.rules.timeframes:
                raise ConfigError(f"{self.key.exchange} streams no {w.timeframe!r} candles: use one of "
                                  f"{', '.join(self.rules.timeframes)}")
        self.check_symbols({w.symbol for w in watches})
        if self.endpoints is not None:
            add_markets(self.exchange, self.key, self.rules, {w.symbol for w in watches})
        for w in watches:
            if w.kind == "book":
                self._depths[(watcher, w.symbol)] = max(depth, self._depths.get((watcher, w.symbol), 0))
            watchers = self._watchers.setdefault(w, set())
            watchers.add(watcher)
            if w not in self._tasks:
                self._tasks[w] = asyncio.create_task(self._loop(w), name=f"watch-{self.key}-{w}")

    async def unwatch(self, watcher: str) -> int:
        """Drop a watcher; streams nobody else watches are un-watched at the venue. Returns the streams left."""
        for (who, symbol) in [k for k in self._depths if k[0] == watcher]:
            depth = self._depth(symbol)  # what its watch asked for, before this watcher goes
            del self._depths[(who, symbol)]
            if not any(s == symbol for _, s in self._depths):
                self._depths_left[symbol] = depth
        for w in [w for w, who in self._watchers.items() if watcher in who]:
            self._watchers[w].discard(watcher)
            if not self._watchers[w]:
                del self._watchers[w]
                await self._stop_watch(w)
        return len(self._watchers)

    def watchers(self) -> set[str]:
        return set().union(*self._watchers.values()) if self._watchers else set()

    async def _stop_watch(self, w: Watch) -> None:
        task = self._tasks.pop(w, None)
        self._failing.pop(w, None)
        self._candles.pop(w, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._unwatch_at_venue(w)

    async def _unwatch_at_venue(self, w: Watch) -> None:
        method = {"ticker": "un_watch_ticker", "book": "un_watch_order_book", "public_trade": "un_watch_trades",
                  "ohlc": "un_watch_ohlcv"}[w.kind]
        unwatch = getattr(self.exchange, method, None)
        if unwatch is None or self.state == "closed":
            return
        try:
            args: tuple = (w.symbol, w.timeframe) if w.kind == "ohlc" else (w.symbol,)
            if w.kind == "book" and self.rules.unwatch_book_limit:
                limit = self.rules.book_limit(self.key.market, self._depths_left.pop(w.symbol, DEFAULT_DEPTH))
                if limit is not None:
                    args = (w.symbol, {"limit": limit})
            await asyncio.wait_for(unwatch(*args), 5.0)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - NotSupported, or the socket is gone: nothing more to undo
            self._log.bind(watch=str(w), error=repr(exc)).debug("un-watch not done at the venue")

    async def close(self) -> None:
        for task in list(self._resyncs):
            task.cancel()
        await asyncio.gather(*self._resyncs, return_exceptions=True)
        for w in list(self._tasks):
            task = self._tasks.pop(w)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._watchers.clear()
        self.state = "closed"
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            try:
                await exchange.close()
            except Exception as exc:  # noqa: BLE001 - closing a socket that is gone already
                self._log.bind(error=repr(exc)).debug("ccxt close failed")

    # the loops -----------------------------------------------------------------------------------------------
    def _depth(self, symbol: str) -> int:
        return max((d for (_, s), d in self._depths.items() if s == symbol), default=DEFAULT_DEPTH)

    def _size(self, symbol: str) -> Decimal | None:
        if symbol not in self._sizes:
            size = self.rules.contract_size(self.key.market, symbol)
            self._sizes[symbol] = Decimal(str(size)) if size is not None and Decimal(str(size)) != 1 else None
        return self._sizes[symbol]

    async def _call(self, w: Watch) -> Any:
        exchange = self.exchange
        if w.kind == "book":
            limit = self.rules.book_limit(self.key.market, self._depth(w.symbol))
            return await exchange.watch_order_book(w.symbol, limit)
        if w.kind == "ticker":
            return await exchange.watch_ticker(w.symbol)
        if w.kind == "public_trade":
            return await exchange.watch_trades(w.symbol)
        return await exchange.watch_ohlcv(w.symbol, w.timeframe)

    async def _loop(self, w: Watch, gap: Gap | None = None) -> None:
        """Watch one stream for good; `gap`: one already open (a resync), closed by the first good value."""
        failures = 0
        while True:
            try:
                result = await self._call(w)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every ccxt error: report, back off, watch again
                failures += 1
                self.errors += 1
                reason = f"{type(exc).__name__}: {exc}"[:300]
                if _bad_symbol(exc):
                    self._failing[w] = reason
                    self._log.bind(watch=str(w), error=reason).error("the venue refused the symbol: not watched")
                    self._note("market data refused", watch=str(w), error=reason)
                    return
                if w.kind == "book" and _lost_socket(exc):
                    self._forget_book(w.symbol)
                if gap is None:
                    gap = Gap(str(w), now_ms(), None, reason)
                    self.gaps.append(gap)
                    self.gap_count += 1
                    self._log.bind(watch=str(w), error=reason).warning("market data gap: watching again")
                if failures >= self.degraded_after and w not in self._failing:
                    self._failing[w] = reason
                    self.state = "degraded"
                    self._log.bind(watch=str(w), failures=failures, error=reason).error("market data degraded")
                    self._note("market data degraded", watch=str(w), failures=failures, error=reason)
                await asyncio.sleep(self.backoff.delay(failures))
                continue
            if gap is not None:
                gap.until = now_ms()
                self._log.bind(watch=str(w), ms=gap.until - gap.since).info("market data gap closed")
                self._note("market data gap", watch=str(w), since=gap.since, until=gap.until, error=gap.reason)
                gap = None
            if failures:
                failures = 0
                if self._failing.pop(w, None) is not None and not self._failing:
                    self.state = "live"
            try:
                self._hand_on(w, result)
            except Exception as exc:  # noqa: BLE001 - a value ccxt handed over that we cannot read
                self.dead_letters += 1
                self._log.bind(watch=str(w), error=repr(exc)).warning("market data value not readable: dead letter")
                if self._dead_letter is not None:
                    self._dead_letter(self.key, {"watch": str(w), "value": repr(result)[:2000]}, repr(exc))

    def _hand_on(self, w: Watch, result: Any) -> None:
        key, symbol, size = self.key, w.symbol, self._size(w.symbol)
        if w.kind == "book":
            book = book_from_ccxt(key, symbol, result, self._depth(symbol), size)
            if book.bids and book.asks and book.bids[0][0] >= book.asks[0][0]:
                self._crossed(symbol, book)
                return
            self._emit("book", book, symbol)
            if symbol in self._resync_streak:
                self._flowing[symbol] = self._flowing.get(symbol, 0) + 1
                if self._flowing[symbol] >= 10:  # it holds again: the next lost update starts a new count
                    del self._resync_streak[symbol], self._flowing[symbol]
                    if self._failing.pop(w, None) is not None and not self._failing:
                        self.state = "live"
        elif w.kind == "ticker":
            self._emit("ticker", ticker_from_ccxt(key, symbol, result, size), symbol)
        elif w.kind == "public_trade":
            for trade in result:
                self._emit("public_trade", trade_from_ccxt(key, symbol, trade, size), symbol)
        else:
            quote = self.key.market in self.rules.quote_candle_volume
            for bar in sorted(result, key=lambda b: b[0]):
                forming = self._candles.get(w)
                if forming is not None and bar[0] > forming[0]:  # a later bar began: the one before is final
                    self._emit("ohlc", candle_from_ccxt(key, symbol, w.timeframe, forming, size, True, quote), symbol,
                               w.timeframe)
                if forming is None or bar[0] >= forming[0]:
                    self._candles[w] = list(bar)
                    self._emit("ohlc", candle_from_ccxt(key, symbol, w.timeframe, bar, size, False, quote), symbol,
                               w.timeframe)

    def _emit(self, kind: str, value: Any, symbol: str, timeframe: str | None = None) -> None:
        self.published[kind] += 1
        self._publish(kind, value, self.key, symbol, timeframe)

    def _guard_handler(self, exchange: Any) -> None:
        """Wrap ccxt's frame handler: a frame it raises on is a dead letter, and its socket reads on. Where the
        venue's book deltas carry update ids ccxt does not check (`rules.book_sequence`), a delta that does not
        continue the last one is not handed to ccxt: the book is resynced instead."""
        handle = exchange.handle_message
        sequence = self.rules.book_sequence
        market = self.key.market

        def guarded(client: Any, message: Any) -> Any:
            try:
                if sequence is not None:
                    ids = sequence(message, market)
                    if ids is not None and not self._continues(*ids):
                        return None
                return handle(client, message)
            except Exception as exc:  # noqa: BLE001 - ccxt's receive loop would stop for good on it
                self.dead_letters += 1
                self._log.bind(error=repr(exc)[:300]).warning("market data frame not readable: dead letter")
                if self._dead_letter is not None:
                    self._dead_letter(self.key, message, f"market data frame not readable: {exc!r}"[:500])
                return None

        exchange.handle_message = guarded

    def _continues(self, venue_symbol: str, first: int, last: int, full: bool) -> bool:
        """Whether a book frame may go to ccxt: a full book, the first delta seen, or one continuing the last."""
        if venue_symbol in self._resyncing:
            return False  # the book is being watched afresh: what comes before its new start is of no use
        previous = self._book_ids.get(venue_symbol)
        if full or previous is None:
            self._book_ids[venue_symbol] = last
            return True
        if last <= previous:
            return True  # a repeat or an older frame: ccxt skips it by its nonce
        if first == previous + 1:
            self._book_ids[venue_symbol] = last
            return True
        symbol = self._symbol_of(venue_symbol)
        if symbol is None or Watch("book", symbol) not in self._tasks:
            self._book_ids[venue_symbol] = last
            return True
        self._start_resync(symbol, venue_symbol,
                           f"book update ids jumped from {previous} to {first}: an update was lost")
        return False

    def _crossed(self, symbol: str, book: Any) -> None:
        """A crossed book (best bid at or above best ask) is a corrupt copy (ccxt merged a new snapshot into an old
        book, or applied a delta out of order): never handed on; the book is watched afresh."""
        market = (self.exchange.markets or {}).get(symbol) if self.exchange is not None else None
        venue_symbol = market["id"] if market is not None else symbol
        if venue_symbol not in self._resyncing:
            self._start_resync(symbol, venue_symbol,
                               f"crossed book: best bid {book.bids[0][0]} >= best ask {book.asks[0][0]}")

    def _start_resync(self, symbol: str, venue_symbol: str, reason: str) -> None:
        self._resyncing.add(venue_symbol)
        self._log.bind(symbol=symbol, error=reason).warning("market data gap: resyncing the book")
        task = asyncio.get_running_loop().create_task(self._resync(symbol, venue_symbol, reason))
        self._resyncs.add(task)
        task.add_done_callback(self._resyncs.discard)

    def _forget_book(self, symbol: str) -> None:
        """After the socket was lost, the book starts over from the new socket's snapshot: ccxt's copy is dropped
        (some of its venue classes merge a new snapshot into the old book instead of replacing it: Bitget) and
        the update ids start over. (Not after other errors: ccxt re-subscribes those on the same socket and
        some of its classes expect their book to be there: Gate futures.)"""
        if self.exchange is not None:
            self.exchange.orderbooks.pop(symbol, None)
            market = (self.exchange.markets or {}).get(symbol)
            if market is not None:
                self._book_ids.pop(market["id"], None)

    def _symbol_of(self, venue_symbol: str) -> str | None:
        found = (self.exchange.markets_by_id or {}).get(venue_symbol) if self.exchange is not None else None
        return found[0]["symbol"] if found else None

    async def _resync(self, symbol: str, venue_symbol: str, reason: str) -> None:
        """Watch a book afresh after a lost update: stop its loop, un-watch it at the venue (ccxt drops its copy),
        and watch again, which takes a new snapshot. `degraded_after` resyncs in a row mark it degraded."""
        w = Watch("book", symbol)
        gap = Gap(str(w), now_ms(), None, reason)
        self.gaps.append(gap)
        self.gap_count += 1
        streak = self._resync_streak[symbol] = self._resync_streak.get(symbol, 0) + 1
        self._flowing[symbol] = 0
        if streak >= self.degraded_after:
            self._failing[w] = reason
            self.state = "degraded"
            self._log.bind(watch=str(w), resyncs=streak, error=reason).error("market data degraded")
            self._note("market data degraded", watch=str(w), failures=streak, error=reason)
        task = self._tasks.pop(w, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        try:
            await self._unwatch_at_venue(w)
        finally:
            self._resyncing.discard(venue_symbol)
            self._book_ids.pop(venue_symbol, None)
        if w in self._watchers and w not in self._tasks and self.state != "closed":
            self._tasks[w] = asyncio.create_task(self._loop(w, gap), name=f"watch-{self.key}-{w}")

    def _note(self, message: str, **fields: Any) -> None:
        if self._event_log is not None:
            self._event_log(message, key=str(self.key), **fields)

    # status --------------------------------------------------------------------------------------------------
    def status_dict(self) -> dict[str, Any]:
        watching: dict[str, list[str]] = {}
        for w in sorted(self._watchers):
            watching.setdefault(w.kind, []).append(w.symbol + (f" {w.timeframe}" if w.timeframe else ""))
        return {
            "state": self.state,
            "watching": watching,
            "watchers": {str(w): sorted(who) for w, who in sorted(self._watchers.items())},
            "published": {k: v for k, v in self.published.items() if v},
            "gaps": self.gap_count,
            "recent_gaps": [attrs.asdict(g) for g in list(self.gaps)[-5:]],
            "failing": {str(w): reason for w, reason in self._failing.items()},
            "errors": self.errors,
            "dead_letters": self.dead_letters,
        }


def _lost_socket(exc: BaseException) -> bool:
    """ccxt's NetworkError (the socket closed, or could not open) and its subclasses."""
    return any(cls.__name__ == "NetworkError" for cls in type(exc).__mro__)


def _bad_symbol(exc: BaseException) -> bool:
    """ccxt's BadSymbol (or its parent BadRequest from the venue's own refusal of a symbol)."""
    return any(cls.__name__ == "BadSymbol" for cls in type(exc).__mro__)
