"""Care teams form from what happens, coordinators change them with a reason (one winner), and a clinician
outside the team reads a record only by breaking the glass: a reason, four hours, audited, the team told,
a coordinator's review (issue 18; DOMAIN.md "Care teams form from events", "Minimum necessary")."""

from __future__ import annotations

from datetime import date, time, timedelta

import httpx
from sqlalchemy import text

from telehealth.accounts.roles import Role
from telehealth.clinicians.models import ClinicianProfile, StateLicense
from telehealth.db.engine import transaction
from telehealth.scheduling.models import WeeklyHours
from tests.helpers import book_paid, csrf_headers, form_csrf_token, join_care_team, make_person, sign_in
from tests.integration.prescribing.helpers import at_once, request_as
from tests.integration.scheduling.helpers import screened_patient


async def _therapist_with_hours(session_factory, clock, settings, email="t@example.org"):
    therapist = await make_person(session_factory, role=Role.THERAPIST, email=email, now=clock.now(), settings=settings)
    async with transaction(session_factory) as session:
        session.add(ClinicianProfile(user_id=therapist.user_id, timezone="America/New_York", created_at=clock.now()))
        session.add(StateLicense(clinician_id=therapist.user_id, state="NY", number="T1", license_type="LCSW", expires_on=date(2030, 1, 1)))
        for weekday in range(7):
            session.add(WeeklyHours(clinician_id=therapist.user_id, weekday=weekday, starts_at_local=time(9), ends_at_local=time(17)))
    return therapist


async def _count(session_factory, sql: str, **params) -> int:
    async with session_factory() as session:
        return int(await session.scalar(text(sql), params) or 0)


async def test_booking_an_integration_session_puts_the_therapist_on_the_team(client, session_factory, settings, clock, stripe_fake):
    therapist = await _therapist_with_hours(session_factory, clock, settings)
    patient = await screened_patient(session_factory, settings, clock)
    await sign_in(client, therapist, clock)
    assert (await client.get(f"/patients/{patient.patient_id}/notes")).status_code == 404  # a stranger so far

    client.cookies.clear()
    await sign_in(client, patient, clock)
    await book_paid(
        client, stripe_fake, {"type": "integration", "clinician_id": str(therapist.user_id), "starts_at": "2026-11-24T15:00:00Z"}
    )
    client.cookies.clear()
    clock.advance(timedelta(seconds=30))
    await sign_in(client, therapist, clock)
    assert (await client.get(f"/patients/{patient.patient_id}/notes")).status_code == 200
    follow_up = await client.post(
        "/api/v1/follow-ups",
        json={"patient_id": str(patient.patient_id), "starts_at": "2026-12-01T15:00:00Z"},
        headers=await csrf_headers(client),
    )
    assert follow_up.status_code == 201, follow_up.text
    team = (await client.get(f"/api/v1/patients/{patient.patient_id}/care-team")).json()
    assert [(m["clinician_id"], m["joined_because"]) for m in team] == [(str(therapist.user_id), "integration_booked")]


