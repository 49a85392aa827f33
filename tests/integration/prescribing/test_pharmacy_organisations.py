"""Pharmacies are organisations (DOMAIN.md "Minimum necessary": pharmacists see only their own pharmacy's
queue, and each read of it is audited). A plan goes to one pharmacy: that pharmacy's pharmacist sees and works
its batches; another pharmacy's pharmacist gets nothing in the queue, 404 (not 403) for the batch by id and for
every step, each refusal audited like a refused patient read; a pharmacist of no pharmacy sees an empty queue
and a sentence saying why. Every queue and batch read leaves an audit event naming the pharmacy and the batch,
never the patient's details."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from telehealth.audit.models import AuditEvent
from telehealth.prescribing.pharmacy_staff import NO_PHARMACY
from tests.helpers import csrf_headers
from tests.integration.prescribing.helpers import (
    FILL,
    SHIP,
    audit_actions,
    intake_on_file,
    other_pharmacy,
    pay_program_fee,
    pharmacist,
    pharmacy_step,
    signed_plan,
    switch_to,
)

PATIENT_DETAILS = ("Lovelace", "1985-12-10", "12 Hudson St", "10013")
STEP_BODIES = {"accept": None, "reject": {"reason": "Out of stock"}, "fill": {**FILL, "units": 9}, "ship": SHIP, "deliver": None}


async def _events(session_factory, action: str) -> list[AuditEvent]:
    async with session_factory() as session:
        return list((await session.execute(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))).scalars())


async def test_a_pharmacist_sees_their_own_pharmacys_queue_and_not_anothers(client, session_factory, settings, clock, stripe_fake):
    consult, plan = await signed_plan(client, session_factory, settings, clock, stripe_fake)
    await intake_on_file(session_factory, clock, consult.patient)
    first = plan["batches"][0]["id"]
    ours = await pharmacist(session_factory, settings, clock, pharmacy_id=consult.pharmacy_id, email="ours@example.org")
    theirs = await pharmacist(
        session_factory, settings, clock, pharmacy_id=await other_pharmacy(session_factory, clock), email="theirs@example.org"
    )

    await switch_to(client, ours, clock)
    mine = (await client.get("/api/v1/pharmacy/queue")).json()
    assert (mine["pharmacy_id"], mine["pharmacy_name"], mine["notice"]) == (str(consult.pharmacy_id), "Green Mountain Compounding", None)
    assert [line["batch_id"] for line in mine["batches"]] == [first]
    assert "Ada Lovelace" in (await client.get("/pharmacy")).text
    assert "1 batch to accept" in (await client.get("/pharmacist")).text

    await switch_to(client, theirs, clock)
    other = await client.get("/api/v1/pharmacy/queue")
    assert (other.json()["pharmacy_name"], other.json()["batches"], other.json()["notice"]) == ("Hudson Valley Compounding", [], None)
    for page in ("/pharmacy", "/pharmacist"):
        text = (await client.get(page)).text
        assert not any(detail in text for detail in PATIENT_DETAILS), page
    assert "0 batches to accept" in (await client.get("/pharmacist")).text


async def test_another_pharmacys_batch_is_404_for_the_read_and_every_step_and_each_refusal_is_audited(
    client, session_factory, settings, clock, stripe_fake
):
    consult, plan = await signed_plan(client, session_factory, settings, clock, stripe_fake)
    first = plan["batches"][0]["id"]
    await pay_program_fee(client, consult, stripe_fake, clock)
    ours = await pharmacist(session_factory, settings, clock, pharmacy_id=consult.pharmacy_id, email="ours@example.org")
    theirs = await pharmacist(
        session_factory, settings, clock, pharmacy_id=await other_pharmacy(session_factory, clock), email="theirs@example.org"
    )

    await switch_to(client, theirs, clock)
    read = await client.get(f"/api/v1/pharmacy/batches/{first}")
    unknown = await client.get(f"/api/v1/pharmacy/batches/{uuid.uuid4()}")
    assert read.status_code == unknown.status_code == 404 and read.json() == unknown.json()  # the same answer as no batch at all
    assert read.json()["code"] == "batch.not_found"
    refused = await pharmacy_step(client, first, "reject", STEP_BODIES["reject"])
    assert (refused.status_code, refused.json()["code"]) == (404, "batch.not_found")

    # Each step is tried by the other pharmacy when it is the batch's next one (their own pharmacist's succeeds).
    for step in ("accept", "fill", "ship", "deliver"):
        await switch_to(client, theirs, clock)
        refused = await pharmacy_step(client, first, step, STEP_BODIES[step])
        assert (refused.status_code, refused.json()["code"]) == (404, "batch.not_found"), step
        page = await client.post(f"/pharmacy/batches/{first}/{step}", data=STEP_BODIES[step] or {}, headers=await csrf_headers(client))
        assert page.status_code == 404 and "No batch with this id is in your pharmacy" in page.text, step
        await switch_to(client, ours, clock)
        done = await pharmacy_step(client, first, step, STEP_BODIES[step])
        assert done.status_code == 200, (step, done.text)

    denied = await audit_actions(session_factory, first, outcome="denied")
    assert denied == ["pharmacy.batch.read", "pharmacy.batch.reject"] + [
        f"pharmacy.batch.{s}" for s in ("accept", "fill", "ship", "deliver") for _ in (1, 2)
    ]
    async with session_factory() as session:
        refusals = list(
            (await session.execute(select(AuditEvent).where(AuditEvent.resource_id == first, AuditEvent.outcome == "denied"))).scalars()
        )
    assert {(e.actor_user_id, e.reason, e.patient_id) for e in refusals} == {(theirs.user_id, "not_visible", None)}
    assert await audit_actions(session_factory, first, prefix="plan_batch.") == [
        "plan_batch.accept",
        "plan_batch.fill",
        "plan_batch.ship",
        "plan_batch.deliver",
    ]


async def test_queue_and_batch_reads_leave_audit_events_naming_the_pharmacy_and_batch(
    client, session_factory, settings, clock, stripe_fake
):
    consult, plan = await signed_plan(client, session_factory, settings, clock, stripe_fake)
    await intake_on_file(session_factory, clock, consult.patient)
    first = plan["batches"][0]["id"]
    ours = await pharmacist(session_factory, settings, clock, pharmacy_id=consult.pharmacy_id)
    await switch_to(client, ours, clock)

    assert (await client.get("/api/v1/pharmacy/queue")).status_code == 200
    assert (await client.get("/pharmacy")).status_code == 200
    line = (await client.get(f"/api/v1/pharmacy/batches/{first}")).json()
    assert (line["batch_id"], line["patient_name"], line["units"]) == (first, "Ada Lovelace", 9)
    held = plan["batches"][1]["id"]  # not sent to the pharmacy until the earlier sessions are reported: not readable yet either
    assert (await client.get(f"/api/v1/pharmacy/batches/{held}")).status_code == 404

    queue_reads = await _events(session_factory, "pharmacy.queue.read")
    assert [(e.actor_user_id, e.resource_type, e.resource_id, e.reason, e.outcome) for e in queue_reads] == [
        (ours.user_id, "pharmacy", str(consult.pharmacy_id), "batches:1", "success")
    ] * 2  # the API and the page
    lines = await _events(session_factory, "pharmacy.queue.line")
    assert [(e.resource_type, e.resource_id, e.patient_id, e.reason) for e in lines] == [
        ("plan_batch", first, consult.patient.patient_id, f"pharmacy:{consult.pharmacy_id}")
    ] * 2  # the patient's trail names who saw their line
    [batch_read, held_refused] = await _events(session_factory, "pharmacy.batch.read")
    assert (held_refused.resource_id, held_refused.outcome, held_refused.patient_id) == (held, "denied", None)
    assert (batch_read.actor_user_id, batch_read.resource_id, batch_read.patient_id, batch_read.reason, batch_read.outcome) == (
        ours.user_id,
        first,
        consult.patient.patient_id,
        f"pharmacy:{consult.pharmacy_id}",
        "success",
    )
    for event in queue_reads + lines + [batch_read]:
        assert not any(detail in (event.reason or "") for detail in PATIENT_DETAILS)


async def test_a_pharmacist_of_no_pharmacy_sees_an_empty_queue_and_a_sentence_saying_why(
    client, session_factory, settings, clock, stripe_fake
):
    consult, plan = await signed_plan(client, session_factory, settings, clock, stripe_fake)
    await intake_on_file(session_factory, clock, consult.patient)
    first = plan["batches"][0]["id"]
    nobody = await pharmacist(session_factory, settings, clock, pharmacy_id=None)
    await switch_to(client, nobody, clock)

    queue = await client.get("/api/v1/pharmacy/queue")
    assert queue.json() == {"pharmacy_id": None, "pharmacy_name": None, "notice": NO_PHARMACY, "batches": []}
    for page in ("/pharmacy", "/pharmacist"):
        text = (await client.get(page)).text
        assert "does not belong to a pharmacy yet" in text and "coordinator" in text, page
        assert not any(detail in text for detail in PATIENT_DETAILS), page
    assert (await client.get(f"/api/v1/pharmacy/batches/{first}")).status_code == 404
    assert (await pharmacy_step(client, first, "accept")).status_code == 404

    assert await audit_actions(session_factory, first, outcome="denied") == ["pharmacy.batch.read", "pharmacy.batch.accept"]
    refusals = await _events(session_factory, "pharmacy.queue.read")
    assert {(e.actor_user_id, e.outcome, e.reason) for e in refusals} == {(nobody.user_id, "denied", "no_pharmacy")}
