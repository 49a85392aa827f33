"""Who may read a patient's record: the object-level check, with staff reads and refusals audited."""

from __future__ import annotations

from sqlalchemy import select

from telehealth.accounts.models import CareTeamMember
from telehealth.accounts.roles import Role
from telehealth.audit.models import AuditEvent
from tests.helpers import make_person, sign_in


async def _people(session_factory, settings, clock):
    now = clock.now()
    alice = await make_person(session_factory, role=Role.PATIENT, email="alice@example.org", now=now, settings=settings)
    bob = await make_person(session_factory, role=Role.PATIENT, email="bob@example.org", now=now, settings=settings)
    return alice, bob


async def _record_events(session_factory):
    async with session_factory() as session:
        rows = await session.execute(select(AuditEvent).where(AuditEvent.action == "patient.record.read").order_by(AuditEvent.id))
        return rows.scalars().all()


async def test_a_patient_reads_their_own_record_only(client, session_factory, settings, clock):
    alice, bob = await _people(session_factory, settings, clock)
    await sign_in(client, alice, clock)
    own = await client.get(f"/api/v1/patients/{alice.patient_id}")
    assert own.status_code == 200
    assert own.json()["email"] == "alice@example.org"
    other = await client.get(f"/api/v1/patients/{bob.patient_id}")
    assert other.status_code == 404
    assert other.json()["code"] == "patient.not_found"
    assert "bob" not in other.text
    [denied] = await _record_events(session_factory)
    assert (denied.outcome, denied.actor_user_id, denied.resource_id) == ("denied", alice.user_id, str(bob.patient_id))


async def test_a_therapist_reads_only_patients_on_their_care_team(client, session_factory, settings, clock):
    alice, bob = await _people(session_factory, settings, clock)
    therapist = await make_person(session_factory, role=Role.THERAPIST, email="t@example.org", now=clock.now(), settings=settings)
    async with session_factory() as session:
        session.add(CareTeamMember(patient_id=alice.patient_id, clinician_id=therapist.user_id, added_at=clock.now()))
        await session.commit()
    await sign_in(client, therapist, clock)
    assert (await client.get(f"/api/v1/patients/{alice.patient_id}")).status_code == 200
    assert (await client.get(f"/api/v1/patients/{bob.patient_id}")).status_code == 404
    events = await _record_events(session_factory)
    assert [(e.outcome, e.patient_id) for e in events] == [("success", alice.patient_id), ("denied", None)]


async def test_a_pharmacist_reads_no_patient_record(client, session_factory, settings, clock):
    alice, _ = await _people(session_factory, settings, clock)
    pharmacist = await make_person(session_factory, role=Role.PHARMACIST, email="ph@example.org", now=clock.now(), settings=settings)
    await sign_in(client, pharmacist, clock)
    assert (await client.get(f"/api/v1/patients/{alice.patient_id}")).status_code == 404


async def test_clinic_wide_staff_reads_are_audited(client, session_factory, settings, clock):
    alice, _ = await _people(session_factory, settings, clock)
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    await sign_in(client, coordinator, clock)
    assert (await client.get(f"/api/v1/patients/{alice.patient_id}")).status_code == 200
    [read] = await _record_events(session_factory)
    assert (read.actor_user_id, read.actor_role, read.patient_id, read.outcome) == (
        coordinator.user_id,
        "coordinator",
        alice.patient_id,
        "success",
    )
    assert read.ip and read.user_agent


async def test_roles_cannot_open_each_others_home(client, session_factory, settings, clock):
    alice, _ = await _people(session_factory, settings, clock)
    await sign_in(client, alice, clock)
    for page in ("/prescriber", "/therapist", "/pharmacist", "/coordinator"):
        response = await client.get(page)
        assert response.status_code == 403, page
        assert response.json()["code"] == "auth.role_forbidden"
    assert (await client.get("/patient")).status_code == 200
