#!/usr/bin/env python3
"""Check a dashboard deployment from a shell: print what its page socket sends, or send one test message of each
publisher type to its publisher socket and print the acks. `python scripts/ws_client.py --help`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402

from framework.runner import _positive_float as _seconds  # noqa: E402  (seconds ≥ 0, one-line errors)
from framework.sync_log import redact  # noqa: E402

PAGE_PATH = "/ws/live-dashboard"
PUBLISHER_PATH = "/ws"
SEND_TYPES = ("market_data", "trading_decision", "ai_decision", "system_status", "position_update", "fill",
              "orders")


class Refused(Exception):
    """What the user has to fix (a bad URL, a refused token): one line, exit 2."""


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Print what a tradesync dashboard's page socket sends (one JSON message a line), or, with "
        "--send, connect as a publisher, send one test message of each type and print the acks. Exits 2 with "
        "one line when the URL is bad or the token refused.",
        epilog="examples:\n  python scripts/ws_client.py --url 'http://127.0.0.1:8000/?token=…' --duration 30\n"
        "  python scripts/ws_client.py --url ws://127.0.0.1:8000/ws --token … --send all",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", default="ws://127.0.0.1:8000",
                        help="the dashboard: ws(s)://HOST:PORT[/path] or the http URL run_dashboard printed "
                        f"(path default: {PAGE_PATH}, with --send {PUBLISHER_PATH}); default ws://127.0.0.1:8000")
    parser.add_argument("--token", default=None,
                        help="access token (default: the URL's ?token=, else TRADESYNC_DASHBOARD_TOKEN or "
                        "SYSTEM__WEBSOCKET_DASHBOARD_TOKEN)")
    parser.add_argument("--duration", type=_seconds, default=30.0,
                        help="seconds to listen on the page socket (default 30; 0: until Ctrl-C)")
    parser.add_argument("--since", type=int, default=None, metavar="SEQ",
                        help="page socket: resume after this seq (every message after it, or a snapshot)")
    parser.add_argument("--send", default=None, metavar="TYPES",
                        help=f"connect as a publisher and send one test message of each type: all, or a comma list "
                        f"of {', '.join(SEND_TYPES)}")
    parser.add_argument("--publisher", default=None,
                        help="publisher id with --send (default ws_client-<host>-<pid>)")
    parser.add_argument("--timeout", type=_seconds, default=10.0, help="seconds for the connection and each ack")
    return parser


def socket_url(url: str, default_path: str) -> tuple[str, str | None]:
    """(the ws URL without a token, the token in its query if any); Refused for a URL that cannot be one."""
    try:
        parts = urlsplit(url)
        parts.port
    except ValueError as exc:
        raise Refused(f"--url {redact(url)!r} is not a URL ({exc})") from None
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.hostname:
        raise Refused(f"--url {redact(url)!r} is not a dashboard URL: write it as ws://HOST:PORT or "
                      "http://HOST:PORT/?token=…")
    query = parse_qsl(parts.query)
    token = next((v for k, v in query if k == "token"), None)
    rest = urlencode([(k, v) for k, v in query if k != "token"])
    path = parts.path if parts.path not in ("", "/") else default_path
    return urlunsplit((scheme, parts.netloc, path, rest, "")), token


async def connect(session: aiohttp.ClientSession, url: str, token: str | None, timeout: float
                  ) -> aiohttp.ClientWebSocketResponse:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with asyncio.timeout(timeout):
            return await session.ws_connect(url, headers=headers, heartbeat=max(timeout / 2, 1.0),
                                            max_msg_size=64 * 1024 * 1024)
    except aiohttp.WSServerHandshakeError as exc:
        if exc.status in (401, 403):
            hint = "give --token (run_dashboard printed token=…)" if not token else "the token is not this dashboard's"
            raise Refused(f"{url}: the dashboard refused the token (HTTP {exc.status}): {hint}") from None
        raise Refused(f"{url}: not a dashboard socket (HTTP {exc.status}): check the host, port and path") from None
    except aiohttp.InvalidURL:
        raise Refused(f"--url {url!r} is not a URL") from None
    except (aiohttp.ClientConnectorError, OSError) as exc:
        raise Refused(f"{url}: cannot connect ({redact(str(exc)) or type(exc).__name__}): is the dashboard "
                      "running there?") from None
    except TimeoutError:
        raise Refused(f"{url}: no answer within {timeout:g} s: is the dashboard running there?") from None


async def listen(url: str, token: str | None, duration: float, timeout: float) -> int:
    """Print every message of the page socket for `duration` seconds (0: until Ctrl-C); a count at the end."""
    counts: dict[str, int] = {}
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        ws = await connect(session, url, token, timeout)
        print(f"connected to {url}", file=sys.stderr, flush=True)
        try:
            async with asyncio.timeout(duration or None):
                async for message in ws:
                    if message.type is not aiohttp.WSMsgType.TEXT:
                        continue
                    print(message.data, flush=True)
                    try:
                        kind = json.loads(message.data).get("type", "?")
                    except (ValueError, AttributeError):
                        kind = "?"
                    counts[kind] = counts.get(kind, 0) + 1
            print(f"the dashboard closed the socket (code {ws.close_code})", file=sys.stderr)
            return 1
        except TimeoutError:
            pass
        finally:
            await ws.close()
            seen = ", ".join(f"{k} {n}" for k, n in sorted(counts.items())) or "none"
            print(f"{sum(counts.values())} messages in {time.monotonic() - started:.1f} s ({seen})",
                  file=sys.stderr, flush=True)
    return 0


def test_messages(types: Sequence[str], publisher: str) -> list[tuple[str, dict[str, Any]]]:
    """One made-up message of each type, marked as a test (numbers as exact text)."""
    now = int(time.time() * 1000)
    key, symbol = "binance_spot", "BTC/USDT"
    samples = {
        "market_data": {"key": key, "symbol": symbol, "bid": "65000.10", "ask": "65000.20", "last": "65000.15",
                        "mid": "65000.15", "timestamp": now},
        "trading_decision": {"action": "buy", "symbol": symbol, "confidence": "0.72",
                             "reasoning": "ws_client test: the bid is rising", "strategy_id": "ws_client"},
        "ai_decision": {"decision": "hold", "symbol": symbol, "confidence": "0.55",
                        "reasoning": "ws_client test: no edge", "model": "test"},
        "system_status": {"connections": {key: "connected"}, "alerts": [], "fills_stored": 0, "dead_letters": 0,
                          "queued": 0, "dropped": 0},
        "position_update": {"key": key, "symbol": symbol, "position_side": "net", "direction": "long",
                            "size": "0.001", "entry_price": "65000.15", "mark_price": "65000.15",
                            "unrealized_pnl": "0", "realized_pnl": "0", "leverage": None, "timestamp": now},
        "fill": {"key": key, "trade_id": f"wsclient-{now}", "order_id": f"wsclient-{now}",
                 "client_order_id": "wsclient-1", "symbol": symbol, "side": "buy", "amount": "0.001",
                 "price": "65000.20", "fee_cost": "0.000001", "fee_currency": "BTC", "timestamp": now,
                 "store_seq": None, "strategy_id": "ws_client"},
        "orders": {"key": key, "strategy_id": "ws_client", "client_order_id": "wsclient-1",
                   "order_id": f"wsclient-{now}", "symbol": symbol, "side": "buy", "order_type": "limit",
                   "amount": "0.001", "price": "65000.20", "filled": "0.001", "state": "filled", "path": "websocket",
                   "ack_latency_ms": 1.5, "reason": "", "updated": now},
    }
    return [(kind, {**samples[kind], "test": True, "sent_by": publisher}) for kind in types]


async def send(url: str, token: str | None, types: Sequence[str], publisher: str, timeout: float) -> int:
    """hello → welcome, one message of each type, each ack printed; 0 when every one was acked."""
    async with aiohttp.ClientSession() as session:
        ws = await connect(session, url, token, timeout)
        try:
            await ws.send_str(json.dumps({"type": "hello", "publisher": publisher}))
            try:
                async with asyncio.timeout(timeout):
                    first = await ws.receive()
            except TimeoutError:
                raise Refused(f"{url}: no welcome within {timeout:g} s: is it the dashboard's publisher socket "
                              f"({PUBLISHER_PATH})?") from None
            welcome = _json(first)
            if welcome.get("type") != "welcome" or not isinstance(welcome.get("last_seq"), int):
                raise Refused(f"{url}: answered {str(first.data)[:120]!r}, not a welcome: is it the dashboard's "
                              f"publisher socket ({PUBLISHER_PATH})?")
            print(first.data, flush=True)
            seq = welcome["last_seq"]
            missing = 0
            for kind, data in test_messages(types, publisher):
                seq += 1
                await ws.send_str(json.dumps({"type": kind, "data": data, "seq": seq,
                                              "timestamp": int(time.time() * 1000)}))
                try:
                    async with asyncio.timeout(timeout):
                        while True:
                            answer = await ws.receive()
                            if answer.type is not aiohttp.WSMsgType.TEXT:
                                raise ConnectionError(f"the socket ended ({answer.type.name})")
                            parsed = _json(answer)
                            if parsed.get("type") == "ack" and parsed.get("seq") == seq:
                                print(answer.data, flush=True)
                                missing += bool(parsed.get("error"))
                                break
                except (TimeoutError, ConnectionError) as exc:
                    print(f"{kind} (seq {seq}): no ack ({exc or 'timed out'})", file=sys.stderr)
                    missing += 1
            return 1 if missing else 0
        finally:
            await ws.close()


def _json(message: aiohttp.WSMessage) -> dict[str, Any]:
    if message.type is not aiohttp.WSMsgType.TEXT:
        return {}
    try:
        value = json.loads(message.data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    types: list[str] = []
    if args.send is not None:
        wanted = [t.strip() for t in args.send.split(",") if t.strip()]
        types = list(SEND_TYPES) if wanted == ["all"] else wanted
        unknown = [t for t in types if t not in SEND_TYPES]
        if unknown or not types:
            parser.error(f"--send {args.send!r}: use all or some of {', '.join(SEND_TYPES)}")
    try:
        url, url_token = socket_url(args.url, PUBLISHER_PATH if types else PAGE_PATH)
        token = args.token or url_token or os.environ.get("TRADESYNC_DASHBOARD_TOKEN") or \
            os.environ.get("SYSTEM__WEBSOCKET_DASHBOARD_TOKEN") or None
        if types:
            publisher = args.publisher or f"ws_client-{socket.gethostname()}-{os.getpid()}"
            return asyncio.run(send(url, token, types, publisher, args.timeout or 10.0))
        if args.since is not None:
            url += ("&" if "?" in url else "?") + urlencode({"since": args.since})
        return asyncio.run(listen(url, token, args.duration, args.timeout or 10.0))
    except Refused as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
