"""Clinical notes: a therapist on the patient's care team writes a summary for the team and a psychotherapy
note of their own; the team's prescriber reads the summary only; a therapist not on the care team, the
coordinator and the pharmacist read nothing; an empty note is a 422 naming the field; every read is audited."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from telehealth.accounts.models import CareTeamMember
from telehealth.accounts.roles import Role
from telehealth.db.engine import transaction
from tests.helpers import form_csrf_token, make_person, sign_in
from tests.integration.scheduling.helpers import screened_patient


async def test_notes_reach_the_care_team_only(client, session_factory, settings, clock):
    patient = await screened_patient(session_factory, settings, clock)
    people = {
        role: await make_person(session_factory, role=role, email=f"{role.value}@example.org", now=clock.now(), settings=settings)
        for role in (Role.THERAPIST, Role.PRESCRIBER, Role.COORDINATOR, Role.PHARMACIST)
    }
    outsider = await make_person(session_factory, role=Role.THERAPIST, email="other@example.org", now=clock.now(), settings=settings)
    async with transaction(session_factory) as session:
        session.add(CareTeamMember(patient_id=patient.patient_id, clinician_id=people[Role.THERAPIST].user_id, added_at=clock.now()))
        session.add(CareTeamMember(patient_id=patient.patient_id, clinician_id=people[Role.PRESCRIBER].user_id, added_at=clock.now()))
    url = f"/patients/{patient.patient_id}/notes"

    await sign_in(client, people[Role.THERAPIST], clock)
    page = await client.get(url)
    empty = await client.post(url, data={"body": " ", "_csrf_token": form_csrf_token(page.text)}, headers={"accept": "text/html"})
    assert empty.status_code == 422
    written = await client.post(
        url, data={"body": "Integration 1: grounding exercise helped.", "kind": "shared", "_csrf_token": form_csrf_token(page.text)}
    )
    assert written.status_code == 200 and "grounding exercise" in written.text
    private = await client.post(
        url, data={"body": "Processing grief about her father.", "kind": "psychotherapy", "_csrf_token": form_csrf_token(page.text)}
    )
    assert private.status_code == 200 and "her father" in private.text  # the author reads their own

    expected = {Role.PRESCRIBER: 200, Role.COORDINATOR: 403, Role.PHARMACIST: 403}
    for role, status in expected.items():
        client.cookies.clear()
        clock.advance(timedelta(seconds=30))
        await sign_in(client, people[role], clock)
        response = await client.get(url)
        assert response.status_code == status, role
        assert ("grounding exercise" in response.text) == (status == 200)
        assert "her father" not in response.text  # a psychotherapy note stays the therapist's
    client.cookies.clear()
    clock.advance(timedelta(seconds=30))
    await sign_in(client, outsider, clock)
    assert (await client.get(url)).status_code == 404
    async with session_factory() as session:
        reads = await session.scalar(text("SELECT count(*) FROM audit_event WHERE action = 'patient.record.notes' AND outcome = 'success'"))
    assert reads >= 4
