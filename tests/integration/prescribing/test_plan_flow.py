"""The whole prescribing path over the API: encounter, a titrated plan, two-factor signing, the pharmacy."""

from __future__ import annotations

from datetime import timedelta

from tests.helpers import csrf_headers, pay_checkout, sign_in
from tests.integration.prescribing.helpers import PLAN, consult_with_encounter, pharmacist, ready_to_prescribe, sign


async def test_a_prescriber_signs_a_titrated_plan_and_the_pharmacy_fills_and_ships_batch_one(
    client, session_factory, settings, clock, stripe_fake, smtp
):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    await ready_to_prescribe(client, consult, clock)
    drafted = await client.post(f"/api/v1/encounters/{consult.encounter_id}/plans", json=PLAN, headers=await csrf_headers(client))
    assert drafted.status_code == 201, drafted.text
    plan = drafted.json()
    assert plan["units_per_session"] == [2, 3, 4, 4, 4, 4]
    assert [(b["sessions"], b["units"]) for b in plan["batches"]] == []  # batches appear at signing
    signed = await sign(client, consult, plan["id"], clock)
    assert signed.status_code == 200, signed.text
    plan = signed.json()
    assert plan["status"] == "sent_to_pharmacy" and len(plan["content_sha256"]) == 64
    assert [(b["sessions"], b["units"], b["status"]) for b in plan["batches"]] == [("1-3", 9, "queued"), ("4-6", 12, "held")]

    staff = await pharmacist(session_factory, settings, clock, pharmacy_id=consult.pharmacy_id)
    client.cookies.clear()
    await sign_in(client, staff, clock)
    queue = (await client.get("/api/v1/pharmacy/queue")).json()["batches"]
    assert len(queue) == 1 and queue[0]["units"] == 9 and "intake" not in queue[0]
    batch_id = queue[0]["batch_id"]
    assert (await client.get(f"/api/v1/patients/{consult.patient.patient_id}/intake")).status_code == 403
    for step, body in (("accept", None), ("fill", {"lot_number": "L-7", "beyond_use_date": "2027-02-01", "units": 9})):
        moved = await client.post(f"/api/v1/pharmacy/batches/{batch_id}/{step}", json=body or {}, headers=await csrf_headers(client))
        assert moved.status_code == 200, moved.text
    unpaid = await client.post(
        f"/api/v1/pharmacy/batches/{batch_id}/ship", json={"carrier": "UPS", "tracking_number": "1Z999"}, headers=await csrf_headers(client)
    )
    assert (unpaid.status_code, unpaid.json()["code"]) == (422, "batch.program_fee_unpaid")

    client.cookies.clear()
    await sign_in(client, consult.patient, clock)
    statement = (await client.get("/api/v1/billing/statement")).json()
    program = next(p for p in statement["payments"] if p["purpose"] == "program")
    checkout = await client.post(f"/api/v1/billing/payments/{program['id']}/checkout", headers=await csrf_headers(client))
    assert checkout.status_code == 200, checkout.text
    await pay_checkout(client, stripe_fake, checkout.json()["checkout_url"])

    client.cookies.clear()
    clock.advance(timedelta(seconds=30))  # a new TOTP step: a code is never accepted twice
    await sign_in(client, staff, clock)
    shipped = await client.post(
        f"/api/v1/pharmacy/batches/{batch_id}/ship", json={"carrier": "UPS", "tracking_number": "1Z999"}, headers=await csrf_headers(client)
    )
    assert shipped.status_code == 200, shipped.text
    assert shipped.json()["status"] == "shipped"
    delivered = await client.post(f"/api/v1/pharmacy/batches/{batch_id}/deliver", headers=await csrf_headers(client))
    assert delivered.json()["status"] == "delivered"
    client.cookies.clear()
    await sign_in(client, consult.patient, clock)
    shipments = (await client.get("/api/v1/my/shipments")).json()
    assert [(s["sequence"], s["status"], s["tracking_number"]) for s in shipments] == [(1, "delivered", "1Z999"), (2, "held", None)]
