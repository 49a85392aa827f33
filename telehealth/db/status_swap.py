"""The compare-and-swap every status change makes (lib/states.py has the transition tables), on the driver.

`UPDATE <table> SET status = <target>, ... WHERE id = <id> AND status = <source> RETURNING id`: two concurrent
attempts give exactly one success. Every booking, payment, dose and plan change makes one or more, so the
statement is SQL text on the session's connection (db/driver.py), its text made once per table and set of
columns. A column whose type converts its value on the way in other than a timestamp (JSON, say) takes
SQLAlchemy's UPDATE instead, so no value is ever sent unconverted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.db import driver
from telehealth.db.base import table_of
from telehealth.lib.errors import Conflict
from telehealth.lib.states import TransitionTable

_Convert = Callable[[Any], Any]
_SWAPS: dict[tuple[str, tuple[str, ...]], tuple[str, tuple[_Convert, ...]] | None] = {}


def _swap_sql(model: type[Any], keys: tuple[str, ...]) -> tuple[str, tuple[_Convert, ...]] | None:
    """The UPDATE's text and each value's conversion, or None when a column needs SQLAlchemy's."""
    table = table_of(model)
    converts = [driver.bind_converter(table.c[key]) for key in keys]
    if any(convert is None for convert in converts):
        return None
    sets = "".join(f', "{table.c[key].name}" = ${n}' for n, key in enumerate(keys, start=4))
    return f'UPDATE "{table.name}" SET status = $3{sets} WHERE id = $1 AND status = $2 RETURNING id', tuple(c for c in converts if c)


async def swap_status(
    session: AsyncSession,
    model: type[Any],
    row_id: uuid.UUID,
    *,
    table: TransitionTable,
    source: str,
    target: str,
    values: Mapping[str, Any] | None = None,
) -> str:
    """Move one row from `source` to `target` if it is still in `source`; answer the action's name.

    Raises Conflict when the transition is not in the table or another writer moved the row first. Not audited:
    the areas call audit.service.change_status, which audits it in the same transaction (db knows no area).
    """
    action = table.action(source, target)
    values = values or {}
    keys = tuple(values)
    shape = (table_of(model).name, keys)
    if shape not in _SWAPS:
        _SWAPS[shape] = _swap_sql(model, keys)
    swap = _SWAPS[shape]
    if swap is None:
        moved = (
            await session.execute(
                update(model)
                .where(model.id == row_id, model.status == source)
                .values(status=target, **values)
                .returning(model.id)
                .execution_options(synchronize_session=False)
            )
        ).scalar_one_or_none()
    else:
        sql, converts = swap
        moved = await driver.fetchval(
            session, sql, row_id, source, target, *(convert(values[key]) for convert, key in zip(converts, keys, strict=True))
        )
    if moved is None:
        raise Conflict(
            f"{table.name}.status_changed",
            f"This {table.name.replace('_', ' ')} is no longer {source}; reload and try again.",
        )
    return action
