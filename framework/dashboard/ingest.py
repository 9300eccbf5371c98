"""The dashboard's publisher socket (`GET /ws`): other processes' bots publish their events here; each is journaled
once (a resend after a reconnect is dropped by its publisher's seq), forwarded to the pages and acked."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Awaitable, Callable

import msgspec
from aiohttp import WSMsgType, web
from loguru import logger

from framework.dashboard.auth import token_matches, token_of, unauthorized

# The dashboard's own message types and this protocol's: a publisher may not send them.
RESERVED_TYPES = frozenset({"snapshot", "balance", "positions", "connection", "health", "alert", "pnl", "ping",
                            "pong", "hello", "welcome", "ack", "error"})
HELLO_TIMEOUT = 10.0  # seconds a new socket has to say hello
MAX_MESSAGE = 1024 * 1024  # bytes in one publisher message
MAX_ID = 128  # characters in a publisher id

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Ingest:
    """Publishers' sockets and, per publisher id, the last seq journaled from it (this dashboard process's life:
    a restarted dashboard takes every resend once more, and the page journal starts over anyway)."""

    def __init__(self, dashboard: Any) -> None:
        self.dashboard = dashboard
        self.last_seq: dict[str, int] = {}
        self.received: dict[str, int] = {}  # messages journaled per publisher
        self.resends = 0  # messages dropped as already journaled
        self._sockets: dict[str, web.WebSocketResponse] = {}  # the live socket of each publisher
        self._closing: set[asyncio.Task] = set()
        self._log = logger.bind(component="dashboard-ingest")

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [("GET", "/ws", self.publisher_socket)]

    def status(self) -> dict[str, Any]:
        return {"connected": sorted(self._sockets), "last_seq": dict(self.last_seq),
                "received": dict(self.received), "resends": self.resends}

    async def publisher_socket(self, request: web.Request) -> web.StreamResponse:
        presented = token_of(request)
        if not token_matches(presented, self.dashboard.token):  # the server's middleware refused it already
            return unauthorized(presented)
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=MAX_MESSAGE)
        await ws.prepare(request)
        publisher = await self._hello(ws)
        if publisher is None:
            return ws
        older = self._sockets.get(publisher)
        self._sockets[publisher] = ws
        if older is not None and not older.closed:  # the publisher reconnected: its old socket is gone for it
            # Closed without waiting for a dead peer; what it still delivers is taken (or dropped) by seq.
            task = asyncio.create_task(older.close(code=4000, message=b"replaced by a newer connection"),
                                       name=f"ingest-close-{publisher}")
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        log = self._log.bind(publisher=publisher)
        try:
            last = self.last_seq.get(publisher, 0)
            await ws.send_str(json.dumps({"type": "welcome", "last_seq": last}))
            log.bind(last_seq=last).info("publisher connected")
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                answer = self._take(publisher, message.data)  # synchronous: one message at a time, whatever socket
                if answer.__class__ is int:
                    await ws.send_str(f'{{"type":"ack","seq":{answer}}}')
                    continue
                await ws.send_str(json.dumps(answer))
                if answer.get("type") == "error":
                    await ws.close(code=4400, message=b"protocol error")
                    log.bind(error=answer["error"]).warning("publisher broke the protocol; socket closed")
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if self._sockets.get(publisher) is ws:
                del self._sockets[publisher]
        return ws

    async def _hello(self, ws: web.WebSocketResponse) -> str | None:
        try:
            async with asyncio.timeout(HELLO_TIMEOUT):
                message = await ws.receive()
        except TimeoutError:
            await _refuse(ws, f"no hello within {HELLO_TIMEOUT:g} s")
            return None
        if message.type is not WSMsgType.TEXT:
            if not ws.closed:
                await _refuse(ws, "the first message must be a hello")
            return None
        try:
            hello = json.loads(message.data)
        except ValueError:
            hello = None
        publisher = hello.get("publisher") if isinstance(hello, dict) and hello.get("type") == "hello" else None
        if not isinstance(publisher, str) or not publisher.strip() or len(publisher) > MAX_ID:
            await _refuse(ws, 'the first message must be {"type": "hello", "publisher": "<id>"} (an id of 1 to '
                          f'{MAX_ID} characters)')
            return None
        return publisher

    def _take(self, publisher: str, text: str) -> int | dict[str, Any]:
        """One publisher message: journaled and forwarded unless a resend. The answer to send back: its seq (a plain
        ack), an ack with an error (not taken), or an error (the socket is closed)."""
        try:
            message = _decode(text)
        except (msgspec.DecodeError, ValueError):
            return {"type": "error", "error": "a message is not JSON"}
        if not isinstance(message, dict):
            return {"type": "error", "error": "a message must be a JSON object"}
        seq = message.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            return {"type": "error", "error": "a message needs seq, a positive integer"}
        if seq <= self.last_seq.get(publisher, 0):
            self.resends += 1
            return seq
        kind, data = message.get("type"), message.get("data")
        problem = _problem(kind, data)
        self.last_seq[publisher] = seq
        if problem is not None:
            return {"type": "ack", "seq": seq, "error": problem}
        stamp = message.get("timestamp")
        self.dashboard.publish(kind, data, source=publisher,
                               timestamp=stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else None)
        self.received[publisher] = self.received.get(publisher, 0) + 1
        return seq


_decode = msgspec.json.decode


def _problem(kind: Any, data: Any) -> str | None:
    if not isinstance(kind, str) or not kind or len(kind) > 64 or not kind.isascii() \
            or not kind.replace("_", "a").isalnum():
        return f"type {str(kind)[:70]!r} is not a message type: a name of letters, digits and _"
    if kind in RESERVED_TYPES:
        return f"type {kind!r} is the dashboard's own: not taken from a publisher"
    if not isinstance(data, dict):
        return "data must be a JSON object"
    return None


async def _refuse(ws: web.WebSocketResponse, error: str) -> None:
    await ws.send_str(json.dumps({"type": "error", "error": error}))
    await ws.close(code=4400, message=b"protocol error")


def routes(dashboard: Any) -> list[tuple[str, str, Handler]]:
    """What the dashboard server mounts: the publisher socket, over `dashboard.publish(type, data, source=...)`
    (journal and page fan-out) and `dashboard.token`. The Ingest is kept as `dashboard.ingest` for its status."""
    ingest = Ingest(dashboard)
    try:
        dashboard.ingest = ingest
    except AttributeError:  # a dashboard with slots: the status is then not reachable from it
        pass
    return ingest.routes()
