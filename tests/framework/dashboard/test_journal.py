"""The pure parts of the dashboard: the journal's resume points, a page's bounded queue (coalescing, the snapshot
when it falls behind), the PnL chart from fills, and a page's view rebuilt from messages."""

import json
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from framework.dashboard.server import PageQueue
from framework.dashboard.state import DashboardState, Journal, PageView, PnL
from framework.events import Trade


def _fill(side: str, amount: str, price: str, ts: int, fee: str = "0", n: int = 1) -> Trade:
    return Trade(exchange="binance", market="spot", symbol="BTC/USDT", symbol_raw="BTCUSDT", trade_id=str(n),
                 order_id=str(n), side=side, amount=amount, price=price, cost=str(Decimal(amount) * Decimal(price)),
                 fee_cost=fee, fee_currency="USDT", timestamp=ts, seq=n)


def test_journal_resumes_after_any_kept_seq_and_refuses_older_ones():
    journal = Journal(size=5)
    for n in range(1, 9):
        assert journal.append("health", {"n": n}).seq == n
    assert journal.oldest == 4 and journal.latest == 8
    assert [e.seq for e in journal.since(3)] == [4, 5, 6, 7, 8]  # oldest - 1: still a resume point
    assert [e.seq for e in journal.since(7)] == [8]
    assert journal.since(8) == []
    assert journal.since(2) is None  # 3 was dropped: the page needs a snapshot
    assert journal.since(9) is None  # a seq this process never made (another dashboard process's)
    message = json.loads(journal.since(7)[0].text)
    assert message["type"] == "health" and message["seq"] == 8 and message["data"] == {"n": 8}
    assert isinstance(message["timestamp"], int)


def test_page_queue_replaces_a_queued_state_and_keeps_seqs_increasing():
    journal, queue = Journal(), PageQueue(limit=10)
    queue.put(journal.append("balance", {"v": 1}, entity=("balance", "k", "USDT")))
    queue.put(journal.append("fill", {"v": 2}))
    queue.put(journal.append("balance", {"v": 3}, entity=("balance", "k", "USDT")))
    queue.put(journal.append("balance", {"v": 4}, entity=("balance", "k", "BTC")))
    taken = []
    while (entry := queue.take()) is not None:
        taken.append((entry.seq, json.loads(entry.text)["data"]["v"]))
    assert taken == [(2, 2), (3, 3), (4, 4)]  # the first USDT state replaced by the newer one, at the back
    assert queue.coalesced == 1 and len(queue) == 0


def test_page_queue_that_overflows_with_events_is_cleared_for_one_behind_snapshot():
    journal, queue = Journal(), PageQueue(limit=3)
    for n in range(4):
        queue.put(journal.append("fill", {"n": n}))
    assert queue.behind == 1 and len(queue) == 0
    queue.put(journal.append("fill", {"n": 9}))  # covered by the coming snapshot: not queued
    assert queue.take() == "snapshot:behind"
    assert queue.take() is None
    queue.put(journal.append("fill", {"n": 10}))
    assert queue.take().seq == 6


@given(st.lists(st.tuples(st.sampled_from(["fill", "balance", "orders"]), st.integers(0, 3), st.booleans()),
                max_size=200))
@settings(max_examples=200, deadline=None)
def test_page_queue_never_holds_more_than_its_limit_and_sends_seqs_in_order(ops):
    journal, queue = Journal(), PageQueue(limit=8)
    sent = []
    for kind, entity, take in ops:
        queue.put(journal.append(kind, {}, entity=None if kind == "fill" else (kind, entity)))
        assert len(queue) <= 8
        if take:
            item = queue.take()
            if item is not None and not isinstance(item, str):
                sent.append(item.seq)
    assert sent == sorted(sent) and len(set(sent)) == len(sent)


def test_pnl_realizes_at_average_cost_net_of_fees_and_marks_at_the_last_fill():
    pnl = PnL()
    pnl.add(_fill("buy", "1", "100", 1_000, fee="0.1", n=1))
    pnl.add(_fill("buy", "1", "110", 1_500, n=2))  # average 105
    pnl.add(_fill("sell", "0.5", "120", 2_100, n=3))  # realizes 0.5 × 15
    assert pnl.books[("binance_spot", "BTC/USDT")].position == Decimal("1.5")
    assert [p["timestamp"] for p in pnl.chart] == [1_000, 2_000]  # one point per second of fills
    last = pnl.chart[-1]
    assert Decimal(last["realized"]) == Decimal("7.5") - Decimal("0.1")
    assert Decimal(last["unrealized"]) == (Decimal(120) - Decimal(105)) * Decimal("1.5")
    assert last["fills"] == 3


def test_page_view_from_snapshot_and_messages_equals_the_state_it_was_sent():
    state = DashboardState()
    journal_seen = []
    state.on_entry = journal_seen.append
    view = PageView()
    view.apply(json.loads(state.snapshot("connect").text))
    for n in range(1, 6):
        state.apply_fill(_fill("buy" if n % 2 else "sell", "0.1", str(100 + n), 1_000 * n, n=n))
    state.emit_pnl()
    for entry in journal_seen:
        view.apply(json.loads(entry.text))
    assert view.fills == list(state.fills) and view.chart[-1] == state.pnl.chart[-1]
    assert view.seq == state.journal.latest and view.snapshots == ["connect"]
