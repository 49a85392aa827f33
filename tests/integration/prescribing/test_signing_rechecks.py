"""Prescribing rules that the mutation check (python -m tests.mutation) found with no test failing when they
were broken, each through the real API: the plan's caps are checked again at signing (a clinic that tightened
its maximum dose after the draft was written); at signing the license must be for the state the patient is in;
a PDMP check time in the future is refused when recorded; an encounter's facts are frozen once it is decided."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from litestar.testing import AsyncTestClient
from sqlalchemy import select, update

from telehealth.clinicians.models import StateLicense
from telehealth.db.engine import transaction
from telehealth.prescribing.models import Encounter
from tests.conftest import with_settings
from tests.integration.prescribing.helpers import (
    consult_with_encounter,
    drafted,
    ready_to_prescribe,
    record_encounter,
    refusal,
    sign,
    switch_to,
)


async def test_the_caps_are_checked_again_at_signing(client, session_factory, settings, clock, stripe_fake):
    from telehealth.asgi import create_app

    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    await ready_to_prescribe(client, consult, clock)
    plan = await drafted(client, consult)  # 100 to 200 mg: inside the clinic's cap when written
    # The clinic then lowers its maximum dose to 150 mg (a restart with the new setting).
    tightened = with_settings(settings, thresholds=replace(settings.thresholds, max_dose_mg_per_session=150))
    async with AsyncTestClient(app=create_app(tightened, clock=clock), base_url="http://testserver.local") as restarted:
        await switch_to(restarted, consult.prescriber, clock)
        refused = await sign(restarted, consult, plan["id"], clock)
        assert refusal(refused) == (422, "plan.dose_above_cap", ["doses_mg"])
        assert (await restarted.get(f"/api/v1/plans/{plan['id']}")).json()["status"] == "draft"


async def test_at_signing_the_license_must_be_for_the_state_the_patient_is_in(client, session_factory, settings, clock, stripe_fake):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    await ready_to_prescribe(client, consult, clock)  # the patient is in New York
    plan = await drafted(client, consult)
    async with transaction(session_factory) as session:  # the New York license is now New Jersey's; the DEA registration stays New York's
        await session.execute(update(StateLicense).where(StateLicense.clinician_id == consult.prescriber.user_id).values(state="NJ"))
    assert refusal(await sign(client, consult, plan["id"], clock)) == (422, "plan.location_not_licensed", ["location_state"])
    assert (await client.get(f"/api/v1/plans/{plan['id']}")).json()["status"] == "draft"


async def test_a_pdmp_check_time_in_the_future_is_refused(client, session_factory, settings, clock, stripe_fake):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    ahead = await record_encounter(client, consult, pdmp_checked_at=(clock.now() + timedelta(minutes=6)).isoformat(), pdmp_state="NY")
    assert refusal(ahead) == (422, "request.invalid", ["pdmp_checked_at"])
    assert ahead.json()["fields"]["pdmp_checked_at"] == "is in the future"
    async with session_factory() as session:
        assert await session.scalar(select(Encounter.pdmp_checked_at).where(Encounter.id == uuid.UUID(consult.encounter_id))) is None
    # A few minutes of clock skew between the PDMP's site and ours is tolerated.
    skewed = await record_encounter(client, consult, pdmp_checked_at=(clock.now() + timedelta(minutes=4)).isoformat(), pdmp_state="NY")
    assert skewed.status_code == 200, skewed.text


async def test_an_encounters_facts_are_frozen_once_it_is_decided(client, session_factory, settings, clock, stripe_fake):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    await ready_to_prescribe(client, consult, clock)  # recorded, then decided: start a plan
    changed = await record_encounter(client, consult, location_state="NJ", pdmp_state="NJ")
    assert refusal(changed)[:2] == (409, "encounter.decided")
    async with session_factory() as session:
        encounter = await session.get(Encounter, uuid.UUID(consult.encounter_id))
        assert encounter is not None and (encounter.location_state, encounter.pdmp_state) == ("NY", "NY")
