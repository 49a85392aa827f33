"""Every mutant of the safety rules' mutation check (`python -m tests.mutation`, run by hand) still finds its
anchor exactly once: a refactor that moves or rewrites a guarded line must move its mutant too, or the check
would silently stop covering that rule (a reformat changed one anchor once)."""

from __future__ import annotations

from telehealth.settings import PROJECT_ROOT
from tests.mutation.mutants import MUTANTS


def test_every_mutant_finds_its_anchor_exactly_once():
    astray = {
        m.id: (PROJECT_ROOT / m.file).read_text().count(m.anchor)
        for m in MUTANTS
        if (PROJECT_ROOT / m.file).read_text().count(m.anchor) != 1
    }
    assert astray == {}, f"mutants whose anchor is not found exactly once (id: times found): {astray}"
