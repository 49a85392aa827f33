"""The plan's hard caps (DOMAIN.md "Plans"), each refused on save with its code and the field it names, the
value at the cap accepted; and one live plan per patient, at writing, at signing, and in the database."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from telehealth.db.engine import transaction
from tests.integration.prescribing.helpers import consult_with_encounter, draft, drafted, ready_to_prescribe, refusal, sign

TWELVE = [100] * 12

# (changes to PLAN, the code, the field) — each one step past a cap, or a number the arithmetic refuses.
REFUSED = [
    ({"doses_mg": [100, 150, 401]}, "plan.dose_above_cap", "doses_mg"),
    ({"doses_mg": [100] * 13}, "plan.sessions_above_cap", "doses_mg"),
    ({"min_hours_between": 47}, "plan.interval_below_minimum", "min_hours_between"),
    ({"refills": 1}, "plan.refills_not_allowed", "refills"),
    ({"doses_mg": [100, 125, 200]}, "plan.dose_not_whole_units", "doses_mg"),  # 125 mg is not whole 50 mg troches
    ({"strength_mg": 75, "doses_mg": [150, 150, 225]}, "plan.strength_not_on_list", "strength_mg"),
    ({"doses_mg": [100, 150, 200, 200], "shipment_sessions": [2, 1]}, "plan.shipments_do_not_add_up", "shipment_sessions"),
    ({"doses_mg": [100, 150, 200], "shipment_sessions": [3, 0]}, "plan.shipments_do_not_add_up", "shipment_sessions"),
]


async def test_every_cap_refuses_its_first_step_over_and_accepts_the_cap(client, session_factory, settings, clock, stripe_fake):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    await ready_to_prescribe(client, consult, clock)
    for changes, code, field in REFUSED:
        response = await draft(client, consult, **changes)
        assert refusal(response) == (422, code, [field]), (changes, response.text)
    async with session_factory() as session:
        assert await session.scalar(text("SELECT count(*) FROM troche_plan")) == 0  # nothing refused was saved

    at_the_caps = await drafted(client, consult, doses_mg=[400] * 12, min_hours_between=48, refills=0)
    assert (at_the_caps["sessions"], at_the_caps["doses_mg"][0], at_the_caps["min_hours_between"], at_the_caps["refills"]) == (
        12,
        400,
        48,
        0,
    )
    assert at_the_caps["shipment_sessions"] == [3, 9]  # the default split: three first, the rest after their reports
    split = await drafted(client, consult, doses_mg=TWELVE, shipment_sessions=[4, 4, 4], strength_mg=100)
    assert split["units_per_session"] == [1] * 12 and split["status"] == "draft"


async def test_one_live_plan_per_patient_when_writing_when_signing_and_in_the_database(
    client, session_factory, settings, clock, stripe_fake
):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    await ready_to_prescribe(client, consult, clock)
    first = await drafted(client, consult)
    second = await drafted(client, consult, doses_mg=[100, 100, 100])  # two drafts are fine: neither is live yet
    assert (await sign(client, consult, first["id"], clock)).status_code == 200

    at_signing = await sign(client, consult, second["id"], clock)
    assert refusal(at_signing)[:2] == (422, "plan.one_active_plan"), at_signing.text
    assert (await client.get(f"/api/v1/plans/{second['id']}")).json()["status"] == "draft"
    at_writing = await draft(client, consult)
    assert refusal(at_writing)[:2] == (422, "plan.one_active_plan"), at_writing.text

    # Whatever the application does, the database holds one live plan per patient.
    with pytest.raises(IntegrityError, match="uq_troche_plan_one_live_per_patient"):
        async with transaction(session_factory) as session:
            await session.execute(
                text("UPDATE troche_plan SET status = 'signed', content_sha256 = repeat('a', 64), signed_at = now() WHERE id = :id"),
                {"id": second["id"]},
            )
    async with session_factory() as session:
        statuses = dict((await session.execute(text("SELECT id::text, status FROM troche_plan"))).all())
    assert statuses == {first["id"]: "sent_to_pharmacy", second["id"]: "draft"}
