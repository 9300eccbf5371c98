"""Market data values a strategy receives: Ticker, OrderBook, PublicTrade, Candle — frozen, exact Decimals.

ccxt.pro hands numbers over as floats (its order books sort and bisect on them). Each is turned back into the
venue's text with `repr()` (the shortest text that reads back as that float, which is the wire's own text for
any price or amount a venue writes: up to 15 significant digits) and then into a Decimal: never
`Decimal(float)`, which would keep the binary fraction. Books repeat the same few prices and amounts, so the
Decimal of each float is kept (up to 50,000 of them): a 20-level book costs 4 µs instead of 25. Amounts are in
base units: contract counts are multiplied by the contract size on the way in.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

import attrs

from framework.events import ConnectionKey, now_ms

Level = tuple[Decimal, Decimal]


_FLOATS: dict[float, Decimal] = {}  # float -> the Decimal of its text: books repeat the same prices and amounts
_FLOATS_MAX = 50_000  # about 10 MB at most; cleared when full


def dec(value: Any) -> Decimal | None:
    """A ccxt number (float, int or str) as an exact Decimal through its text; None stays None."""
    if value.__class__ is float:
        found = _FLOATS.get(value)
        if found is None:
            if len(_FLOATS) >= _FLOATS_MAX:
                _FLOATS.clear()
            found = _FLOATS[value] = Decimal(repr(value))
        return found
    if value is None:
        return None
    return Decimal(value) if value.__class__ is str else Decimal(str(value))


@attrs.frozen(kw_only=True, eq=False)
class Ticker:
    channel: ClassVar[str] = "ticker"
    key: ConnectionKey
    symbol: str
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    bid_size: Decimal | None = None
    ask_size: Decimal | None = None
    open: Decimal | None = None  # the venue's rolling 24 h figures
    high: Decimal | None = None
    low: Decimal | None = None
    volume: Decimal | None = None  # base units
    quote_volume: Decimal | None = None
    timestamp: int | None = None  # venue time, ms (None when the venue sends none)
    received_at: int = attrs.field(factory=now_ms)  # when the framework had it, ms

    @property
    def mid(self) -> Decimal | None:
        return (self.bid + self.ask) / 2 if self.bid is not None and self.ask is not None else None


@attrs.frozen(kw_only=True, eq=False)
class OrderBook:
    """The top `depth` levels, best first; `seq` is the venue's update id (ccxt's nonce) when it has one.
    A book is only handed on after ccxt.pro checked its sequence (and checksum, where the venue sends one)."""

    channel: ClassVar[str] = "book"
    key: ConnectionKey
    symbol: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    seq: int | None = None
    timestamp: int | None = None
    received_at: int = attrs.field(factory=now_ms)

    @property
    def best_bid(self) -> Level | None:
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> Level | None:
        return self.asks[0] if self.asks else None

    @property
    def mid(self) -> Decimal | None:
        if not self.bids or not self.asks:
            return None
        return (self.bids[0][0] + self.asks[0][0]) / 2

    @property
    def spread(self) -> Decimal | None:
        return self.asks[0][0] - self.bids[0][0] if self.bids and self.asks else None


@attrs.frozen(kw_only=True, eq=False)
class PublicTrade:
    channel: ClassVar[str] = "public_trade"
    key: ConnectionKey
    symbol: str
    trade_id: str | None
    price: Decimal
    amount: Decimal  # base units
    side: str | None  # the taker's side, buy or sell (None when the venue does not say)
    timestamp: int | None
    received_at: int = attrs.field(factory=now_ms)

    @property
    def cost(self) -> Decimal:
        return self.price * self.amount


@attrs.frozen(kw_only=True, eq=False)
class Candle:
    """One bar; `closed` is True once a later bar began (its figures are final), False while it is forming."""

    channel: ClassVar[str] = "ohlc"
    key: ConnectionKey
    symbol: str
    timeframe: str
    start: int  # ms, the bar's open time
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal | None  # base units (None where the venue's candle gives only a quote volume)
    quote_volume: Decimal | None = None  # where the venue's candle gives it instead
    closed: bool = False
    received_at: int = attrs.field(factory=now_ms)


# from ccxt's structures ----------------------------------------------------------------------------------------
def _scaled(value: Any, size: Decimal | None) -> Decimal | None:
    amount = dec(value)
    return amount * size if amount is not None and size is not None else amount


def ticker_from_ccxt(key: ConnectionKey, symbol: str, t: dict, size: Decimal | None) -> Ticker:
    return Ticker(
        key=key, symbol=symbol, bid=dec(t.get("bid")), ask=dec(t.get("ask")), last=dec(t.get("last")),
        bid_size=_scaled(t.get("bidVolume"), size), ask_size=_scaled(t.get("askVolume"), size),
        open=dec(t.get("open")), high=dec(t.get("high")), low=dec(t.get("low")),
        volume=dec(t.get("baseVolume")),
        quote_volume=dec(t.get("quoteVolume")), timestamp=t.get("timestamp"),
    )


def book_from_ccxt(key: ConnectionKey, symbol: str, book: Any, depth: int, size: Decimal | None) -> OrderBook:
    """The top `depth` levels of a ccxt.pro order book (its sides are sorted lists of [price, amount])."""
    if size is None:
        bids = tuple((dec(level[0]), dec(level[1])) for level in book["bids"][:depth])
        asks = tuple((dec(level[0]), dec(level[1])) for level in book["asks"][:depth])
    else:
        bids = tuple((dec(level[0]), dec(level[1]) * size) for level in book["bids"][:depth])
        asks = tuple((dec(level[0]), dec(level[1]) * size) for level in book["asks"][:depth])
    nonce = book.get("nonce")
    return OrderBook(key=key, symbol=symbol, bids=bids, asks=asks,
                     seq=int(nonce) if nonce is not None else None, timestamp=book.get("timestamp"))


def trade_from_ccxt(key: ConnectionKey, symbol: str, t: dict, size: Decimal | None) -> PublicTrade:
    trade_id = t.get("id")
    return PublicTrade(key=key, symbol=symbol, trade_id=str(trade_id) if trade_id is not None else None,
                       price=dec(t["price"]), amount=_scaled(t["amount"], size), side=t.get("side"),
                       timestamp=t.get("timestamp"))


def candle_from_ccxt(key: ConnectionKey, symbol: str, timeframe: str, bar: list, size: Decimal | None,
                     closed: bool, quote_volume: bool = False) -> Candle:
    """ccxt's [start, open, high, low, close, volume]; `quote_volume`: that volume is in the quote currency."""
    start, open_, high, low, close, volume = bar[:6]
    base, quote = (None, dec(volume)) if quote_volume else (_scaled(volume, size), None)
    return Candle(key=key, symbol=symbol, timeframe=timeframe, start=int(start), open=dec(open_), high=dec(high),
                  low=dec(low), close=dec(close), volume=base, quote_volume=quote, closed=closed)
