"""HTML form helpers: run a service call in a savepoint so a refusal can re-render the form.

A refusal that keeps evidence (a failed sign-in) commits what it wrote; any other refusal rolls back to the
savepoint, so a half-done change never commits just because the page chose to show the form again.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from litestar import Request
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.lib.errors import DomainError

T = TypeVar("T")


async def attempt(session: AsyncSession, action: Awaitable[T]) -> T | DomainError:
    savepoint = await session.begin_nested()
    try:
        result = await action
    except DomainError as refusal:
        await (savepoint.commit() if refusal.keep_evidence else savepoint.rollback())
        return refusal
    await savepoint.commit()
    return result


async def form_fields(request: Request[Any, Any, Any], *names: str, max_length: int = 1000) -> dict[str, str]:
    """The named text fields of a submitted form, trimmed of nothing, cut at `max_length`."""
    form = await request.form()
    values: dict[str, str] = {}
    for name in names:
        value = form.get(name)
        values[name] = value[:max_length] if isinstance(value, str) else ""
    return values


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths are followed after sign-in (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


async def form_list(request: Request[Any, Any, Any], name: str, *, max_items: int = 20, max_length: int = 100) -> list[str]:
    """Every value of a repeated form field (checkboxes), or an empty list when none was ticked."""
    form = await request.form()
    values = form.getall(name) if name in form else []
    return [value[:max_length] for value in values if isinstance(value, str)][:max_items]
