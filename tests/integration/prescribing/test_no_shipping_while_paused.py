"""A paused plan's batches never ship: the pharmacy's ship step refuses while the prescriber's review is
pending, and ships once the plan is resumed."""

from __future__ import annotations

from tests.helpers import csrf_headers
from tests.integration.prescribing.helpers import FILL, SHIP, pay_program_fee, pharmacist, pharmacy_step, refusal, signed_plan, switch_to


async def test_a_paused_plans_batch_does_not_ship(client, session_factory, settings, clock, stripe_fake):
    consult, plan = await signed_plan(client, session_factory, settings, clock, stripe_fake)
    first = plan["batches"][0]["id"]
    await pay_program_fee(client, consult, stripe_fake, clock)
    staff = await pharmacist(session_factory, settings, clock, pharmacy_id=consult.pharmacy_id)
    await switch_to(client, staff, clock)
    assert (await pharmacy_step(client, first, "accept")).status_code == 200
    assert (await pharmacy_step(client, first, "fill", {**FILL, "units": 9})).status_code == 200

    await switch_to(client, consult.prescriber, clock)
    paused = await client.post(
        f"/api/v1/plans/{plan['id']}/pause", json={"reason": "Blood pressure to recheck"}, headers=await csrf_headers(client)
    )
    assert paused.status_code == 200, paused.text
    await switch_to(client, staff, clock)
    assert refusal(await pharmacy_step(client, first, "ship", SHIP))[:2] == (422, "batch.plan_paused")

    await switch_to(client, consult.prescriber, clock)
    assert (await client.post(f"/api/v1/plans/{plan['id']}/resume", json={}, headers=await csrf_headers(client))).status_code == 200
    await switch_to(client, staff, clock)
    assert (await pharmacy_step(client, first, "ship", SHIP)).json()["status"] == "shipped"
