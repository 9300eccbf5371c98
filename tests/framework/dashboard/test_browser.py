"""The dashboard page in a real browser: Debian's headless Chromium driven by Playwright, against a simulator, a pool
on a SQLite file, the Quoter and the dashboard backend on 127.0.0.1 port 0. The page goes live, shows a fill within
1 s of the simulator making it, survives the backend cutting its socket (connecting, then live again, resumed with
`since`, ending equal to the store), and places a manual order through review and confirmation that fills at the
simulator. A screenshot of each page is kept as a test artifact (TRADESYNC_ARTIFACTS, else the test's tmp dir);
with TRADESYNC_SCREENSHOT=1 the last one is also written to docs/dashboard.png for the README.

Off CI the tests skip (with the reason) when Chromium or Playwright is missing; with CI=true they fail instead."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from decimal import Decimal
from pathlib import Path

import pytest

from exchanges.simulator import Simulator
from framework.dashboard import Dashboard
from framework.events import Market, OrderStatus
from framework.orders import WebSocketTradingConfig, setup_websocket_trading
from framework.pool import ConnectionPool
from strategies.quoter import Quoter

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TOKEN = "browser-test-token-0123456789"
SYMBOL = "BTC/USDT"
ROOT = Path(__file__).resolve().parents[3]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


def _missing() -> str | None:
    """Why the browser cannot run here, or None."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed: pip install -e '.[test]' (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)"
    return None


@pytest.fixture
def artifacts(tmp_path) -> Path:
    where = os.environ.get("TRADESYNC_ARTIFACTS")
    folder = Path(where) if where else tmp_path / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def browser():
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser test cannot run in CI: {reason}")
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield chromium
        finally:
            await chromium.close()


class Run:
    """A simulator, a pool on a SQLite file, the Quoter on binance spot, and the dashboard (manual orders on)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def __aenter__(self) -> Run:
        self.sim = Simulator(exchanges=["binance"], seed=11)
        await self.sim.start()
        self.pool = ConnectionPool(f"sqlite:///{self.directory}/trades.sqlite", self.directory / "logs")
        await self.pool.start()
        self.connector = self.sim.connector("binance", Market.SPOT)
        await setup_websocket_trading(self.pool, WebSocketTradingConfig(ack_timeout_seconds=2.0,
                                                                        confirm_timeout_seconds=2.0))
        self.quoter = Quoter("quoter", [self.connector], symbols=[SYMBOL], pool=self.pool,
                             market_data={str(self.connector.key): [SYMBOL]})
        await self.quoter.start()
        self.dashboard = Dashboard(self.pool, token=TOKEN, connectors=[self.connector], symbols=[SYMBOL],
                                   health_every=0.5)
        await self.dashboard.start()
        self.ledger = self.sim.ledger("binance", Market.SPOT)
        return self

    async def __aexit__(self, *exc) -> None:
        self.quoter.places_orders = False
        await self.dashboard.stop()
        await self.quoter.stop(timeout=5)
        await self.pool.stop(timeout=10)
        await self.sim.stop()

    async def quiesce(self) -> None:
        """No new fills: the Quoter stops quoting and cancels, the market stands still, everything is stored."""
        self.quoter.places_orders = False
        await self.quoter.cancel_all_orders(timeout=5)
        self.sim.market_rate = 0
        await asyncio.sleep(1.0)
        await self.pool.flush(timeout=10)

    async def next_fill(self, timeout: float = 60.0):
        """Wait for the simulator to make a fill (watched every 2 ms); that fill and when the test saw it (ms)."""
        made = len(self.ledger.fills)
        deadline = time.monotonic() + timeout
        while len(self.ledger.fills) == made:
            assert time.monotonic() < deadline, f"the simulator made no fill in {timeout} s"
            await asyncio.sleep(0.002)
        return self.ledger.fills[made], time.time_ns() // 1_000_000


async def open_page(browser, run: Run, prepare=None):
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    if prepare is not None:
        await prepare(page)
    await page.goto(f"{run.dashboard.page_url}")
    await page.wait_for_selector("#banner[data-state=live]", timeout=10_000)
    return page, errors


async def shown_fill(page, trade_id: str, timeout_ms: float):
    """The fills table's row of a trade once it is there (None if it did not come in time)."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    try:
        return await page.wait_for_selector(f'[data-testid=fill-row][data-trade-id="{trade_id}"]', timeout=timeout_ms)
    except PlaywrightTimeout:
        return None


def readme_screenshot() -> bool:
    return os.environ.get("TRADESYNC_SCREENSHOT") == "1"


