"""Route guards Litestar runs before a handler. Object-level checks live in authz.py.

They are `async def` although they never await: Litestar runs a plain function guard in a worker thread,
a thread hop per request for a dictionary lookup."""

from __future__ import annotations

from typing import Any, Protocol, cast

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.lib.errors import Forbidden, NotAuthenticated


def current_user(connection: ASGIConnection[Any, Any, Any, Any]) -> SignedIn | None:
    return connection.scope.get("user")


def check_signed_in(connection: ASGIConnection[Any, Any, Any, Any]) -> SignedIn:
    """Signed in, and for staff (or anyone enrolled) the second factor done in this session."""
    user = current_user(connection)
    if user is None:
        raise NotAuthenticated("auth.required", "Sign in to continue.")
    if user.must_enrol_two_factor:
        raise Forbidden("auth.two_factor_enrolment_required", "Set up two-factor sign-in to continue.")
    if not user.two_factor_done:
        raise Forbidden("auth.two_factor_required", "Enter your two-factor code to continue.")
    return user


async def requires_sign_in(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    check_signed_in(connection)


async def requires_password_step(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Signed in with a password, second factor possibly pending (the two-factor pages themselves)."""
    if current_user(connection) is None:
        raise NotAuthenticated("auth.required", "Sign in to continue.")


class RoleGuard(Protocol):
    """A guard that names the roles it lets through (the authorization matrix test reads `allowed_roles`)."""

    allowed_roles: frozenset[Role]

    async def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler, /) -> None: ...


def requires_role(*roles: Role) -> RoleGuard:
    allowed = frozenset(roles)

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        user = check_signed_in(connection)
        if user.role not in allowed:
            raise Forbidden("auth.role_forbidden", "Your role cannot open this page.")

    role_guard = cast(RoleGuard, guard)  # a function with one attribute more, which mypy cannot spell
    role_guard.allowed_roles = allowed
    return role_guard