async def test_a_coordinator_replaces_a_therapist_and_the_one_who_left_loses_access(client, session_factory, settings, clock):
    patient = await screened_patient(session_factory, settings, clock)
    first = await make_person(session_factory, role=Role.THERAPIST, email="first@example.org", now=clock.now(), settings=settings)
    second = await make_person(session_factory, role=Role.THERAPIST, email="second@example.org", now=clock.now(), settings=settings)
    pharmacist = await make_person(session_factory, role=Role.PHARMACIST, email="ph@example.org", now=clock.now(), settings=settings)
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    await join_care_team(session_factory, patient, first, now=clock.now(), because="integration_booked")
    await sign_in(client, coordinator, clock)
    url = f"/api/v1/patients/{patient.patient_id}/care-team"
    [member] = (await client.get(url)).json()

    no_reason = await client.post(
        url, json={"clinician_id": str(second.user_id), "reason": " ", "replaces": member["id"]}, headers=await csrf_headers(client)
    )
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["fields"]
    not_a_clinician = await client.post(
        url, json={"clinician_id": str(pharmacist.user_id), "reason": "x"}, headers=await csrf_headers(client)
    )
    assert not_a_clinician.status_code == 422 and "clinician_id" in not_a_clinician.json()["fields"]

    body = {"clinician_id": str(second.user_id), "reason": "The patient asked for a therapist nearer their hours", "replaces": member["id"]}
    changed = await client.post(url, json=body, headers=await csrf_headers(client))
    assert changed.status_code == 201, changed.text
    history = (await client.get(url)).json()
    assert [(m["clinician_id"], m["left_at"] is None) for m in history] == [(str(first.user_id), False), (str(second.user_id), True)]
    assert (
        await _count(
            session_factory, "SELECT count(*) FROM job WHERE kind = 'notifications.send_email' AND payload->>'template' = 'portal_update'"
        )
        >= 1
    )

    for therapist, expected in ((first, 404), (second, 200)):
        client.cookies.clear()
        clock.advance(timedelta(seconds=30))
        await sign_in(client, therapist, clock)
        assert (await client.get(f"/patients/{patient.patient_id}/notes")).status_code == expected, therapist.email


async def test_two_coordinators_changing_the_same_member_at_once_one_wins(client, session_factory, settings, clock):
    patient = await screened_patient(session_factory, settings, clock)
    current = await make_person(session_factory, role=Role.THERAPIST, email="cur@example.org", now=clock.now(), settings=settings)
    candidates = [
        await make_person(session_factory, role=Role.THERAPIST, email=f"c{i}@example.org", now=clock.now(), settings=settings)
        for i in range(2)
    ]
    coordinators = [
        await make_person(session_factory, role=Role.COORDINATOR, email=f"co{i}@example.org", now=clock.now(), settings=settings)
        for i in range(2)
    ]
    await join_care_team(session_factory, patient, current, now=clock.now())
    url = f"/api/v1/patients/{patient.patient_id}/care-team"
    browsers = []
    for coordinator in coordinators:
        client.cookies.clear()
        clock.advance(timedelta(seconds=30))
        await sign_in(client, coordinator, clock)
        browsers.append(httpx.Cookies(client.cookies))
    [member] = (await client.get(url)).json()
    requests = [
        request_as(
            client, cookies, "POST", url, json={"clinician_id": str(candidate.user_id), "reason": "rebalancing", "replaces": member["id"]}
        )
        for cookies, candidate in zip(browsers, candidates, strict=True)
    ]
    answers = await at_once(client, requests)
    assert sorted(answer.status_code for answer in answers) == [201, 409]
    assert next(a for a in answers if a.status_code == 409).json()["code"] == "care_team.changed"
    assert (
        await _count(
            session_factory, "SELECT count(*) FROM care_team_member WHERE patient_id = :p AND left_at IS NULL", p=patient.patient_id
        )
        == 1
    )


