"""Transition tables: every status column changes only through one of these, each change audited.

A table maps (from, to) to the name of the action. db.status_swap.swap_status applies one as a compare-and-swap
(`UPDATE ... WHERE id = :id AND status = :from`), so two concurrent attempts give exactly one success;
audit.service.change_status is the audited change every area calls.
"""

from __future__ import annotations

from collections.abc import Mapping

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
