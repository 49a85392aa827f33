"""Prescribing follows the visit: no encounter, findings, decision or signature before the video visit started;
the PDMP check is not dated before it; a visit that took place cannot be cancelled (for a refund), moved or
marked missed; an external video service needs the clinician's attestation inside the join window."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from telehealth.billing.models import Refund
from telehealth.db.engine import transaction
from telehealth.lib.actors import Actor
from telehealth.prescribing.encounters import prescribing_blocker
from telehealth.prescribing.models import Encounter
from telehealth.scheduling.models import Appointment, VideoVisit
from telehealth.scheduling.visits import RoomPass, record_visit_started
from tests.helpers import book_paid, csrf_headers, sign_in, visit_took_place
from tests.integration.billing.helpers import insert_appointment
from tests.integration.prescribing.helpers import consult_with_encounter, ready_to_prescribe, switch_to
from tests.integration.scheduling.helpers import prescriber_with_hours, screened_patient

CONSULT_AT = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def refusal(response) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


async def _booked_consult(client, session_factory, settings, clock, stripe_fake):
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    patient = await screened_patient(session_factory, settings, clock)
    await sign_in(client, patient, clock)
    booked = await book_paid(
        client, stripe_fake, {"type": "consult", "clinician_id": str(prescriber.user_id), "starts_at": CONSULT_AT.isoformat()}
    )
    return prescriber, patient, booked["id"]


async def test_the_encounter_opens_only_once_the_visit_started(client, session_factory, settings, clock, stripe_fake):
    prescriber, _patient, appointment_id = await _booked_consult(client, session_factory, settings, clock, stripe_fake)
    await switch_to(client, prescriber, clock)
    open_it = f"/api/v1/appointments/{appointment_id}/encounter"
    # The day before (the first release let the whole plan be signed then), and inside the window with nobody in the room.
    assert refusal(await client.post(open_it, headers=await csrf_headers(client))) == (422, "encounter.visit_not_started")
    clock.set(CONSULT_AT + timedelta(minutes=2))
    await switch_to(client, prescriber, clock)
    assert refusal(await client.post(open_it, headers=await csrf_headers(client))) == (422, "encounter.visit_not_started")
    visit = (await client.get(f"/api/v1/appointments/{appointment_id}/visit")).json()
    assert visit["started_at"] is None and visit["connections"] == []

    await visit_took_place(session_factory, appointment_id, started_at=CONSULT_AT + timedelta(minutes=1))
    opened = await client.post(open_it, headers=await csrf_headers(client))
    assert opened.status_code == 200, opened.text
    visit = (await client.get(f"/api/v1/appointments/{appointment_id}/visit")).json()
    assert visit["start_evidence"] == "both_connected" and visit["modality"] == "audio_video"


async def test_decision_and_signing_refuse_an_encounter_without_a_visit(client, session_factory, settings, clock):
    """An encounter from before visits were recorded (or written around the service) cannot be decided or signed."""
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    patient = await screened_patient(session_factory, settings, clock)
    appointment_id = await insert_appointment(
        session_factory,
        patient=patient,
        clinician=prescriber,
        starts_at=clock.now() - timedelta(minutes=20),
        appointment_type="consult",
        minutes=45,
    )
    async with transaction(session_factory) as session:
        encounter = Encounter(
            appointment_id=appointment_id,
            patient_id=patient.patient_id,
            prescriber_id=prescriber.user_id,
            opened_at=clock.now(),
            identity_checked=True,
            identity_method="license on video",
            location_state="NY",
            pdmp_checked_at=clock.now(),
            pdmp_state="NY",
        )
        session.add(encounter)
    await sign_in(client, prescriber, clock)
    decided = await client.post(
        f"/api/v1/encounters/{encounter.id}/decision", json={"decision": "start_plan"}, headers=await csrf_headers(client)
    )
    assert refusal(decided) == (422, "encounter.visit_not_started")
    recorded = await client.patch(f"/api/v1/encounters/{encounter.id}", json={"vitals_reviewed": True}, headers=await csrf_headers(client))
    assert refusal(recorded) == (422, "encounter.visit_not_started")
    async with session_factory() as session:
        blocker = await prescribing_blocker(session, await session.get(Encounter, encounter.id), now=clock.now(), settings=settings)
    assert blocker is not None and blocker.code == "plan.visit_not_started"  # what writing and signing a plan ask first

    await visit_took_place(session_factory, appointment_id, started_at=clock.now() - timedelta(minutes=15))
    async with session_factory() as session:
        blocker = await prescribing_blocker(session, await session.get(Encounter, encounter.id), now=clock.now(), settings=settings)
    assert blocker is None or blocker.code != "plan.visit_not_started"


async def test_the_pdmp_check_is_not_dated_before_the_visit(client, session_factory, settings, clock, stripe_fake):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)  # the visit started at 15:00
    path = f"/api/v1/encounters/{consult.encounter_id}"
    before = await client.patch(
        path, json={"pdmp_checked_at": "2026-11-24T14:59:00Z", "pdmp_state": "NY"}, headers=await csrf_headers(client)
    )
    assert refusal(before) == (422, "request.invalid")
    assert before.json()["fields"]["pdmp_checked_at"].startswith("is before the video visit started")
    at_start = await client.patch(
        path, json={"pdmp_checked_at": "2026-11-24T15:00:00Z", "pdmp_state": "NY"}, headers=await csrf_headers(client)
    )
    assert at_start.status_code == 200, at_start.text


async def test_a_consult_that_led_to_a_plan_cannot_be_cancelled_for_a_refund(client, session_factory, settings, clock, stripe_fake):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    await ready_to_prescribe(client, consult, clock)  # decided: start_plan
    await switch_to(client, consult.patient, clock)
    cancel = f"/api/v1/appointments/{consult.appointment_id}/cancel"
    refused = await client.post(cancel, json={"accept_late_fee": True}, headers=await csrf_headers(client))
    assert refusal(refused) == (409, "appointment.led_to_plan")
    moved = await client.post(
        f"/api/v1/appointments/{consult.appointment_id}/reschedule",
        json={"starts_at": "2026-11-26T15:00:00Z", "accept_late_fee": True},
        headers=await csrf_headers(client),
    )
    assert refusal(moved) == (409, "appointment.led_to_plan")
    async with session_factory() as session:
        assert await session.scalar(select(Appointment.status).where(Appointment.id == consult.appointment_id)) == "booked"
        assert await session.scalar(select(func.count()).select_from(Refund)) == 0


async def test_a_visit_that_took_place_is_not_cancelled_or_marked_missed(client, session_factory, settings, clock, stripe_fake):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)  # visit started, nothing decided
    no_show = await client.post(f"/api/v1/appointments/{consult.appointment_id}/no-show", headers=await csrf_headers(client))
    assert refusal(no_show) == (409, "appointment.visit_took_place")
    cancelled = await client.post(f"/api/v1/appointments/{consult.appointment_id}/cancel", json={}, headers=await csrf_headers(client))
    assert refusal(cancelled) == (409, "appointment.visit_took_place")


async def test_a_cancelled_consult_never_gains_a_visit_or_an_encounter(client, session_factory, settings, clock, stripe_fake):
    prescriber, _patient, appointment_id = await _booked_consult(client, session_factory, settings, clock, stripe_fake)
    cancelled = await client.post(f"/api/v1/appointments/{appointment_id}/cancel", json={}, headers=await csrf_headers(client))
    assert cancelled.status_code == 200, cancelled.text
    async with transaction(session_factory) as session:
        room = RoomPass(uuid.UUID(appointment_id), prescriber.user_id, "clinician", CONSULT_AT + timedelta(hours=1))
        assert await record_visit_started(session, room, actor=Actor.system(), now=CONSULT_AT) is False
        assert await session.get(VideoVisit, room.appointment_id) is None
    clock.set(CONSULT_AT + timedelta(minutes=5))
    await switch_to(client, prescriber, clock)
    opened = await client.post(f"/api/v1/appointments/{appointment_id}/encounter", headers=await csrf_headers(client))
    assert refusal(opened) == (422, "encounter.appointment_not_booked")


async def test_an_external_video_service_needs_the_clinicians_attestation_in_the_window(
    client, session_factory, settings, clock, stripe_fake
):
    prescriber, patient, appointment_id = await _booked_consult(client, session_factory, settings, clock, stripe_fake)
    await switch_to(client, prescriber, clock)
    attest = f"/api/v1/appointments/{appointment_id}/visit/attest"
    external = replace(settings, video_room_url_template="https://video.example.org/visit/{room_token}")
    client.app.state.settings = external
    clock.set(CONSULT_AT - timedelta(minutes=11))
    await switch_to(client, prescriber, clock)
    assert refusal(await client.post(attest, headers=await csrf_headers(client))) == (422, "appointment.join_not_open")
    # With the built-in room the room records the start; no attestation stands in for it.
    client.app.state.settings = settings
    clock.set(CONSULT_AT - timedelta(minutes=5))
    await switch_to(client, prescriber, clock)
    assert refusal(await client.post(attest, headers=await csrf_headers(client))) == (422, "video_visit.recorded_by_room")

    client.app.state.settings = external
    clock.set(CONSULT_AT + timedelta(minutes=2))
    await switch_to(client, prescriber, clock)
    attested = await client.post(attest, headers=await csrf_headers(client))
    assert attested.status_code == 200, attested.text
    assert attested.json()["start_evidence"] == "clinician_attested" and attested.json()["started_at"] == clock.now().isoformat().replace(
        "+00:00", "Z"
    )
    opened = await client.post(f"/api/v1/appointments/{appointment_id}/encounter", headers=await csrf_headers(client))
    assert opened.status_code == 200, opened.text

    # The patient cannot attest.
    await switch_to(client, patient, clock)
    assert (await client.post(attest, headers=await csrf_headers(client))).status_code == 403


async def test_a_pdmp_check_without_its_state_is_no_check(client, session_factory, settings, clock, stripe_fake):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    body = {
        "identity_checked": True,
        "identity_method": "driver's license shown on video",
        "location_state": "NY",
        "pdmp_checked_at": (clock.now() - timedelta(minutes=5)).isoformat(),
        "pdmp_reference": "PMP-1",
        "vitals_reviewed": True,
    }
    assert (
        await client.patch(f"/api/v1/encounters/{consult.encounter_id}", json=body, headers=await csrf_headers(client))
    ).status_code == 200
    decided = await client.post(
        f"/api/v1/encounters/{consult.encounter_id}/decision", json={"decision": "start_plan"}, headers=await csrf_headers(client)
    )
    assert refusal(decided) == (422, "plan.pdmp_wrong_state") and decided.json()["fields"] == {"pdmp_state": "must be NY"}
    recorded = await client.patch(
        f"/api/v1/encounters/{consult.encounter_id}", json={"pdmp_state": "NY"}, headers=await csrf_headers(client)
    )
    assert recorded.status_code == 200
    decided = await client.post(
        f"/api/v1/encounters/{consult.encounter_id}/decision", json={"decision": "start_plan"}, headers=await csrf_headers(client)
    )
    assert decided.status_code == 200, decided.text
