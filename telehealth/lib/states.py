"""Transition tables: every status column changes only through one of these, each change audited.

A table maps (from, to) to the name of the action. `swap_status` applies one as a compare-and-swap
(`UPDATE ... WHERE id = :id AND status = :from`), so two concurrent attempts give exactly one success;
audit.service.change_status is the audited change every area calls.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.lib.errors import Conflict


class TransitionTable:
    def __init__(self, name: str, transitions: Mapping[tuple[str, str], str]) -> None:
        self.name = name
        self.transitions = dict(transitions)

    def action(self, source: str, target: str) -> str:
        """Name of the action that moves `source` to `target`, or a 409 naming both."""
        try:
            return self.transitions[(source, target)]
        except KeyError:
            raise Conflict(
                f"{self.name}.invalid_transition",
                f"A {self.name.replace('_', ' ')} cannot go from {source} to {target}.",
            ) from None

    def sources_for(self, target: str) -> list[str]:
        return [source for (source, to) in self.transitions if to == target]


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
    the areas call audit.service.change_status, which audits it in the same transaction (lib knows no area).
    """
    action = table.action(source, target)
    result = await session.execute(
        update(model)
        .where(model.id == row_id, model.status == source)
        .values(status=target, **(values or {}))
        .returning(model.id)
        .execution_options(synchronize_session=False)
    )
    if result.scalar_one_or_none() is None:
        raise Conflict(
            f"{table.name}.status_changed",
            f"This {table.name.replace('_', ' ')} is no longer {source}; reload and try again.",
        )
    return action
