"""Free text that patients write and staff read is escaped wherever it is shown: a message, a session
report's notes, side effects and reason for ending early, a loss report, a sitter's name and relationship,
and a clinical note."""

from __future__ import annotations

from datetime import timedelta

from telehealth.accounts.models import CareTeamMember
from telehealth.accounts.roles import Role
from telehealth.db.engine import transaction
from tests.helpers import form_csrf_token, make_person, sign_in
from tests.integration.dosing.helpers import GOOD_REPORT, Mail, active_plan, patient_signed_in, post, ready_session, unlock

ATTACK = '<script>alert("x")</script><img src=x onerror=alert(1)>'
ESCAPED = "&lt;script&gt;alert("


def assert_escaped(html: str) -> None:
    assert "<script>alert" not in html and "<img src=x" not in html
    assert ESCAPED in html


async def test_patient_text_is_escaped_on_staff_pages(client, session_factory, settings, clock, smtp):
    home = await active_plan(session_factory, settings, clock)
    therapist = await make_person(session_factory, role=Role.THERAPIST, email="th@example.org", now=clock.now(), settings=settings)
    async with transaction(session_factory) as session:
        session.add(CareTeamMember(patient_id=home.patient.patient_id, clinician_id=therapist.user_id, added_at=clock.now()))
    await patient_signed_in(client, home, clock)
    mail = Mail(session_factory, settings, clock, smtp)
    _, booked, _ = await ready_session(client, mail)
    assert (
        await post(
            client, "/api/v1/my/sitters", {"full_name": "Eve " + ATTACK[:40], "email": "eve@example.org", "relationship": ATTACK[:90]}
        )
    ).status_code == 201
    assert (await unlock(client, booked["id"])).status_code == 200
    written = {
        **GOOD_REPORT,
        "notes": ATTACK,
        "other_side_effects": ATTACK,
        "ended_early_reason": ATTACK,
    }  # reported within the observed time
    assert (await post(client, f"/api/v1/my/dosing/sessions/{booked['id']}/report", written)).status_code == 201
    assert (await post(client, "/api/v1/my/dosing/loss", {"troches": 1, "what_happened": ATTACK})).status_code == 201
    page = await client.get("/messages")
    assert (await client.post("/messages", data={"body": ATTACK, "_csrf_token": form_csrf_token(page.text)})).status_code == 200
    assert_escaped((await client.get("/dosing")).text)  # the patient's own page too

    client.cookies.clear()
    await sign_in(client, home.prescriber, clock)
    assert_escaped((await client.get(f"/plans/{home.plan_id}/dosing")).text)
    assert_escaped((await client.get(f"/patients/{home.patient.patient_id}/messages")).text)
    assert_escaped((await client.get(f"/patients/{home.patient.patient_id}/record")).text)

    client.cookies.clear()
    clock.advance(timedelta(seconds=30))
    await sign_in(client, therapist, clock)
    notes = await client.get(f"/patients/{home.patient.patient_id}/notes")
    assert (
        await client.post(f"/patients/{home.patient.patient_id}/notes", data={"body": ATTACK, "_csrf_token": form_csrf_token(notes.text)})
    ).status_code == 200
    assert_escaped((await client.get(f"/patients/{home.patient.patient_id}/notes")).text)