async def snap(page, artifacts: Path, name: str, *, readme: bool = False) -> Path:
    """A screenshot of the whole page as a test artifact (and, when asked, as the README's docs/dashboard.png)."""
    path = artifacts / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    if readme and readme_screenshot():
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(path, ROOT / "docs" / "dashboard.png")
    return path


async def page_picture(page) -> dict:
    return await page.evaluate("""() => {
        const s = window.tradesync.state;
        return {
          balances: [...s.balances.values()].map(b => [b.key, b.asset, b.free, b.locked, b.total]),
          fills: s.fills.map(f => f.store_seq),
          open: [...s.orders.values()].filter(o => !['filled','canceled','rejected','expired'].includes(o.state))
                  .map(o => o.client_order_id),
          seq: window.tradesync.stream.lastSeq,
        };
    }""")


async def test_page_goes_live_and_shows_a_simulator_fill_within_one_second(tmp_path, browser, artifacts):
    async with asyncio.timeout(120):
        async with Run(tmp_path) as run:
            page, errors = await open_page(browser, run)
            assert await page.text_content("#stream-state") == "live"
            assert await page.text_content("#transport") == "WS"
            await page.wait_for_selector('[data-testid=connection-row][data-key="binance_spot"][data-status=connected]',
                                         timeout=10_000)
            await page.wait_for_selector('[data-testid=balance-row][data-asset="USDT"]', timeout=20_000)

            late = []
            for _ in range(3):  # three fills in a row, each timed from the moment the simulator made it
                fill, seen_ms = await run.next_fill()
                row = await shown_fill(page, fill.trade_id, 1000)
                found_ms = time.time_ns() // 1_000_000
                assert row is not None, f"fill {fill.trade_id} made at {fill.time} not shown within 1 s"
                shown_at = int(await row.get_attribute("data-shown-at"))  # the browser's clock, when drawn
                late.append((shown_at - fill.time, found_ms - seen_ms))
                assert shown_at - fill.time <= 1000, late
                cells = await row.eval_on_selector_all("td", "tds => tds.map(td => td.textContent)")
                assert cells[1:4] == ["binance_spot", SYMBOL, fill.side.value], cells
                assert (Decimal(cells[4]), Decimal(cells[5])) == (fill.amount, fill.price), cells
                assert cells[7] == fill.trade_id and cells[8] == fill.client_order_id and cells[9] == "quoter"
            assert all(found <= 1000 for _, found in late), late

            # the other panels are drawn from the same stream: the Quoter's orders, the health report, the chart
            await page.wait_for_selector("[data-testid=order-row]", timeout=10_000)
            await page.wait_for_selector("[data-testid=healthy][data-healthy=true]", timeout=10_000)
            await page.wait_for_function("() => window.tradesync.state.chart.length > 0", timeout=10_000)
            assert int(await page.evaluate("window.tradesync.stream.snapshots")) == 1
            await snap(page, artifacts, "dashboard_live")
            assert errors == []


async def test_page_reconnects_after_the_backend_drops_its_socket_and_ends_equal_to_the_store(tmp_path, browser,
                                                                                               artifacts):
    async with asyncio.timeout(120):
        async with Run(tmp_path) as run:
            page, errors = await open_page(browser, run)
            await run.next_fill()
            await page.wait_for_function("() => window.tradesync.state.fills.length > 0", timeout=5_000)
            seq_before = await page.evaluate("window.tradesync.stream.lastSeq")

            for drop in range(2):
                dropped_ms = time.time_ns() // 1_000_000
                assert await run.dashboard.drop_pages() == 1
                await page.wait_for_selector("#banner[data-state=connecting]", timeout=5_000)
                assert (await page.text_content("#stream-state")).startswith("connecting (attempt ")
                await page.wait_for_selector("#banner[data-state=live]", timeout=10_000)
                history = await page.evaluate("window.tradesync.stream.history")
                after = [h["text"] for h in history if h["at"] >= dropped_ms]
                assert after[:2] == ["connecting (attempt 1)", "live"], history

            # resumed with since=<last seq applied>: no second snapshot, no gap, and what happened while it was
            # away arrived (a fill made after the drops shows)
            fill, _ = await run.next_fill()
            assert await shown_fill(page, fill.trade_id, 2_000) is not None
            assert int(await page.evaluate("window.tradesync.stream.snapshots")) == 1
            assert await page.evaluate("window.tradesync.stream.lastSeq") > seq_before

            await run.quiesce()
            latest = run.dashboard.state.journal.latest
            await page.wait_for_function(f"() => window.tradesync.stream.lastSeq >= {latest}", timeout=5_000)
            view = await page_picture(page)
            stored = await run.pool.store.trades_after([run.connector.key], 0, 100_000)
            assert view["fills"] == [seq for seq, _ in stored][-200:]
            balances = sorted([str(b.key), b.asset, b.free, b.locked, b.total]
                              for b in await run.pool.store.fetch_balances())
            assert sorted([k, a, Decimal(f), Decimal(lk), Decimal(t)] for k, a, f, lk, t in view["balances"]) == \
                balances
            assert view["open"] == [], "the Quoter cancelled everything: nothing open on the page"
            rows = await page.eval_on_selector_all("[data-testid=fill-row]", "rows => rows.length")
            assert rows == min(len(stored), 200)
            await snap(page, artifacts, "dashboard_reconnected")
            assert errors == []


