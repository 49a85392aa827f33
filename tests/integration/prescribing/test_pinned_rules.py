"""Prescribing rules pinned one by one (issue 19, item 5): each test names the rule it holds and fails when
the code that enforces the rule is taken out (docs/safety-rules.md lists the break tried for each)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import text

from telehealth.audit.service import Actor
from telehealth.prescribing.models import TrochePlan
from telehealth.prescribing.plans import pause_plan
from tests.helpers import csrf_headers, send_in_thread, until_lock_waiters
from tests.integration.prescribing.helpers import (
    FILL,
    SHIP,
    consult_with_encounter,
    pay_program_fee,
    pharmacist,
    pharmacy_step,
    record_encounter,
    refusal,
    signed_plan,
    switch_to,
)


async def pdmp_checked_at(session_factory, consult):
    async with session_factory() as session:
        return await session.scalar(text("SELECT pdmp_checked_at FROM encounter WHERE id = :id"), {"id": uuid.UUID(consult.encounter_id)})


async def test_a_pdmp_check_dated_in_the_future_is_refused(client, session_factory, settings, clock, stripe_fake):
    """Rule 3 (the future half; the 24 h half is test_signing_checks): a PDMP check time more than the 5-minute
    clock allowance ahead of now is refused when recorded (encounters.record), so it can never look fresh at
    signing (prescribing_blocker only refuses one older than 24 h)."""
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    ahead = await record_encounter(client, consult, pdmp_checked_at=(clock.now() + timedelta(minutes=6)).isoformat(), pdmp_state="NY")
    assert refusal(ahead) == (422, "request.invalid", ["pdmp_checked_at"])
    assert ahead.json()["fields"]["pdmp_checked_at"] == "is in the future"
    next_day = await record_encounter(client, consult, pdmp_checked_at=(clock.now() + timedelta(hours=23)).isoformat(), pdmp_state="NY")
    assert refusal(next_day) == (422, "request.invalid", ["pdmp_checked_at"])
    assert await pdmp_checked_at(session_factory, consult) is None

    now = await record_encounter(client, consult, pdmp_checked_at=clock.now().isoformat(), pdmp_state="NY")
    assert now.status_code == 200, now.text
    assert await pdmp_checked_at(session_factory, consult) == clock.now()


async def test_a_pause_committed_while_the_ship_step_waits_stops_the_shipment(client, session_factory, settings, clock, stripe_fake):
    """Rule 4 (the race; the plain refusal is test_no_shipping_while_paused): the pharmacy's steps read the plan
    FOR SHARE (pharmacy._batch), so a ship step that starts while a pause is being written waits for it and
    then refuses. Without the lock it read the plan still active and shipped from a paused plan."""
    consult, plan = await signed_plan(client, session_factory, settings, clock, stripe_fake)
    first = plan["batches"][0]["id"]
    await pay_program_fee(client, consult, stripe_fake, clock)
    staff = await pharmacist(session_factory, settings, clock)
    await switch_to(client, staff, clock)
    assert (await pharmacy_step(client, first, "accept")).status_code == 200
    assert (await pharmacy_step(client, first, "fill", {**FILL, "units": 9})).status_code == 200
    ship = client.build_request("POST", f"/api/v1/pharmacy/batches/{first}/ship", json=SHIP, headers=await csrf_headers(client))

    async with session_factory() as prescriber:  # the prescriber's pause, written and not yet committed
        row = await prescriber.get(TrochePlan, uuid.UUID(plan["id"]), with_for_update=True)
        await pause_plan(prescriber, row, reason="Blood pressure to recheck", actor=Actor.system(), now=clock.now())
        shipping = await send_in_thread(client, ship)
        await until_lock_waiters(session_factory, 1, tasks=[shipping])
        await prescriber.commit()
    answer = await shipping

    assert refusal(answer)[:2] == (422, "batch.plan_paused"), answer.text
    async with session_factory() as session:
        assert await session.scalar(text("SELECT status FROM plan_batch WHERE id = :id"), {"id": uuid.UUID(first)}) == "filled"
