"""Reads the session cookie once per request and puts `SignedIn | None` in scope["user"]."""

from __future__ import annotations

from litestar.datastructures import Cookie
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from litestar.enums import ScopeType

from telehealth.accounts.sessions import SESSION_COOKIE, resolve_session
from telehealth.db.engine import transaction


class SessionAuthMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)
    # Liveness, readiness and static files never need to know who is asking.
    should_bypass_for_scope = staticmethod(lambda scope: scope["path"] in {"/health", "/ready"} or scope["path"].startswith("/static/"))

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        scope["user"] = None
        raw = _cookie(scope, SESSION_COOKIE)
        if raw:
            state = scope["litestar_app"].state
            async with transaction(state.session_factory) as session:
                scope["user"] = await resolve_session(
                    session, raw_token=raw, now=state.clock.now(), settings=state.settings
                )
        await next_app(scope, receive, send)


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                cookie_name, _, cookie_value = part.strip().partition("=")
                if cookie_name == name and cookie_value:
                    return cookie_value
    return None


def session_cookie(raw_token: str, *, secure: bool, max_age: int) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE, value=raw_token, httponly=True, samesite="lax", secure=secure, max_age=max_age, path="/"
    )


def cleared_session_cookie(*, secure: bool) -> Cookie:
    return Cookie(key=SESSION_COOKIE, value="", httponly=True, samesite="lax", secure=secure, max_age=0, path="/")