async def test_manual_order_through_review_and_confirm_is_placed_and_fills(tmp_path, browser, artifacts):
    async with asyncio.timeout(120):
        async with Run(tmp_path) as run:
            page, errors = await open_page(browser, run)
            await page.wait_for_selector('[data-testid=balance-row][data-asset="USDT"]', timeout=20_000)
            await page.fill("#manual-key", "binance_spot")
            await page.fill("#manual-symbol", SYMBOL)
            await page.check("#manual-side-long")
            await page.select_option("#manual-type", "market")
            await page.fill("#manual-amount", "0.003")
            await page.click("#manual-review")

            # the confirmation step: the summary the backend wrote, nothing placed yet
            await page.wait_for_selector("#manual-confirm:not([hidden])", timeout=5_000)
            summary = await page.text_content("#manual-summary")
            assert "long (buy) 0.003 BTC/USDT at the market (market) on binance_spot" in summary, summary
            assert not [o for o in run.ledger.orders.values() if (o.client_order_id or "").startswith("dash")]

            await page.click("#manual-confirm-button")
            await page.wait_for_selector("#manual-result:not([hidden])", timeout=10_000)
            await page.wait_for_selector("#manual-result[data-state=filled]", timeout=10_000)
            client_id = await page.text_content("#manual-result-client-id")
            assert client_id.startswith("dash"), client_id
            assert await page.text_content("#manual-result-path") == "websocket"
            latency = await page.text_content("#manual-result-latency")
            assert latency.endswith(" ms") and 0 < float(latency.removesuffix(" ms")) < 2000, latency

            # the simulator's book of record: one order of ours, filled, for what was asked
            ours = [o for o in run.ledger.orders.values() if o.client_order_id == client_id]
            assert len(ours) == 1 and ours[0].status is OrderStatus.FILLED, ours
            assert ours[0].amount == Decimal("0.003") and ours[0].side.value == "buy"
            assert await page.text_content("#manual-result-order-id") == ours[0].order_id
            fills = [f for f in run.ledger.fills if f.order_id == ours[0].order_id]
            assert fills and sum(f.amount for f in fills) == Decimal("0.003")
            for fill in fills:  # each of its fills in the table, owned by the dashboard's strategy
                row = await shown_fill(page, fill.trade_id, 5_000)
                assert row is not None, fill
                assert await row.get_attribute("data-client-order-id") == client_id
            assert "(1 fill" in await page.text_content("#manual-result-filled") or len(fills) > 1

            # the page is back at the form, no error shown
            assert await page.is_hidden("#manual-confirm")
            assert await page.is_hidden("#manual-error")

            # another process's bot publishes a decision: shown in the events panel, its text as text (no markup)
            run.dashboard.publish("trading_decision", {
                "action": "buy", "symbol": SYMBOL, "confidence": "0.72", "strategy_id": "momentum",
                "reasoning": "<img src=x onerror=window.hacked=1> the bid is rising"}, source="bot-1")
            event = await page.wait_for_selector('[data-testid=event][data-type=trading_decision][data-source="bot-1"]',
                                                 timeout=5_000)
            shown = await event.text_content()
            assert "trading_decision from bot-1: buy · BTC/USDT · confidence 0.72 · <img src=x" in shown, shown
            assert await page.evaluate("window.hacked === undefined && !document.querySelector('#events img')")
            await page.wait_for_function("() => window.tradesync.state.chart.length > 0", timeout=10_000)
            if readme_screenshot():  # the README's picture: a few more fills on the chart, a plainer decision
                run.dashboard.publish("ai_decision", {"decision": "hold", "symbol": SYMBOL, "confidence": "0.55",
                                                      "reasoning": "spread too thin for an edge", "model": "demo"},
                                      source="bot-2")
                await page.wait_for_function("() => window.tradesync.state.fills.length >= 16", timeout=60_000)
            await snap(page, artifacts, "dashboard", readme=True)
            assert errors == []


