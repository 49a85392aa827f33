"""Litestar hands each guard a copy of the route handler (BaseRouteHandler.authorize_connection calls
`guard(connection, copy(self))`), so that a guard changing it could not change the route. Ours only read the
connection (accounts/guards.py, devtools/clock_pages.py), and the copy of a handler (some forty attributes) cost
every guarded request 30-40 us of CPU: 2% of a dashboard's. Here the guards get the handler itself.

This replaces one method of Litestar's BaseRouteHandler: tests/unit/lib/test_guard_calls.py fails if a Litestar
upgrade changes what the method does.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler


async def _authorize(self: BaseRouteHandler, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """Every guard in scope, in order, with the handler itself (a guard must not change it)."""
    for guard in self.resolve_guards():
        await guard(connection, self)  # type: ignore[misc]


LITESTARS_OWN = BaseRouteHandler.authorize_connection


def guards_get_the_handler_itself() -> None:
    """Make every Litestar app of this process call guards with the handler, not a copy (idempotent)."""
    BaseRouteHandler.authorize_connection = _authorize  # type: ignore[method-assign]
