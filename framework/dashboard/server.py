"""The dashboard backend: one aiohttp server on 127.0.0.1 for the page (static files), its live socket
(`/ws/live-dashboard`: a snapshot, then every change, resumable with `since`), the HTTP polling API, the OpenAPI
description, manual orders and (framework.dashboard.ingest) other processes' publishers.

Each page has its own bounded queue: a state message replaces the queued one of the same entity; when events
overflow it the queue is dropped and the page gets a snapshot (reason "behind") instead of a backlog. The feed only
appends to queues, so a slow page never slows the bot.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import mimetypes
import socket
from collections import deque
from pathlib import Path
from typing import Any, Iterable

from aiohttp import WSMsgType, web
from loguru import logger

from framework.dashboard import ingest
from framework.dashboard.auth import auth_middleware, dashboard_token
from framework.dashboard.feed import HEALTH_EVERY, DashboardFeed
from framework.dashboard.manual import ManualOrderError, ManualTrading
from framework.dashboard.openapi import document
from framework.dashboard.state import JOURNAL_SIZE, DashboardState, Entry, encode, fill_item
from framework.errors import ConfigError, StoreError
from framework.events import now_ms

PAGE_QUEUE = 2_000  # messages queued per page before it is sent a snapshot instead
FILLS_PAGE = 1_000  # /api/fills answers at most this many
STATIC_DIR = Path(__file__).resolve().parent / "static"
LIVE_PATH = "/ws/live-dashboard"
HEARTBEAT = 30.0  # seconds between WebSocket pings to a page (one that never answers is closed)
# The kernel's send buffer of a page socket: small enough that a page that stops reading meets the queue's policy
# (coalescing, then a snapshot) within seconds, instead of megabytes of stale messages waiting in the kernel.
PAGE_SEND_BUFFER = 256 * 1024
_PAGE_IDS = itertools.count(1)
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".html": "text/html",
          ".svg": "image/svg+xml", ".png": "image/png", ".json": "application/json", ".ico": "image/x-icon"}


class _Slot:
    __slots__ = ("entry", "alive")

    def __init__(self, entry: Entry) -> None:
        self.entry = entry
        self.alive = True


class PageQueue:
    """What waits to be sent to one page, bounded by `limit` messages.

    Order of sending: pongs, a pending snapshot, the resume backlog (journal entries after the page's `since`),
    then live messages in seq order. A state message replaces the queued one of its entity (the newer goes to the
    back, so seqs stay increasing). Past `limit` the queue is cleared and a snapshot with reason "behind" is sent
    next; while one is pending nothing is queued (the snapshot, built when it is sent, holds it all)."""

    def __init__(self, limit: int = PAGE_QUEUE) -> None:
        self.limit = limit
        self.items: deque[_Slot] = deque()
        self.by_entity: dict[Any, _Slot] = {}
        self.live = 0
        self.backlog: deque[Entry] = deque()
        self.snapshot_reason: str | None = None
        self.pongs = 0
        self.coalesced = 0
        self.behind = 0  # snapshots sent because the page fell behind
        self.wakeup = asyncio.Event()

    def put(self, entry: Entry) -> None:
        if self.snapshot_reason is not None:
            return
        entity = entry.entity
        if entity is not None:
            old = self.by_entity.get(entity)
            if old is not None:
                old.alive = False
                self.live -= 1
                self.coalesced += 1
        if self.live >= self.limit:
            self.fall_behind()
            return
        slot = _Slot(entry)
        self.items.append(slot)
        if entity is not None:
            self.by_entity[entity] = slot
        self.live += 1
        if len(self.items) > 2 * self.limit:  # replaced slots pile up behind a page that reads slowly
            self.items = deque(s for s in self.items if s.alive)
        self.wakeup.set()

    def fall_behind(self) -> None:
        self.behind += 1
        self.reset("behind")

    def reset(self, reason: str) -> None:
        """Nothing queued is sent: a snapshot (with this reason) is, next."""
        self.items.clear()
        self.by_entity.clear()
        self.live = 0
        self.backlog.clear()
        self.snapshot_reason = reason
        self.wakeup.set()

    def take(self) -> Entry | str | None:
        """The next thing to send: an Entry, "pong", "snapshot:<reason>", or None when there is nothing."""
        if self.pongs:
            self.pongs -= 1
            return "pong"
        if self.snapshot_reason is not None:
            reason, self.snapshot_reason = self.snapshot_reason, None
            return f"snapshot:{reason}"
        if self.backlog:
            return self.backlog.popleft()
        items = self.items
        while items:
            slot = items.popleft()
            if slot.alive:
                self.live -= 1
                entity = slot.entry.entity
                if entity is not None and self.by_entity.get(entity) is slot:
                    del self.by_entity[entity]
                return slot.entry
        return None

    def __len__(self) -> int:
        return self.live + len(self.backlog)


class Page:
    """One connected page: its socket, queue and writer task."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, limit: int) -> None:
        self.id = next(_PAGE_IDS)
        self.request = request
        self.ws = ws
        self.queue = PageQueue(limit)
        self.sent = 0
        self.writer: asyncio.Task | None = None

    def status(self) -> dict[str, Any]:
        return {"id": self.id, "queued": len(self.queue), "sent": self.sent, "behind": self.queue.behind,
                "coalesced": self.queue.coalesced}


class Dashboard:
    """`async with Dashboard(pool, connectors=[...]) as dashboard:` serves the dashboard of a running pool.

    `port=0` picks a free port (`dashboard.url`); `token` (else TRADESYNC_DASHBOARD_TOKEN, else a new one) is
    required on every request but the page's own files. `connectors`: the keys manual orders may go to (none: off).
    """

    def __init__(self, pool: Any, *, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                 connectors: Iterable[Any] = (), symbols: Iterable[str] = (), static_dir: str | Path | None = None,
                 page_queue: int = PAGE_QUEUE, journal_size: int = JOURNAL_SIZE,
                 health_every: float = HEALTH_EVERY, name: str = "dashboard", store: Any = None) -> None:
        self.pool = pool
        self.store = store if store is not None else pool.store  # what the state is read from (the pool's)
        self.host = host
        self.port = port
        self.token = dashboard_token(token)
        self.connectors = list(connectors)
        self.static_dir = Path(static_dir) if static_dir is not None else STATIC_DIR
        self.page_queue = page_queue
        router = getattr(getattr(pool, "pipeline", None), "router", None)
        self.state = DashboardState(journal_size=journal_size, owner=router.owner if router is not None else None)
        self.feed = DashboardFeed(pool, self.state, name=name, health_every=health_every, store=self.store)
        self.manual = ManualTrading(pool, self.connectors, symbols)
        self.pages: set[Page] = set()
        self.app: web.Application | None = None
        self._runner: web.AppRunner | None = None
        self._ready = asyncio.Event()
        self._loader: asyncio.Task | None = None
        self._state = "created"
        self._log = logger.bind(component=name)

    # lifecycle ------------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Listen (a port in use is a ConfigError before anything else starts), read the state from the store,
        subscribe to the pipeline, start the manual order desk."""
        if self._state == "running":
            return
        if self._state != "created":
            raise ConfigError(f"the dashboard is {self._state}: make a new one")
        self._state = "starting"
        try:
            await self._listen()
            store = self.store
            keys = {c.key for c in self.connectors} | set(self.pool.pipeline.known_keys())
            try:
                await self.state.discover_keys(store, keys)
                await self.state.load_fills(store)  # the long read (every fill, for the PnL) before subscribing
                self.feed.register()  # from here events wait in memory: nothing falls between the store and them
                await self.state.load_account(store)
                await self.state.load_fills(store)  # those stored meanwhile
                unread = False
            except StoreError as exc:
                if not exc.transient:
                    raise
                self._log.bind(error=str(exc)[:200]).warning("store unreachable: the dashboard starts without "
                                                              "its history and reads it when the store is back")
                self.state.keys |= keys
                self.feed.register()
                unread = True
            self.state.on_entry = self._fan_out
            await self.feed.start()
            if unread:
                self._loader = asyncio.create_task(self._load_later(), name="dashboard-load-later")
            await self.manual.start()
        except BaseException:
            await self._teardown()
            self._state = "stopped"
            raise
        self._ready.set()
        self._state = "running"
        self._log.bind(url=self.url).info("dashboard listening")

    async def stop(self, timeout: float = 5.0) -> None:
        """Close every page, stop listening, leave the pipeline. Idempotent."""
        if self._state in ("created", "stopped"):
            self._state = "stopped"
            return
        self._state = "stopping"
        await self._teardown(timeout)
        self._state = "stopped"

    async def __aenter__(self) -> Dashboard:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def _listen(self) -> None:
        app = web.Application(middlewares=[auth_middleware(self.token)], client_max_size=1 << 20)
        self._routes(app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(f"the dashboard cannot listen on {self.host}:{self.port} ({exc.strerror or exc}): "
                              "choose a free port with --port (0: any free port)") from None
        self.port = site._server.sockets[0].getsockname()[1]  # the port chosen for port 0
        self.app, self._runner = app, runner

    async def _load_later(self) -> None:
        """The store's state once it answers, read as at start (events held meanwhile), then a snapshot to every
        page (reason "behind": what it showed lacked the history)."""
        while True:
            await asyncio.sleep(2.0)
            self.feed.hold()
            try:
                await self.state.discover_keys(self.store)
                self.state.forget_fills()  # the live ones shown so far are stored: read in their place
                await self.state.load_fills(self.store)
                await self.state.load_account(self.store)
            except StoreError as exc:
                self._log.bind(error=str(exc)[:200]).debug("store still unreachable for the dashboard")
                continue
            finally:
                await self.feed.release()
            for page in self.pages:
                page.queue.reset("behind")
            self._log.info("store answers: the dashboard read its history")
            return

    async def _teardown(self, timeout: float = 5.0) -> None:
        self.state.on_entry = None
        loader, self._loader = self._loader, None
        if loader is not None:
            loader.cancel()
            await asyncio.gather(loader, return_exceptions=True)
        for page in list(self.pages):
            await self._close_page(page)
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        await self.manual.stop(timeout)
        await self.feed.stop(timeout)

    # addresses --------------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def page_url(self) -> str:
        return f"{self.url}/?token={self.token}"

    # what other parts publish -----------------------------------------------------------------------------------
    def publish(self, kind: str, data: Any, *, source: str | None = None, timestamp: int | None = None) -> int:
        """Journal a message and send it to every page (an event: never coalesced); `source` marks a publisher's
        (it is put in the data). Returns its seq."""
        if source is not None:
            data = {**data, "source": source} if isinstance(data, dict) else {"value": data, "source": source}
            if not kind or kind in ("snapshot", "pong"):
                raise ValueError(f"a publisher cannot send a message of type {kind!r}")
            return self.state.record(kind, data, timestamp=timestamp).seq
        return self.feed.publish(kind, data)

    async def drop_pages(self) -> int:
        """Cut every page's socket as a network failure would (no close frame): for tests of the page's
        reconnection. Returns how many."""
        pages = list(self.pages)
        for page in pages:
            transport = page.request.transport
            if transport is not None:
                transport.abort()
        return len(pages)

    def status(self) -> dict[str, Any]:
        return {"connections": self.state.connections, "health": self.state.health,
                "alerts": list(self.state.alerts), "seq": self.state.journal.latest, "pages": len(self.pages)}

    # pages ------------------------------------------------------------------------------------------------------
    def _fan_out(self, entry: Entry) -> None:
        for page in self.pages:
            page.queue.put(entry)

    async def _live(self, request: web.Request) -> web.StreamResponse:
        since_text = request.query.get("since")
        since = None
        if since_text not in (None, ""):
            try:
                since = int(since_text)
            except ValueError:
                return _error(400, f"since must be a seq number, got {since_text!r}")
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=1 << 16)
        await ws.prepare(request)
        sock = request.transport.get_extra_info("socket") if request.transport is not None else None
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, PAGE_SEND_BUFFER)
        try:
            await asyncio.wait_for(self._ready.wait(), 30)
        except TimeoutError:
            await ws.close(code=1013, message=b"the dashboard is not ready")
            return ws
        page = Page(request, ws, self.page_queue)
        backlog = None if since is None else self.state.journal.since(since)
        if backlog is None:  # no await from here to the page joining the fan-out: nothing is missed
            page.queue.snapshot_reason = "connect" if since is None else "resume_too_old"
        else:
            page.queue.backlog.extend(backlog)
        self.pages.add(page)
        page.writer = asyncio.create_task(self._write(page), name=f"dashboard-page-{page.id}")
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    if _is_ping(message.data):
                        page.queue.pongs += 1
                        page.queue.wakeup.set()
                elif message.type is WSMsgType.ERROR:
                    break
        finally:
            self.pages.discard(page)
            if page.writer is not None:
                page.writer.cancel()
                await asyncio.gather(page.writer, return_exceptions=True)
        return ws

    async def _write(self, page: Page) -> None:
        queue, ws, state = page.queue, page.ws, self.state
        try:
            while not ws.closed:
                item = queue.take()
                if item is None:
                    queue.wakeup.clear()
                    await queue.wakeup.wait()
                    continue
                if item.__class__ is Entry:
                    text = item.text
                elif item == "pong":
                    text = encode({"type": "pong", "seq": state.journal.latest, "data": None, "timestamp": now_ms()})
                else:
                    text = state.snapshot(item.partition(":")[2]).text
                await ws.send_str(text)
                page.sent += 1
        except (ConnectionResetError, RuntimeError):  # the page went away mid-send
            pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - one page's socket trouble ends that page only
            self._log.bind(page=page.id, error=repr(exc)[:200]).warning("dashboard page writer stopped")
        finally:
            if not ws.closed:
                transport = page.request.transport
                if transport is not None:
                    transport.abort()

    async def _close_page(self, page: Page) -> None:
        self.pages.discard(page)
        if page.writer is not None:
            page.writer.cancel()
            await asyncio.gather(page.writer, return_exceptions=True)
        try:
            await asyncio.wait_for(page.ws.close(code=1001, message=b"dashboard stopping"), 1.0)
        except (TimeoutError, ConnectionError, RuntimeError):
            transport = page.request.transport
            if transport is not None:
                transport.abort()

    # HTTP -------------------------------------------------------------------------------------------------------
    def _routes(self, app: web.Application) -> None:
        add = app.router.add_route
        add("GET", "/", self._index)
        add("GET", "/static/{path:.+}", self._static)
        add("GET", LIVE_PATH, self._live)
        add("GET", "/api/balances", self._balances)
        add("GET", "/api/positions", self._positions)
        add("GET", "/api/orders", self._orders)
        add("GET", "/api/fills", self._fills)
        add("GET", "/api/status", self._status)
        add("GET", "/api/openapi.json", self._openapi)
        add("POST", "/api/manual-trade/prepare", self._prepare)
        add("POST", "/api/manual-trade-ws", self._manual_trade)
        for method, path, handler in ingest.routes(self):  # the publishers' socket (GET /ws)
            add(method, path, handler)

    async def _index(self, request: web.Request) -> web.StreamResponse:
        index = self.static_dir / "index.html"
        if index.is_file():
            return web.FileResponse(index, headers={"Cache-Control": "no-cache", "Content-Type": "text/html"})
        return web.Response(text="<!doctype html><title>tradesync dashboard</title><p>The dashboard page is not "
                                 "installed (framework/dashboard/static/index.html). The API is at /api/status.",
                            content_type="text/html")

    async def _static(self, request: web.Request) -> web.StreamResponse:
        root = self.static_dir.resolve()
        target = (root / request.match_info["path"]).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return _error(404, "no such file")
        kind = _TYPES.get(target.suffix.lower()) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return web.FileResponse(target, headers={"Cache-Control": "no-cache", "Content-Type": kind})

    async def _balances(self, request: web.Request) -> web.Response:
        return _json(list(self.state.balances.values()))

    async def _positions(self, request: web.Request) -> web.Response:
        return _json(list(self.state.positions.values()))

    async def _orders(self, request: web.Request) -> web.Response:
        every = request.query.get("all", "") not in ("", "0", "false")
        return _json(self.state.all_orders() if every else list(self.state.orders.values()))

    async def _fills(self, request: web.Request) -> web.Response:
        text = request.query.get("since", "0") or "0"
        try:
            since = int(text)
        except ValueError:
            return _error(400, f"since must be a store seq number, got {text!r}")
        keys = sorted(self.state.keys | set(self.pool.pipeline.known_keys()), key=str)
        try:
            rows = await self.store.trades_after(keys, since, FILLS_PAGE) if keys else []
        except StoreError as exc:
            return _error(503, f"the store cannot be read now ({str(exc)[:200]}): try again shortly")
        owner = self.state.owner
        return _json([fill_item(t, owner(t.client_order_id) if t.client_order_id else None) for _, t in rows])

    async def _status(self, request: web.Request) -> web.Response:
        return _json(self.status())

    async def _openapi(self, request: web.Request) -> web.Response:
        return _json(document(self.url))

    async def _prepare(self, request: web.Request) -> web.Response:
        try:
            return _json(self.manual.prepare(await _body(request)))
        except ManualOrderError as exc:
            return _error(400, str(exc))

    async def _manual_trade(self, request: web.Request) -> web.Response:
        try:
            body = await _body(request)
            return _json(await self.manual.confirm(body.get("confirmation_id") if isinstance(body, dict) else None))
        except ManualOrderError as exc:
            return _error(400, str(exc))


def _is_ping(data: str) -> bool:
    try:
        message = json.loads(data)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") == "ping"


async def _body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise ManualOrderError("the body is not JSON") from None


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(text=encode(value), status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)
