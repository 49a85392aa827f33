"""Reads the session cookie once per request and puts `SignedIn | None` in scope["user"]."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Request
from litestar.datastructures import Cookie
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.models import UserAccount
from telehealth.accounts.sessions import SignedIn, resolve_session, rotate_session_token, session_cookie_name, start_session
from telehealth.db.engine import OPENED_SESSION, end_opened_session
from telehealth.settings import Settings


class SessionAuthMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP, ScopeType.WEBSOCKET)  # the video room's signalling socket knows who is in it
    # Liveness, readiness and static files never need to know who is asking.
    should_bypass_for_scope = staticmethod(lambda scope: scope["path"] in {"/health", "/ready"} or scope["path"].startswith("/static/"))

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        scope["user"] = None
        state = scope["litestar_app"].state
        raw = request_cookie(scope, session_cookie_name(state.settings))
        if raw and scope["type"] == ScopeType.HTTP:
            # One SELECT (and now and then one UPDATE touching the session) as the first statements of the request's
            # own transaction, in the session its handler takes over (db/engine.py, provide_db_session): one checkout
            # of a connection per request, not two. A handler that asks for no session leaves it to be ended here.
            scope[OPENED_SESSION] = session = state.request_session_factory()  # type: ignore[literal-required]
            try:
                scope["user"] = await resolve_session(session, raw_token=raw, now=state.clock.now(), settings=state.settings)
                await next_app(scope, receive, send)
            except BaseException:
                await end_opened_session(scope, failed=True)
                raise
            await end_opened_session(scope, failed=False)
            return
        if raw:
            # The video room's socket lives as long as the visit: its lookup commits by itself and gives the
            # connection back at once. (Behind PgBouncer in transaction mode the factory's sessions are transactions.)
            async with state.autocommit_session_factory() as session:
                scope["user"] = await resolve_session(session, raw_token=raw, now=state.clock.now(), settings=state.settings)
                await session.commit()
        await next_app(scope, receive, send)


def request_cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"cookie":
            for part in value.decode("latin-1").split(";"):
                cookie_name, _, cookie_value = part.strip().partition("=")
                if cookie_name == name and cookie_value:
                    return cookie_value
    return None


async def sign_in_cookie(
    session: AsyncSession, *, user: UserAccount, request: Request[Any, Any, Any], now: datetime, settings: Settings
) -> Cookie:
    """Start a server-side session for `user` and answer the cookie that carries it (every way of
    signing in ends here: the sign-in API and page, and accepting an invitation)."""
    from telehealth.lib.dependencies import client_ip

    raw = await start_session(
        session, user=user, ip=client_ip(request), user_agent=request.headers.get("user-agent"), now=now, settings=settings
    )
    return session_cookie(raw, settings)


async def rotated_session_cookie(session: AsyncSession, *, signed_in: SignedIn, settings: Settings) -> Cookie:
    """The second factor is done: the same session under a new token (the old cookie no longer signs anyone in)."""
    raw = await rotate_session_token(session, session_id=signed_in.session_id)
    return session_cookie(raw, settings)


def session_cookie(raw_token: str, settings: Settings) -> Cookie:
    return Cookie(
        key=session_cookie_name(settings),
        value=raw_token,
        httponly=True,
        samesite="lax",
        secure=settings.uses_tls,
        max_age=settings.session_absolute_hours * 3600,
        path="/",
    )


def cleared_session_cookie(settings: Settings) -> Cookie:
    return Cookie(key=session_cookie_name(settings), value="", httponly=True, samesite="lax", secure=settings.uses_tls, max_age=0, path="/")