async def test_breaking_the_glass_opens_the_record_for_four_hours_and_is_reviewed(client, session_factory, settings, clock, smtp):
    patient = await screened_patient(session_factory, settings, clock)
    on_call = await make_person(session_factory, role=Role.PRESCRIBER, email="oncall@example.org", now=clock.now(), settings=settings)
    therapist = await make_person(session_factory, role=Role.THERAPIST, email="t@example.org", now=clock.now(), settings=settings)
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    await join_care_team(session_factory, patient, therapist, now=clock.now())
    intake = f"/api/v1/patients/{patient.patient_id}/intake"
    glass = f"/api/v1/patients/{patient.patient_id}/break-glass"

    await sign_in(client, on_call, clock)
    assert (await client.get(intake)).status_code == 404
    no_reason = await client.post(glass, json={"reason": ""}, headers=await csrf_headers(client))
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["fields"]
    granted = await client.post(glass, json={"reason": "Called by the ER about this patient tonight"}, headers=await csrf_headers(client))
    assert granted.status_code == 201, granted.text
    assert (await client.get(intake)).status_code == 200
    grant_id = granted.json()["id"]
    assert (
        await _count(
            session_factory,
            "SELECT count(*) FROM audit_event WHERE action = 'patient.record.intake.read' AND reason = :r",
            r=f"break_glass:{grant_id}",
        )
        == 1
    )
    assert (
        await _count(session_factory, "SELECT count(*) FROM audit_event WHERE action = 'patient.break_glass' AND outcome = 'denied'") == 1
    )
    assert (
        await _count(
            session_factory, "SELECT count(*) FROM job WHERE kind = 'notifications.send_email' AND payload->>'to' = :t", t=therapist.email
        )
        == 1
    )

    clock.advance(timedelta(hours=4, seconds=1))
    client.cookies.clear()
    await sign_in(client, on_call, clock)
    assert (await client.get(intake)).status_code == 404  # the grant has run out

    client.cookies.clear()
    await sign_in(client, coordinator, clock)
    assert (await client.post(glass, json={"reason": "curious"}, headers=await csrf_headers(client))).status_code == 403
    waiting = (await client.get("/api/v1/break-glass")).json()
    assert [(g["id"], g["reason"]) for g in waiting] == [(grant_id, "Called by the ER about this patient tonight")]
    reviewed = await client.post(
        f"/api/v1/break-glass/{grant_id}/review", json={"note": "Confirmed with the ER log"}, headers=await csrf_headers(client)
    )
    assert reviewed.status_code == 200
    assert (await client.get("/api/v1/break-glass")).json() == []


async def test_the_pages_assign_a_clinician_and_the_patient_sees_their_team(client, session_factory, settings, clock):
    patient = await screened_patient(session_factory, settings, clock)
    therapist = await make_person(session_factory, role=Role.THERAPIST, email="t@example.org", now=clock.now(), settings=settings)
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    await sign_in(client, coordinator, clock)
    listing = await client.get("/coordinator/care-teams")
    assert listing.status_code == 200 and f"/patients/{patient.patient_id}/care-team" in listing.text and "nobody yet" in listing.text
    page = await client.get(f"/patients/{patient.patient_id}/care-team")
    refused = await client.post(
        f"/patients/{patient.patient_id}/care-team",
        data={"clinician_id": str(therapist.user_id), "replaces": "", "reason": "", "_csrf_token": form_csrf_token(page.text)},
    )
    assert refused.status_code == 422 and 'aria-invalid="true"' in refused.text
    done = await client.post(
        f"/patients/{patient.patient_id}/care-team",
        data={
            "clinician_id": str(therapist.user_id),
            "replaces": "",
            "reason": "Integration therapy starts",
            "_csrf_token": form_csrf_token(page.text),
        },
    )
    assert done.status_code == 200 and "Integration therapy starts" not in done.text and "on the team" in done.text
    client.cookies.clear()
    await sign_in(client, patient, clock)
    home = await client.get("/patient")
    async with session_factory() as session:
        name = await session.scalar(text("SELECT full_name FROM user_account WHERE id = :id"), {"id": therapist.user_id})
    assert f"{name}, your therapist" in home.text


async def test_only_a_coordinator_changes_a_team_whoever_calls_the_service(session_factory, settings, clock):
    """The rule lives in the service (the route guards say the same): a therapist's call is refused and audited."""
    import pytest

    from telehealth.care_teams import service as care_teams
    from telehealth.lib.actors import Actor
    from telehealth.lib.errors import Forbidden

    patient = await screened_patient(session_factory, settings, clock)
    therapist = await make_person(session_factory, role=Role.THERAPIST, email="t@example.org", now=clock.now(), settings=settings)
    async with transaction(session_factory) as session:
        with pytest.raises(Forbidden):
            await care_teams.assign(
                session,
                patient_id=patient.patient_id,
                clinician_id=therapist.user_id,
                replaces=None,
                reason="me",
                actor=Actor(user_id=therapist.user_id, role="therapist"),
                now=clock.now(),
            )
    assert await _count(session_factory, "SELECT count(*) FROM care_team_member WHERE patient_id = :p", p=patient.patient_id) == 0
