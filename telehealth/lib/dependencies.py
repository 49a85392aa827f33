"""App-wide dependencies every controller may ask for by name (NamedDependency). Base types only (lib/actors.py):
the areas fill them (the auth middleware puts accounts' SignedIn on the request)."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide

from telehealth.db.engine import provide_db_session
from telehealth.lib.actors import Actor, SignedInPerson
from telehealth.lib.clock import Clock
from telehealth.lib.errors import NotAuthenticated
from telehealth.settings import Settings


def client_ip(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


# This machine, as the socket's peer says (the test client calls itself "testclient").
LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1", "testclient"})


def is_loopback_client(request: Request[Any, Any, Any]) -> bool:
    return client_ip(request) in LOOPBACK


def actor_for(request: Request[Any, Any, Any]) -> Actor:
    user: SignedInPerson | None = request.scope.get("user")  # type: ignore[assignment]
    user_agent = request.headers.get("user-agent")
    if user is None:
        return Actor.anonymous(client_ip(request), user_agent)
    return Actor(user.user_id, str(user.role), client_ip(request), user_agent)


def _settings(state: State) -> Settings:
    return state.settings


def _clock(state: State) -> Clock:
    return state.clock


def _stripe_gateway(state: State) -> Any:
    return state.stripe


def _actor(request: Request[Any, Any, Any]) -> Actor:
    return actor_for(request)


def _signed_in(request: Request[Any, Any, Any]) -> SignedInPerson:
    """accounts.sessions.SignedIn, as the auth middleware put it on the request (controllers ask for that type)."""
    user: SignedInPerson | None = request.scope.get("user")  # type: ignore[assignment]
    if user is None:
        raise NotAuthenticated("auth.required", "Sign in to continue.")
    return user


APP_DEPENDENCIES = {
    "db_session": Provide(provide_db_session),
    "settings": Provide(_settings, sync_to_thread=False),
    "clock": Provide(_clock, sync_to_thread=False),
    "actor": Provide(_actor, sync_to_thread=False),
    "signed_in": Provide(_signed_in, sync_to_thread=False),
    "stripe_gateway": Provide(_stripe_gateway, sync_to_thread=False),
}