async def test_page_polls_http_after_eight_failed_tries_and_returns_to_the_socket(tmp_path, browser, artifacts):
    """The socket refused (the page's own socket cut in the browser, HTTP still up): 8 tries with backoff, the failed
    banner and the HTTP badge, fills still arriving by polling; the socket back at the next 30 s retry, resumed."""
    refusing = False

    async def route(ws) -> None:
        if refusing:
            await ws.close(code=1011, reason="refused by the test")
        else:
            ws.connect_to_server()

    async def prepare(page) -> None:
        await page.route_web_socket(re.compile(r".*/ws/live-dashboard.*"), route)
        await page.clock.install()  # the page's timers: real time, but the test may jump over the waits

    async with asyncio.timeout(120):
        async with Run(tmp_path) as run:
            page, errors = await open_page(browser, run, prepare)
            await run.next_fill()
            await page.wait_for_function("() => window.tradesync.state.fills.length > 0", timeout=5_000)

            refusing = True
            dropped_ms = await page.evaluate("Date.now()")
            assert await run.dashboard.drop_pages() == 1
            await page.wait_for_selector("#banner[data-state=connecting]", timeout=5_000)
            for _ in range(40):  # jump over the backoff waits (250 ms doubling to 10 s)
                if await page.get_attribute("#banner", "data-state") == "failed":
                    break
                await page.clock.fast_forward(2_000)
                await asyncio.sleep(0.05)
            state = await page.text_content("#stream-state")
            assert state == "failed after 8 tries: the socket closed before the dashboard said anything " \
                            "(code 1011: refused by the test)", state
            assert await page.text_content("#transport") == "HTTP"
            history = await page.evaluate("window.tradesync.stream.history")
            texts = [h["text"] for h in history if h["at"] >= dropped_ms]
            assert texts == [f"connecting (attempt {n})" for n in range(1, 9)] + [state], texts
            seq_before = await page.evaluate("window.tradesync.stream.lastSeq")
            bounds = await page.evaluate("""async () => {
                const page = await import('/static/app.js');  // the module already loaded: its backoff
                return [1, 2, 3, 4, 5, 6, 7, 8, 9].map(
                    n => [page.backoffDelay(n, () => 0), page.backoffDelay(n, () => 1)]);
            }""")
            assert bounds == [[125, 250], [250, 500], [500, 1000], [1000, 2000], [2000, 4000], [4000, 8000],
                              [5000, 10000], [5000, 10000], [5000, 10000]], bounds

            # polling: a fill the simulator makes now reaches the table over HTTP, the socket's seq stands still
            fill, _ = await run.next_fill()
            assert await shown_fill(page, fill.trade_id, 5_000) is not None
            assert await page.evaluate("window.tradesync.stream.lastSeq") == seq_before
            await snap(page, artifacts, "dashboard_http_polling")

            refusing = False  # the socket is let through again: the next 30 s retry takes it
            await page.clock.fast_forward(30_000)
            await page.wait_for_selector("#banner[data-state=live]", timeout=10_000)
            assert await page.text_content("#transport") == "WS"
            assert int(await page.evaluate("window.tradesync.stream.snapshots")) == 1  # resumed with since
            fill, _ = await run.next_fill()
            assert await shown_fill(page, fill.trade_id, 2_000) is not None
            assert await page.evaluate("window.tradesync.stream.lastSeq") > seq_before
            assert errors == []


async def test_page_with_a_wrong_or_no_token_says_so_and_shows_nothing(tmp_path, browser):
    async with asyncio.timeout(60):
        async with Run(tmp_path) as run:
            await run.next_fill()
            page = await browser.new_page()
            await page.goto(f"{run.dashboard.url}/?token=not-{TOKEN}")
            await page.wait_for_selector("#banner[data-state=failed]", timeout=10_000)
            assert await page.text_content("#stream-state") == \
                "failed after 1 try: the token was refused (HTTP 401): open the URL the dashboard printed"
            assert await page.is_hidden("#retry-note")  # no polling with a refused token
            await asyncio.sleep(0.5)
            assert await page.evaluate("window.tradesync.state.fills.length") == 0
            assert await page.eval_on_selector_all("[data-testid=fill-row], [data-testid=balance-row]",
                                                   "rows => rows.length") == 0

            await page.goto(f"{run.dashboard.url}/")
            await page.wait_for_selector("#banner[data-state=failed]", timeout=10_000)
            assert await page.text_content("#stream-state") == \
                "failed after 0 tries: no token in the page's address: open the URL the dashboard printed (…/?token=…)"
