"""Litestar resolves the dependencies of one depth concurrently, in an anyio task group with a task each. Ours are
quick and synchronous but the database session, which does no I/O until its first statement, so the task group
bought nothing and cost every request 0.1-0.2 ms of CPU: a tenth of a booking's stack floor (docs/benchmarks.md,
"The sixth session"). Here each depth's dependencies are resolved in turn, in the request's own task, the plain
ones first and generators (the database session) last, so a refusal (not signed in) opens nothing to close.

This replaces one method of Litestar's KwargsModel (a private class: tests/unit/lib/test_dependency_order.py fails
if a Litestar upgrade moves it or changes what the method must do).
"""

from __future__ import annotations

from typing import Any

from litestar._kwargs.cleanup import DependencyCleanupGroup
from litestar._kwargs.dependencies import DependencyContainer, resolve_dependency
from litestar._kwargs.kwargs_model import KwargsModel
from litestar.connection import ASGIConnection


def _order(dependency: DependencyContainer) -> tuple[bool, str]:
    provide = dependency.provide
    return (provide.has_sync_generator_dependency or provide.has_async_generator_dependency, dependency.key)


async def _resolve_in_turn(
    self: KwargsModel, connection: ASGIConnection[Any, Any, Any, Any], kwargs: dict[str, Any]
) -> DependencyCleanupGroup:
    cleanup_group = DependencyCleanupGroup()
    try:
        for batch in self.dependency_batches:
            for dependency in sorted(batch, key=_order):
                await resolve_dependency(dependency, connection, kwargs, cleanup_group)
    except BaseException as error:
        # A generator already started (a session opened in an earlier depth) sees the failure, as the handler's would.
        await cleanup_group.close(error)
        raise
    return cleanup_group


def resolve_dependencies_in_turn() -> None:
    """Make every Litestar app of this process resolve dependencies in turn (idempotent)."""
    KwargsModel.resolve_dependencies = _resolve_in_turn  # type: ignore[method-assign]
