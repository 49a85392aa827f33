"""App-wide dependencies every controller may ask for by name (NamedDependency), handed to Litestar by asgi.py.
The entry's, as routes.py is: they join the base's pieces (database session, clock, settings, the request's actor)."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide

from telehealth.db.engine import provide_db_session
from telehealth.lib.actors import Actor, SignedInPerson
from telehealth.lib.clock import Clock
from telehealth.lib.dependencies import actor_for
from telehealth.lib.errors import NotAuthenticated
from telehealth.settings import Settings


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
    user: SignedInPerson | None = request.scope.get("user")
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
