"""Account state in both stores: the latest balance per asset and position per symbol (and hedge leg), replaced only
by a newer-or-equal venue time (a delta sent before a reconnect's snapshot never undoes it), every update in the
history, delta-only balance updates in the history alone, exact decimals."""

from decimal import Decimal

from framework.account import BalanceUpdate, PositionUpdate
from framework.events import ConnectionKey

T = 1_764_000_000_000
KEY = ConnectionKey(exchange="bybit", market="future")


def balance(asset, total, t, **kw):
    return BalanceUpdate(exchange="bybit", market="future", asset=asset, free=total, locked="0", total=total,
                         timestamp=t, **kw)


def position(size, t, direction="long", **kw):
    return PositionUpdate(exchange="bybit", market="future", symbol="BTC/USDT:USDT", symbol_raw="BTCUSDT",
                          direction=direction, size=size, entry_price="65000.1", leverage="10", timestamp=t, **kw)


async def test_the_latest_state_wins_by_venue_time_and_the_history_keeps_all(store):
    await store.write_account([balance("USDT", "1000.5", T + 10, source="rest")], [position("0.5", T + 10)])
    await store.write_account([balance("USDT", "999.25", T + 5)], [position("0.7", T + 5)])  # older: history only
    await store.write_account([balance("USDT", "998.125", T + 20), balance("BTC", "0.00000001", T + 20)],
                              [position("0", T + 20, direction="flat")])
    await store.write_account([BalanceUpdate(exchange="bybit", market="future", asset="USDT", delta="-1.5",
                                             reason="WITHDRAW", timestamp=T + 30)], [])
    balances = {b.asset: b for b in await store.fetch_balances(KEY)}
    assert balances["USDT"].total == Decimal("998.125") and balances["BTC"].total == Decimal("0.00000001")
    assert balances["USDT"].timestamp == T + 20
    (latest,) = await store.fetch_positions(KEY)
    assert latest.size == 0 and latest.direction.value == "flat" and latest.entry_price == Decimal("65000.1")
    history_b, history_p = await store.account_history(KEY)
    assert [b.total for b in history_b] == [Decimal("1000.5"), Decimal("999.25"), Decimal("998.125"),
                                            Decimal("0.00000001"), None]
    assert history_b[-1].delta == Decimal("-1.5") and history_b[-1].reason == "WITHDRAW"
    assert history_b[0].source.value == "rest"
    assert [p.size for p in history_p] == [Decimal("0.5"), Decimal("0.7"), Decimal("0")]
    assert await store.fetch_balances(ConnectionKey(exchange="binance", market="spot")) == []


async def test_hedge_legs_are_two_positions(store):
    await store.write_account([], [position("1", T, position_side="long"),
                                   position("2", T, direction="short", position_side="short")])
    legs = {p.position_side.value: p.signed_size for p in await store.fetch_positions()}
    assert legs == {"long": Decimal("1"), "short": Decimal("-2")}


async def test_account_states_ride_the_fills_transaction_and_two_of_one_asset_in_a_batch_keep_the_newest(store):
    """write_batch takes them with the fills (one transaction); one batch may hold several states of one asset
    (PostgreSQL's ON CONFLICT cannot touch a row twice in one statement: the newest is upserted, all go to history)."""
    await store.write_batch([], [], [], [], [balance("USDT", "10", T + 2), balance("USDT", "11", T + 3),
                                             balance("USDT", "9", T + 1)], [position("1", T), position("2", T + 1)])
    (usdt,) = await store.fetch_balances(KEY)
    (btc,) = await store.fetch_positions(KEY)
    assert (usdt.total, btc.size) == (Decimal("11"), Decimal("2"))
    history_b, history_p = await store.account_history(KEY)
    assert len(history_b) == 3 and len(history_p) == 2


def test_account_states_round_trip_the_spool():
    """While the database is down they wait in the spool as fills do: the same values come back."""
    from framework.spool import decode, encode

    for kind, event in (("balance", balance("USDT", "1000.12345678", T, reason="ORDER", source="rest")),
                        ("position", position("0.5", T, position_side="long"))):
        again = decode(encode(kind, event))
        assert again == (kind, event) and again[1].source == event.source
