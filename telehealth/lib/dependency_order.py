"""Litestar resolves the dependencies of one depth concurrently, in an anyio task group with a task each. Ours are
quick and synchronous but the database session, which does no I/O until its first statement, so the task group
bought nothing and cost every request 0.1-0.2 ms of CPU: a tenth of a booking's stack floor (docs/benchmarks.md,
"The sixth session"). Here each depth's dependencies are resolved in turn, in the request's own task, the plain
ones first and generators (the database session) last, so a refusal (not signed in) opens nothing to close.

A dependency or route handler whose parameters are all Litestar's own values (the request, the app's state, the
ASGI scope) or other dependencies gets them as they are: every one of the app's dependencies
(telehealth/dependencies.py), the dashboard, every page that reads nothing from the query. Litestar passes them
through the signature model (msgspec's convert, built for values from the client) even then: 20-25 us of CPU a
dependency, five of them on a booking, and about 20 us a handler. One with anything from the client (a path or
query parameter, a body, a header) is parsed and refused as ever, and so is one whose dependency is missing
(Litestar's error).

This replaces one method of Litestar's KwargsModel and wraps one of its SignatureModel (private classes:
tests/unit/lib/test_dependency_order.py fails if a Litestar upgrade moves them or changes what they must do).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

from litestar._kwargs.cleanup import DependencyCleanupGroup
from litestar._kwargs.dependencies import DependencyContainer, resolve_dependency
from litestar._kwargs.kwargs_model import KwargsModel
from litestar._signature.model import SignatureModel
from litestar.connection import ASGIConnection
from litestar.datastructures.state import ImmutableState
from litestar.utils.compat import async_next

# Litestar's reserved parameters that it fills from the connection itself, never from what the client sent.
_FROM_CONNECTION = frozenset({"request", "state", "scope"})


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
                await _resolve(dependency, connection, kwargs, cleanup_group)
    except BaseException as error:
        # A generator already started (a session opened in an earlier depth) sees the failure, as the handler's would.
        await cleanup_group.close(error)
        raise
    return cleanup_group


async def _resolve(
    dependency: DependencyContainer,
    connection: ASGIConnection[Any, Any, Any, Any],
    kwargs: dict[str, Any],
    cleanup_group: DependencyCleanupGroup,
) -> None:
    """Litestar's resolve_dependency, without the signature model for a dependency whose arguments are all given
    (nothing in them to parse or to refuse)."""
    provide = dependency.provide
    arguments = _given(provide.signature_model, kwargs)
    if arguments is None:
        await resolve_dependency(dependency, connection, kwargs, cleanup_group)
        return
    value = await provide(**arguments)
    if provide.has_sync_generator_dependency:
        cleanup_group.add(value)
        value = next(value)
    elif provide.has_async_generator_dependency:
        cleanup_group.add(value)
        value = await async_next(value)
    kwargs[dependency.key] = value


Given = tuple[tuple[str, Callable[[Any], Any] | None], ...]
# Per signature model (a dependency's or a route handler's, each app's own and let go with it): each parameter's name
# and how its value becomes what it declares (None: as it is), or False when one comes from the client. Worked out once.
_GIVEN: WeakKeyDictionary[type[SignatureModel], Given | bool] = WeakKeyDictionary()


def _given(model: type[SignatureModel], kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """`model`'s arguments as they are in `kwargs`, when every parameter is Litestar's own value or a dependency (the
    model's own set) and each was given; None when any comes from the client or is missing (Litestar's parse then)."""
    found = _GIVEN.get(model)
    if found is None:
        fields = model._fields
        allowed = _FROM_CONNECTION.union(model._dependency_name_set)
        found = _GIVEN[model] = (
            tuple((name, _wrapper(field.annotation)) for name, field in fields.items()) if fields.keys() <= allowed else False
        )
    if not isinstance(found, tuple) or any(name not in kwargs for name, _ in found):
        return None
    return {name: kwargs[name] if wrap is None else wrap(kwargs[name]) for name, wrap in found}


def _wrapper(annotation: Any) -> Callable[[Any], Any] | None:
    """Litestar hands the app's state as its dict, and its signature model makes it the State class the parameter
    declares (State(dict) wraps it, no copy); the request and the scope are passed as they are."""
    if isinstance(annotation, type) and issubclass(annotation, ImmutableState):
        return lambda value: value if isinstance(value, annotation) else annotation(value)
    return None


_litestar_parse = SignatureModel.parse_values_from_connection_kwargs.__func__  # type: ignore[attr-defined]


def _parse_unless_all_given(
    cls: type[SignatureModel], connection: ASGIConnection[Any, Any, Any, Any], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Litestar's parse, unless every parameter is a dependency or Litestar's own value and every one was given."""
    arguments = _given(cls, kwargs)
    if arguments is None:
        parsed: dict[str, Any] = _litestar_parse(cls, connection, kwargs)
        return parsed
    return arguments


def resolve_dependencies_in_turn() -> None:
    """Make every Litestar app of this process resolve dependencies in turn, and hand a handler that takes nothing
    from the client its arguments as they are (idempotent)."""
    KwargsModel.resolve_dependencies = _resolve_in_turn  # type: ignore[method-assign]
    SignatureModel.parse_values_from_connection_kwargs = classmethod(_parse_unless_all_given)  # type: ignore[method-assign,assignment]
