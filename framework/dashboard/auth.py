"""The dashboard's access token: from `TRADESYNC_DASHBOARD_TOKEN` or made at start, taken from the `Authorization:
Bearer` header or the `token` query parameter, compared in constant time. The page itself and its static files are
open (the page reads the token from its own URL); everything else answers 401 without it."""

from __future__ import annotations

import os
import secrets
from typing import Any, Awaitable, Callable

from aiohttp import web

TOKEN_ENV = "TRADESYNC_DASHBOARD_TOKEN"
OPEN_PATHS = frozenset({"/", "/favicon.ico"})
OPEN_PREFIXES = ("/static/",)


def dashboard_token(given: str | None = None) -> str:
    """The token to require: the one given, else the environment's, else a fresh random one."""
    token = given or os.environ.get(TOKEN_ENV, "").strip()
    return token or secrets.token_urlsafe(24)


def token_of(request: web.Request) -> str | None:
    """What the request presents: `Authorization: Bearer <token>`, else `?token=`."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query.get("token") or None


def token_matches(presented: str | None, token: str) -> bool:
    if not presented:
        return False
    return secrets.compare_digest(presented.encode("utf-8", "surrogatepass"), token.encode("utf-8"))


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def unauthorized(presented: str | None) -> web.Response:
    reason = "a token is required: add ?token=… or an Authorization: Bearer header (run_dashboard printed it)" \
        if not presented else "the token is wrong: use the one run_dashboard printed (or TRADESYNC_DASHBOARD_TOKEN)"
    return web.json_response({"error": reason}, status=401)


def auth_middleware(token: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Refuses every request but the page's own files without the token: HTTP 401, and a WebSocket before its
    upgrade (the same 401)."""

    @web.middleware
    async def check_token(request: web.Request, handler: Callable[[web.Request], Awaitable[Any]]) -> Any:
        if is_open(request.path):
            return await handler(request)
        presented = token_of(request)
        if not token_matches(presented, token):
            return unauthorized(presented)
        return await handler(request)

    return check_token
