"""Who may sign, and when (DOMAIN.md "Plans"): a license and a DEA registration covering Schedule III in the
state the patient is in, both unexpired on the signing day; a PDMP check of that state within 24 h; identity
checked; a note on every needs_review flag; the password and a fresh, never-used TOTP code on the request.
Each check refuses with its code and names the field; the signature is a SHA-256 over the canonical content."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select, text, update

from telehealth.accounts.security import current_totp_code
from telehealth.audit.models import AuditEvent
from telehealth.db.engine import transaction
from telehealth.prescribing.models import Encounter, TrochePlan
from telehealth.prescribing.plans import verify_signature
from telehealth.prescribing.rules import PlanContent
from tests.helpers import csrf_headers
from tests.integration.prescribing.helpers import (
    consult_with_encounter,
    decide,
    drafted,
    flag_screening,
    not_a_current_code,
    ready_to_prescribe,
    record_encounter,
    refusal,
    rescreen,
    set_credentials,
    sign,
    signed_plan,
    switch_to,
)

NOT_LICENSED = (422, "plan.location_not_licensed", ["location_state"])


async def test_license_and_dea_are_checked_again_on_the_signing_day(client, session_factory, settings, clock, stripe_fake):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    await ready_to_prescribe(client, consult, clock)
    today = clock.now().date()
    await set_credentials(session_factory, consult.prescriber, license_expires=today, dea_expires=today)  # both valid through today
    plan = await drafted(client, consult)  # valid when drafted

    clock.set(datetime(2026, 11, 25, 6, 0, tzinfo=UTC))  # the next day (1 am in New York); the PDMP check is 15 h old
    await switch_to(client, consult.prescriber, clock)
    await set_credentials(session_factory, consult.prescriber, license_expires=date(2030, 1, 1))  # the DEA registration alone expired
    assert refusal(await sign(client, consult, plan["id"], clock)) == NOT_LICENSED
    await set_credentials(
        session_factory, consult.prescriber, license_expires=today, dea_expires=date(2030, 1, 1)
    )  # the license alone expired
    assert refusal(await sign(client, consult, plan["id"], clock)) == NOT_LICENSED
    # A registration renewed without Schedule III (IIIN, non-narcotic III's neighbour, is not III).
    await set_credentials(session_factory, consult.prescriber, license_expires=date(2030, 1, 1), schedules="II,IIN,IIIN,IV,V")
    assert refusal(await sign(client, consult, plan["id"], clock)) == NOT_LICENSED
    assert (await client.get(f"/api/v1/plans/{plan['id']}")).json()["status"] == "draft"

    await set_credentials(session_factory, consult.prescriber, schedules="II,IIN,III,IIIN,IV,V")
    signed = await sign(client, consult, plan["id"], clock)
    assert signed.status_code == 200, signed.text


async def test_the_pdmp_check_must_be_within_24_hours_of_signing(client, session_factory, settings, clock, stripe_fake):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    await ready_to_prescribe(client, consult, clock)  # PDMP checked at 15:05, five minutes after the visit started
    plan = await drafted(client, consult)
    checked_at = datetime(2026, 11, 24, 15, 5, tzinfo=UTC)

    clock.set(checked_at + timedelta(hours=25, minutes=-1))
    await switch_to(client, consult.prescriber, clock)  # +30 s, and sign adds 30 s: signed 25 h after the check
    stale = await sign(client, consult, plan["id"], clock)
    assert refusal(stale) == (422, "plan.pdmp_stale", ["pdmp_checked_at"])

    signing_at = clock.now() + timedelta(seconds=30)  # the moment `sign` will send
    async with transaction(session_factory) as session:
        await session.execute(
            update(Encounter)
            .where(Encounter.id == uuid.UUID(consult.encounter_id))
            .values(pdmp_checked_at=signing_at - timedelta(hours=24))
        )
    fresh = await sign(client, consult, plan["id"], clock)  # exactly 24 h: still valid
    assert fresh.status_code == 200, fresh.text


async def test_identity_location_and_the_pdmp_state_must_be_right_before_a_plan(client, session_factory, settings, clock, stripe_fake):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    facts = {
        "identity_checked": False,
        "location_state": "NY",
        "pdmp_checked_at": (clock.now() - timedelta(minutes=5)).isoformat(),
        "pdmp_state": "NY",
        "pdmp_reference": "PMP-1",
        "vitals_reviewed": True,
    }
    recorded = await record_encounter(client, consult, **facts)
    assert recorded.json()["prescribing_blocked"]["code"] == "plan.identity_not_checked"
    assert refusal(await decide(client, consult)) == (422, "plan.identity_not_checked", ["identity_checked"])
    assert refusal(await client.post(f"/api/v1/encounters/{consult.encounter_id}/plans", json={}, headers=await csrf_headers(client)))[
        0
    ] in (400, 422)

    # The patient is in New Jersey today: the prescriber holds a license and a DEA registration in New York only.
    await record_encounter(
        client, consult, identity_checked=True, identity_method="passport on video", location_state="NJ", pdmp_state="NJ"
    )
    assert refusal(await decide(client, consult)) == NOT_LICENSED

    await record_encounter(client, consult, location_state="NY", pdmp_state="NJ")  # the PDMP of another state
    assert refusal(await decide(client, consult)) == (422, "plan.pdmp_wrong_state", ["pdmp_state"])

    recorded = await record_encounter(client, consult, pdmp_state="NY")
    assert recorded.json()["prescribing_blocked"] is None
    assert (await decide(client, consult)).status_code == 200
    plan = await drafted(client, consult)
    assert (await sign(client, consult, plan["id"], clock)).status_code == 200


async def test_every_needs_review_flag_needs_a_note_before_deciding_and_again_at_signing(
    client, session_factory, settings, clock, stripe_fake
):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake, outcome="needs_review")
    await flag_screening(session_factory, consult.patient, rule_ids=["medication.benzodiazepines"])
    acknowledge = f"/api/v1/encounters/{consult.encounter_id}/acknowledgements"
    body = {
        "identity_checked": True,
        "identity_method": "driver's license",
        "location_state": "NY",
        "pdmp_state": "NY",
        "pdmp_checked_at": (clock.now() - timedelta(minutes=5)).isoformat(),
    }
    await record_encounter(client, consult, **body)
    unacknowledged = await decide(client, consult)
    assert refusal(unacknowledged) == (422, "plan.flags_unacknowledged", ["acknowledgements"])
    assert unacknowledged.json()["unacknowledged"] == ["medication.benzodiazepines"]
    blank = await client.post(
        acknowledge, json={"rule_id": "medication.benzodiazepines", "note": "   "}, headers=await csrf_headers(client)
    )
    assert refusal(blank) == (422, "request.invalid", ["note"])
    unknown = await client.post(acknowledge, json={"rule_id": "medication.opioids", "note": "n/a"}, headers=await csrf_headers(client))
    assert refusal(unknown) == (422, "request.invalid", ["rule_id"])

    note = {"rule_id": "medication.benzodiazepines", "note": "Clonazepam 0.5 mg at night; hold on dosing days, discussed."}
    assert (await client.post(acknowledge, json=note, headers=await csrf_headers(client))).status_code == 200
    assert (await decide(client, consult)).status_code == 200
    plan = await drafted(client, consult)

    clock.advance(timedelta(minutes=1))
    await rescreen(session_factory, clock, consult.patient, rule_ids=["medication.benzodiazepines", "medication.opioids"])  # a newer intake
    at_signing = await sign(client, consult, plan["id"], clock)
    assert refusal(at_signing) == (422, "plan.flags_unacknowledged", ["acknowledgements"])
    assert at_signing.json()["unacknowledged"] == ["medication.opioids"]
    note = {"rule_id": "medication.opioids", "note": "Tramadol stopped in 2024; PDMP agrees."}
    assert (await client.post(acknowledge, json=note, headers=await csrf_headers(client))).status_code == 200
    signed = await sign(client, consult, plan["id"], clock)
    assert signed.status_code == 200, signed.text
    chart = (await client.get(f"/api/v1/encounters/{consult.encounter_id}")).json()["chart"]
    assert {f["rule_id"]: f["acknowledgement"] for f in chart["flags"]} == {
        "medication.benzodiazepines": "Clonazepam 0.5 mg at night; hold on dosing days, discussed.",
        "medication.opioids": "Tramadol stopped in 2024; PDMP agrees.",
    }


async def test_signing_needs_the_password_and_a_fresh_unused_code_on_the_request(client, session_factory, settings, clock, stripe_fake):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    await ready_to_prescribe(client, consult, clock)
    plan = await drafted(client, consult)
    secret = consult.prescriber.totp_secret

    wrong_password = await sign(client, consult, plan["id"], clock, password="correct horse battery stable")
    assert refusal(wrong_password) == (422, "signing.wrong_password", ["password"])
    wrong_code = await sign(client, consult, plan["id"], clock, code=not_a_current_code(secret, clock.now()))
    assert refusal(wrong_code) == (422, "two_factor.wrong_code", ["code"])

    await switch_to(client, consult.prescriber, clock)  # signing in uses this step's code...
    used = current_totp_code(secret, at=clock.now())
    reused = await sign(client, consult, plan["id"], clock, code=used)  # ...so it is refused for signing (30 s later, still in the window)
    assert refusal(reused) == (422, "two_factor.wrong_code", ["code"])
    assert (await client.get(f"/api/v1/plans/{plan['id']}")).json()["status"] == "draft"

    signed = await sign(client, consult, plan["id"], clock)
    assert signed.status_code == 200, signed.text
    async with session_factory() as session:
        attempts = (
            await session.execute(
                select(AuditEvent.outcome, AuditEvent.reason)
                .where(AuditEvent.action == "auth.signing", AuditEvent.actor_user_id == consult.prescriber.user_id)
                .order_by(AuditEvent.id)
            )
        ).all()
    assert [tuple(a) for a in attempts] == [
        ("failure", "wrong_password"),
        ("failure", "wrong_code"),
        ("failure", "code_reused"),
        ("success", None),
    ]


async def test_the_signature_is_the_sha256_of_the_canonical_content_and_detects_a_change(
    client, session_factory, settings, clock, stripe_fake
):
    consult, plan = await signed_plan(client, session_factory, settings, clock, stripe_fake)
    content = PlanContent(
        patient_id=str(consult.patient.patient_id),
        encounter_id=consult.encounter_id,
        prescriber_id=str(consult.prescriber.user_id),
        pharmacy_id=str(consult.pharmacy_id),
        product=plan["product"],
        strength_mg=plan["strength_mg"],
        doses_mg=tuple(plan["doses_mg"]),
        min_hours_between=plan["min_hours_between"],
        directions=plan["directions"],
        shipment_sessions=tuple(plan["shipment_sessions"]),
    )
    assert plan["content_sha256"] == content.sha256()
    async with session_factory() as session:
        row = await session.get(TrochePlan, uuid.UUID(plan["id"]))
        assert row is not None and verify_signature(row)

    async with transaction(session_factory) as session:  # someone edits the row behind the application's back
        await session.execute(
            text("UPDATE troche_plan SET doses_mg = '[100, 150, 200, 200, 200, 250]'::jsonb WHERE id = :id"), {"id": plan["id"]}
        )
    async with session_factory() as session:
        row = await session.get(TrochePlan, uuid.UUID(plan["id"]))
        assert row is not None and row.content_sha256 == plan["content_sha256"] and not verify_signature(row)
