"""The database backs the safety envelope's hardest limits: a troche plan written around the service (a
script, a bad migration, psql) with a dose over 400 mg, over 12 sessions, under 48 hours between sessions or
doses that do not match its sessions is refused by a check constraint."""

from __future__ import annotations

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError

from telehealth.db.engine import transaction
from telehealth.prescribing.models import TrochePlan
from tests.integration.dosing.helpers import active_plan


@pytest.mark.parametrize(
    "values",
    [
        {"doses_mg": [100, 401, 150, 150]},
        {"doses_mg": [100, 0, 150, 150]},
        {"min_hours_between": 47},
        {"sessions": 13, "doses_mg": [100] * 13},
        {"sessions": 5},  # four doses for five sessions
    ],
    ids=["dose_over_400", "dose_zero", "interval_under_48", "sessions_over_12", "doses_not_sessions"],
)
async def test_the_database_refuses_a_plan_outside_the_envelope(session_factory, settings, clock, values):
    home = await active_plan(session_factory, settings, clock)  # doses 100, 100, 150, 150 every 48 h: inside
    with pytest.raises(IntegrityError, match="ck_troche_plan_within_safety_envelope"):
        async with transaction(session_factory) as session:
            await session.execute(update(TrochePlan).where(TrochePlan.id == home.plan_id).values(**values))


async def test_the_limits_themselves_are_allowed(session_factory, settings, clock):
    home = await active_plan(session_factory, settings, clock)
    async with transaction(session_factory) as session:
        await session.execute(
            update(TrochePlan).where(TrochePlan.id == home.plan_id).values(sessions=12, doses_mg=[400] * 12, min_hours_between=48)
        )
        assert await session.scalar(text("SELECT sessions FROM troche_plan WHERE id = :id"), {"id": home.plan_id}) == 12
