"""The pharmacy's side (DOMAIN.md journey 7, "Law and privacy"): the pharmacist sees only what filling needs
and nothing of the chart; batches move in order, the second only after the first is delivered and its
sessions reported (or a prescriber's override with a reason); nothing ships before the program fee is paid;
the first delivery activates the plan; the patient's email says only that something is on its way; and every
step is in the audit trail."""

from __future__ import annotations

from tests.helpers import csrf_headers
from tests.integration.billing.helpers import run_jobs
from tests.integration.prescribing.helpers import (
    FILL,
    SHIP,
    audit_actions,
    intake_on_file,
    pay_program_fee,
    pharmacist,
    pharmacy_step,
    refusal,
    release,
    signed_plan,
    switch_to,
)

QUEUE_LINE_KEYS = {
    "batch_id",
    "status",
    "sequence",
    "patient_name",
    "date_of_birth",
    "ship_to",
    "prescriber_name",
    "prescriber_dea",
    "product",
    "strength_mg",
    "units",
    "sessions",
    "directions",
}


async def test_the_pharmacist_sees_what_filling_needs_and_nothing_of_the_chart(client, session_factory, settings, clock, stripe_fake):
    consult, plan = await signed_plan(client, session_factory, settings, clock, stripe_fake)
    await intake_on_file(session_factory, clock, consult.patient)
    chart = (await client.get(f"/api/v1/encounters/{consult.encounter_id}")).json()["chart"]  # the prescriber reads the chart...
    assert chart["intake"]["medical_history"]["notes"] == "Clonazepam since 2019"
    assert (await audit_actions(session_factory, consult.patient.patient_id)).count("patient.record.encounter.chart") == 1  # ...audited

    await switch_to(client, await pharmacist(session_factory, settings, clock, pharmacy_id=consult.pharmacy_id), clock)
    queue = await client.get("/api/v1/pharmacy/queue")
    [line] = queue.json()["batches"]
    assert set(line) == QUEUE_LINE_KEYS
    assert (line["patient_name"], line["date_of_birth"], line["prescriber_dea"], line["units"], line["sessions"], line["status"]) == (
        "Ada Lovelace",
        "1985-12-10",
        "BX1",
        9,
        "1-3",
        "queued",
    )
    assert line["ship_to"] == {"line1": "12 Hudson St", "line2": "Apt 4", "city": "New York", "state": "NY", "postal_code": "10013"}
    for private in ("Clonazepam", "seizure", "Babbage", "+1212", "PMP-1", "BP 122", "doses_mg", "128"):
        assert private not in queue.text, private

    patient_id = consult.patient.patient_id
    for path in (f"/api/v1/patients/{patient_id}/intake", f"/api/v1/encounters/{consult.encounter_id}", f"/api/v1/plans/{plan['id']}"):
        assert (await client.get(path)).status_code == 403, path
    patched = await client.patch(
        f"/api/v1/encounters/{consult.encounter_id}", json={"vitals_note": "x"}, headers=await csrf_headers(client)
    )
    assert patched.status_code == 403


async def test_batches_go_in_order_ship_only_once_paid_and_every_step_is_audited(
    client, session_factory, settings, clock, stripe_fake, smtp
):
    consult, plan = await signed_plan(client, session_factory, settings, clock, stripe_fake)
    first, second = (b["id"] for b in plan["batches"])
    assert [b["status"] for b in plan["batches"]] == ["queued", "held"]
    early = await release(client, second, "The patient travels next week")
    assert refusal(early)[:2] == (422, "batch.previous_not_delivered")

    staff = await pharmacist(session_factory, settings, clock, pharmacy_id=consult.pharmacy_id)
    await switch_to(client, staff, clock)
    assert [line["batch_id"] for line in (await client.get("/api/v1/pharmacy/queue")).json()["batches"]] == [
        first
    ]  # the held batch is not shown
    assert (await pharmacy_step(client, second, "accept")).status_code == 409  # held: nothing to accept
    assert (await release(client, second, "I am the pharmacy")).status_code == 403  # only the prescriber releases
    assert (await pharmacy_step(client, first, "accept")).status_code == 200
    short = await pharmacy_step(client, first, "fill", {**FILL, "units": 8})
    assert refusal(short) == (422, "request.invalid", ["units"])
    assert (await pharmacy_step(client, first, "fill", {**FILL, "units": 9})).status_code == 200
    unpaid = await pharmacy_step(client, first, "ship", SHIP)
    assert refusal(unpaid)[:2] == (422, "batch.program_fee_unpaid")

    await pay_program_fee(client, consult, stripe_fake, clock)
    await switch_to(client, staff, clock)
    assert (await pharmacy_step(client, first, "ship", SHIP)).json()["status"] == "shipped"
    assert (await pharmacy_step(client, first, "deliver")).json()["status"] == "delivered"

    await switch_to(client, consult.prescriber, clock)
    assert (await client.get(f"/api/v1/plans/{plan['id']}")).json()["status"] == "active"  # the first delivery activates the plan
    unreported = await release(client, second)
    assert refusal(unreported) == (422, "batch.sessions_not_reported", ["override_reason"])
    released = await release(client, second, "Travelling for work; sessions 1-3 reported by phone")
    assert (released.status_code, released.json()["status"]) == (200, "queued"), released.text
    assert released.json()["release_override_reason"] == "Travelling for work; sessions 1-3 reported by phone"

    await run_jobs(session_factory, settings, clock)
    [shipped_mail] = [m for m in smtp.messages if m["To"] == consult.patient.email and "on its way" in m["Subject"]]
    body = smtp.text_of(shipped_mail)
    assert "on its way" in body
    for secret in ("etamine", "troche", "Troche", " mg", "1Z999", "L-7", "UPS", "dose"):
        assert secret not in body and secret not in shipped_mail["Subject"], secret

    assert await audit_actions(session_factory, plan["id"]) == [
        "troche_plan.draft",
        "troche_plan.sign",
        "troche_plan.basis",
        "troche_plan.send",
        "troche_plan.activate",
    ]
    assert await audit_actions(session_factory, first, prefix="plan_batch.") == [
        "plan_batch.accept",
        "plan_batch.fill",
        "plan_batch.ship",
        "plan_batch.deliver",
    ]
    assert await audit_actions(session_factory, second) == ["plan_batch.release", "plan_batch.release_override"]
    encounter_trail = await audit_actions(session_factory, consult.encounter_id)
    assert (
        encounter_trail[0] == "encounter.open" and encounter_trail[-1] == "encounter.start_plan" and "encounter.record" in encounter_trail
    )
