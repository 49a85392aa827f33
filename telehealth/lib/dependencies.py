"""Who is asking: the client's address and the actor of a request. Base types only (lib/actors.py): the areas fill
them (the auth middleware puts accounts' SignedIn on the request). The app-wide named dependencies built from these
are the entry's (telehealth/dependencies.py)."""

from __future__ import annotations

from typing import Any

from litestar import Request

from telehealth.lib.actors import Actor, SignedInPerson


def client_ip(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


# This machine, as the socket's peer says (the test client calls itself "testclient").
LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1", "testclient"})


def is_loopback_client(request: Request[Any, Any, Any]) -> bool:
    return client_ip(request) in LOOPBACK


def actor_for(request: Request[Any, Any, Any]) -> Actor:
    user: SignedInPerson | None = request.scope.get("user")
    user_agent = request.headers.get("user-agent")
    if user is None:
        return Actor.anonymous(client_ip(request), user_agent)
    return Actor(user.user_id, str(user.role), client_ip(request), user_agent)
