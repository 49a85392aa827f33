"""The sitter is another person (DOMAIN.md, issue 18 part 4), through the real API and pages: not the
patient's email or phone; verified by a coordinator (method, time, who; audited; coordinators only) before
they can be chosen for a session, and an unverified sitter holds the dose at unlock; a sitter link opened
where the patient is signed in is refused; an attestation from the patient's address or device is flagged
to the prescriber and the care team alerted; the sitter hears of every change to their session and may
withdraw, which tells the patient and clears their future sessions."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import text

from telehealth.accounts.roles import Role
from telehealth.db.engine import transaction
from telehealth.intake.models import IntakeSection
from tests.helpers import csrf_headers, form_csrf_token, make_person, sign_in
from tests.integration.dosing.helpers import (
    SITTER,
    active_plan,
    another_device,
    check_in,
    confirmed_sitter,
    coordinator,
    coordinator_verifies,
    count,
    emails_to,
    execute,
    gate_codes,
    patient_signed_in,
    post,
    prescriber_signed_in,
    schedule,
    scheduled,
    signed_sitter,
    sitter_device,
    sitter_present,
    unlock,
)
from tests.integration.prescribing.helpers import refusal

PATIENTS_BROWSER = "This link is for your sitter. Open it on their phone or computer, not while signed in as the patient."


async def sitter_row(session_factory, sitter_id: str) -> dict:
    async with session_factory() as session:
        return dict((await session.execute(text("SELECT * FROM sitter WHERE id = :id"), {"id": uuid.UUID(sitter_id)})).mappings().one())


def subjects(mail, to: str, *, since: int = 0) -> list[str]:
    return [str(m["Subject"]).strip() for m in mail.smtp.messages[since:] if m["To"] == to]


# --- 1. another contact ---------------------------------------------------------------------------------


async def test_a_sitter_at_the_patients_own_email_is_refused_naming_email(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    own = await post(client, "/api/v1/my/sitters", {**SITTER, "email": f"  {home.patient.email.upper()} "})  # compared trimmed, lower-cased
    assert refusal(own) == (422, "request.invalid", ["email"])
    assert "someone else" in own.json()["fields"]["email"]
    assert await count(session_factory, "SELECT count(*) FROM sitter") == 0


async def test_a_sitter_at_the_patients_own_phone_is_refused_naming_phone(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    async with transaction(session_factory) as session:  # the mobile number the patient gave at intake
        intake = (await session.execute(text("SELECT id FROM intake WHERE patient_id = :p"), {"p": home.patient.patient_id})).scalar_one()
        session.add(
            IntakeSection(
                intake_id=intake,
                section="demographics",
                answers={"first_name": "Pat", "last_name": "Example", "phone": "+12125550123"},
                saved_at=clock.now(),
            )
        )
    await patient_signed_in(client, home, clock)
    for written in ("+12125550123", "(212) 555-0123", "212.555.0123"):  # digits only, the country code optional
        own = await post(client, "/api/v1/my/sitters", {**SITTER, "phone": written})
        assert refusal(own) == (422, "request.invalid", ["phone"]), written
    assert await count(session_factory, "SELECT count(*) FROM sitter") == 0
    other = await post(client, "/api/v1/my/sitters", {**SITTER, "phone": "+12125550124"})
    assert other.status_code == 201, other.text


# --- 2. a coordinator verifies each new sitter ------------------------------------------------------------


async def test_an_unverified_sitter_cannot_be_scheduled_and_holds_the_dose_at_unlock(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await signed_sitter(client, mail)
    mine = (await client.get("/api/v1/my/sitters")).json()
    assert [(s["status"], s["verification_pending"]) for s in mine] == [("confirmed", True)]  # what the patient's page says too
    assert "verification pending" in (await client.get("/dosing")).text

    refused = await schedule(client, sitter["id"], clock.now() + timedelta(minutes=30))
    assert refusal(refused) == (422, "request.invalid", ["sitter_id"])
    assert "verified" in refused.json()["detail"] and "Sam Rivers" in refused.json()["detail"]
    assert await count(session_factory, "SELECT count(*) FROM dosing_session") == 0

    # A session scheduled before the check was required (a sitter named before migration 0026): the gate holds it.
    verified = await coordinator_verifies(client, mail, sitter["id"])
    assert verified.status_code == 200, verified.text
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    await execute(
        session_factory,
        "UPDATE sitter SET verified_at = NULL, verified_by = NULL, verification_method = NULL WHERE id = :id",
        id=uuid.UUID(sitter["id"]),
    )
    assert (await check_in(client, booked["id"])).status_code == 201
    await sitter_present(client, mail)
    assert gate_codes(await unlock(client, booked["id"])) == ["gate.sitter_not_verified"]

    assert (await coordinator_verifies(client, mail, sitter["id"], method="phone")).status_code == 200
    assert (await unlock(client, booked["id"])).status_code == 200


async def test_the_verification_is_recorded_with_method_time_and_who_and_audited(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await signed_sitter(client, mail)
    checker = await coordinator(session_factory, settings, clock)
    desk = another_device(client, ip="192.0.2.10", user_agent="the clinic's desk")
    await sign_in(desk, checker, clock)

    waiting = (await desk.get("/api/v1/sitters/unverified")).json()
    assert [(w["sitter"]["id"], w["sitter"]["email"], w["sitter"]["phone"], w["patient_name"]) for w in waiting] == [
        (sitter["id"], SITTER["email"], SITTER["phone"], "Pat")
    ]
    bad = await post(desk, f"/api/v1/sitters/{sitter['id']}/verification", {"method": "email"})
    assert refusal(bad) == (422, "request.invalid", ["method"])
    clock.advance(timedelta(minutes=5))
    done = await post(desk, f"/api/v1/sitters/{sitter['id']}/verification", {"method": "phone", "note": "Spoke for 4 minutes."})
    assert done.status_code == 200, done.text
    assert (done.json()["verification_method"], done.json()["verification_pending"]) == ("phone", False)
    row = await sitter_row(session_factory, sitter["id"])
    assert (row["verification_method"], row["verified_by"], row["verified_at"], row["verification_note"]) == (
        "phone",
        checker.user_id,
        clock.now(),
        "Spoke for 4 minutes.",
    )
    async with session_factory() as session:
        audited = (
            await session.execute(
                text(
                    "SELECT actor_user_id, actor_role, reason, patient_id FROM audit_event WHERE action = 'sitter.verify' AND "
                    "resource_id = :id"
                ),
                {"id": sitter["id"]},
            )
        ).all()
    assert audited == [(checker.user_id, "coordinator", "phone", home.patient.patient_id)]
    assert (await desk.get("/api/v1/sitters/unverified")).json() == []
    again = await post(desk, f"/api/v1/sitters/{sitter['id']}/verification", {"method": "video"})
    assert refusal(again)[:2] == (409, "sitter.already_verified")
    await desk.aclose()
    assert [s["verification_pending"] for s in (await client.get("/api/v1/my/sitters")).json()] == [False]


async def test_only_a_coordinator_lists_or_verifies_sitters(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await signed_sitter(client, mail)
    verify = f"/api/v1/sitters/{sitter['id']}/verification"
    assert refusal(await post(client, verify, {"method": "video"}))[:2] == (403, "auth.role_forbidden")  # the patient
    assert (await client.get("/api/v1/sitters/unverified")).status_code == 403
    assert (await client.get("/coordinator/sitters", headers={"accept": "text/html"})).status_code == 403
    for role in (Role.PRESCRIBER, Role.THERAPIST, Role.PHARMACIST):
        staff = await make_person(session_factory, role=role, email=f"{role.value}-x@example.org", now=clock.now(), settings=settings)
        desk = another_device(client, ip="192.0.2.11", user_agent="a clinician's desk")
        await sign_in(desk, staff, clock)
        assert refusal(await post(desk, verify, {"method": "video"}))[:2] == (403, "auth.role_forbidden"), role
        assert (await desk.get("/api/v1/sitters/unverified")).status_code == 403, role
        await desk.aclose()
    assert (await sitter_row(session_factory, sitter["id"]))["verified_at"] is None
    assert (await coordinator_verifies(client, mail, sitter["id"])).status_code == 200


# --- 3. the patient's browser -----------------------------------------------------------------------------


async def test_a_sitter_link_in_the_patients_signed_in_browser_is_refused_and_audited(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    assert (await check_in(client, booked["id"])).status_code == 201
    presence = await mail.sitter_link(SITTER["email"])

    read = await client.get(f"/api/v1/sitter-links/{presence}")
    assert refusal(read)[:2] == (403, "sitter_link.patient_signed_in") and read.json()["detail"] == PATIENTS_BROWSER
    attested = await post(client, f"/api/v1/sitter-links/{presence}/presence", {"typed_name": SITTER["full_name"]})
    assert refusal(attested)[:2] == (403, "sitter_link.patient_signed_in")
    page = await client.get(f"/sitter/{presence}", headers={"accept": "text/html"})
    assert page.status_code == 403 and PATIENTS_BROWSER.replace("'", "&#39;") in page.text and "I am here with" not in page.text
    form = await client.post(
        f"/sitter/{presence}/presence",
        data={"typed_name": SITTER["full_name"]},
        headers={"accept": "text/html", **await csrf_headers(client)},
    )
    assert form.status_code == 403 and "This link is for the sitter" in form.text
    assert await count(session_factory, "SELECT count(*) FROM sitter_attestation") == 0
    denied = await count(
        session_factory,
        "SELECT count(*) FROM audit_event WHERE action = 'sitter_link.open' AND outcome = 'denied' "
        "AND reason = 'patient_signed_in' AND actor_user_id = :u",
        u=home.patient.user_id,
    )
    assert denied == 4  # each refusal once

    # Not spent: from the sitter's own phone the same link works.
    ok = await post(sitter_device(client), f"/api/v1/sitter-links/{presence}/presence", {"typed_name": SITTER["full_name"]})
    assert ok.status_code == 200, ok.text


# --- 4. an attestation from the patient's address or device ----------------------------------------------


async def test_attestations_from_the_patients_address_or_device_are_flagged_and_the_care_team_alerted(
    client, session_factory, settings, clock, mail
):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)  # the patient signs in from "testclient" with the browser "testclient"
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    assert (await check_in(client, booked["id"])).status_code == 201
    staff = [
        home.prescriber.email,
        *[row[0] for row in await rows(session_factory, "SELECT email FROM user_account WHERE role = 'coordinator'")],
    ]
    presence = await mail.sitter_link(SITTER["email"])
    before = {to: len(emails_to(mail, to)) for to in staff}

    # The patient's home network, another browser: the address matches.
    same_network = another_device(client, ip="testclient", user_agent="Mozilla/5.0 (a phone on the home Wi-Fi)")
    attested = await post(same_network, f"/api/v1/sitter-links/{presence}/presence", {"typed_name": SITTER["full_name"]})
    assert attested.status_code == 200, attested.text
    assert (await unlock(client, booked["id"])).status_code == 200  # a flag for the prescriber, not a refusal
    # The patient's own browser, signed out of it (no cookie): the address and the browser match.
    clock.advance(timedelta(minutes=61))
    own_browser = another_device(client, ip="testclient", user_agent="testclient")
    end_token = attested.json()["next_link"].rsplit("/", 1)[-1]
    ended = await post(
        own_browser, f"/api/v1/sitter-links/{end_token}/end", {"typed_name": SITTER["full_name"], "outcome": "alert_and_safe"}
    )
    assert ended.status_code == 200, ended.text

    flags = await rows(session_factory, "SELECT kind, same_as_patient FROM sitter_attestation ORDER BY attested_at")
    assert flags == [("presence", "address"), ("end", "device")]
    assert await count(session_factory, "SELECT count(*) FROM audit_event WHERE action = 'sitter_attestation.flag'") == 2
    await mail.deliver()
    for to in staff:  # one detail-free email per flagged attestation, to the prescriber and every coordinator
        new = emails_to(mail, to)[before[to] :]
        assert len(new) == 2, (to, [str(m["Subject"]) for m in new])
        assert all("sitter" not in mail.smtp.text_of(m).lower() for m in new)

    await prescriber_signed_in(client, home, clock)
    plan = (await client.get(f"/api/v1/plans/{home.plan_id}/dosing")).json()
    [row] = plan["sessions"]
    assert (row["presence_same_as_patient"], row["sitter_end"]["same_as_patient"]) == ("address", "device")
    page = (await client.get(f"/plans/{home.plan_id}/dosing")).text
    assert "sent from the patient&#39;s address" in page and "sent from the patient&#39;s own device" in page
    await same_network.aclose()
    await own_browser.aclose()


async def test_an_attestation_from_the_sitters_own_phone_is_not_flagged(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    assert (await check_in(client, booked["id"])).status_code == 201
    await sitter_present(client, mail)
    assert await rows(session_factory, "SELECT same_as_patient FROM sitter_attestation") == [(None,)]


# --- 5. told of every change, and free to withdraw -------------------------------------------------------


async def test_the_sitter_is_told_when_the_session_is_held_or_the_plan_pauses_resumes_or_stops(
    client, session_factory, settings, clock, mail
):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    await mail.deliver()
    since = len(mail.smtp.messages)
    held = await check_in(client, booked["id"], no_alcohol_or_sedatives=False)
    assert held.json()["held"]
    await mail.deliver()
    [cancelled] = [m for m in mail.smtp.messages[since:] if m["To"] == SITTER["email"]]
    assert str(cancelled["Subject"]).strip().startswith("Cancelled: sitting with") and "alcohol" not in mail.smtp.text_of(cancelled).lower()
    assert any(p.get_content_type() == "text/calendar" and "CANCELLED" in p.get_content() for p in cancelled.walk())

    later = await scheduled(client, sitter["id"], clock.now() + timedelta(days=2))
    await mail.deliver()
    await prescriber_signed_in(client, home, clock)
    since = len(mail.smtp.messages)
    assert (await post(client, f"/api/v1/plans/{home.plan_id}/pause", {"reason": "Reviewing the last check-in."})).status_code == 200
    assert (await post(client, f"/api/v1/plans/{home.plan_id}/resume")).status_code == 200
    assert (await post(client, f"/api/v1/plans/{home.plan_id}/discontinue", {"reason": "Stopping the program."})).status_code == 200
    await mail.deliver()
    told = subjects(mail, SITTER["email"], since=since)
    assert [subject.split(":")[0] for subject in told] == ["On hold", "Back on", "Cancelled"], told
    assert await rows(session_factory, "SELECT status FROM dosing_session WHERE id = :id", id=uuid.UUID(later["id"])) == [("cancelled",)]
    assert (
        await count(
            session_factory,
            "SELECT count(*) FROM sitter_link WHERE dosing_session_id = :id AND revoked_at IS NULL AND used_at IS NULL",
            id=uuid.UUID(later["id"]),
        )
        == 0
    )


async def test_a_sitter_who_withdraws_leaves_every_future_session_and_the_patient_is_told(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(days=2))
    excuse = await mail.sitter_link(SITTER["email"], invite=True)
    phone = sitter_device(client)
    page = (await phone.get(f"/sitter/{excuse}")).text
    assert f'href="/sitter/{excuse}/withdraw"' in page  # "withdraw as a sitter" on their own page
    confirm = await phone.get(f"/sitter/{excuse}/withdraw")
    assert confirm.status_code == 200 and "Withdraw as Pat" in confirm.text
    since = len(mail.smtp.messages)

    withdrawn = await phone.post(
        f"/sitter/{excuse}/withdraw", data={"_csrf_token": form_csrf_token(confirm.text)}, headers={"accept": "text/html"}
    )
    assert withdrawn.status_code == 200 and "no longer a sitter" in withdrawn.text
    assert (await sitter_row(session_factory, sitter["id"]))["status"] == "withdrawn"
    session = (await client.get(f"/api/v1/my/dosing/sessions/{booked['id']}")).json()
    assert (session["status"], session["sitter_id"]) == ("scheduled", None)
    assert (
        await count(
            session_factory,
            "SELECT count(*) FROM sitter_link WHERE sitter_id = :id AND revoked_at IS NULL AND used_at IS NULL",
            id=uuid.UUID(sitter["id"]),
        )
        == 0
    )
    assert (await phone.get(f"/api/v1/sitter-links/{excuse}")).status_code == 410
    assert await count(session_factory, "SELECT count(*) FROM audit_event WHERE action = 'sitter.withdraw'") == 1
    await mail.deliver()
    told = [m for m in mail.smtp.messages[since:] if m["To"] == home.patient.email]
    assert len(told) == 1 and "update in your" in str(told[0]["Subject"]) and SITTER["full_name"] not in mail.smtp.text_of(told[0])
    assert [s.split(":")[0] for s in subjects(mail, SITTER["email"], since=since)] == ["Cancelled"]  # the calendar clears
    assert refusal(await schedule(client, sitter["id"], clock.now() + timedelta(days=3)))[:3] == (422, "request.invalid", ["sitter_id"])


async def rows(session_factory, sql: str, **params) -> list[tuple]:
    async with session_factory() as session:
        return [tuple(row) for row in (await session.execute(text(sql), params)).all()]
