"""An open crisis escalation blocks scheduling a dosing session (DOMAIN.md: crisis answers block self-booking
until a clinician records contact), with the reason shown; once contact is recorded, scheduling works."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from telehealth.db.engine import transaction
from telehealth.intake.escalations import open_crisis_escalation
from telehealth.intake.models import Escalation
from telehealth.lib.actors import Actor
from tests.integration.dosing.helpers import active_plan, confirmed_sitter, patient_signed_in, schedule


async def test_an_open_crisis_blocks_scheduling_a_dosing_session(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    async with transaction(session_factory) as session:
        assert await open_crisis_escalation(
            session, patient_id=home.patient.patient_id, rule_ids=["phq9.item9"], actor=Actor.system(), now=clock.now(), settings=settings
        )
    refused = await schedule(client, sitter["id"], clock.now() + timedelta(hours=2))
    assert refused.status_code == 422 and refused.json()["code"] == "dosing.crisis_contact_pending"
    assert "988" in refused.json()["detail"]

    async with transaction(session_factory) as session:  # a clinician recorded contact
        await session.execute(
            update(Escalation)
            .where(Escalation.patient_id == home.patient.patient_id)
            .values(status="contact_recorded", contact_recorded_at=clock.now())
        )
    allowed = await schedule(client, sitter["id"], clock.now() + timedelta(hours=2))
    assert allowed.status_code == 201, allowed.text
