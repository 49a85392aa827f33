"""Outcome charts and the program report: a patient sees their PHQ-9 and GAD-7 over time as an SVG with
the same numbers in a table; their prescriber sees it beside the doses (audited), a therapist not on
their care team cannot; the coordinator's report counts responders and remitters without a name, id or
date, on the page and in the CSV."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import text

from telehealth.accounts.roles import Role
from telehealth.db.engine import transaction
from telehealth.intake.models import QuestionnaireResponse
from tests.helpers import join_care_team, make_person, sign_in
from tests.integration.scheduling.helpers import screened_patient


async def answered(session_factory, patient, clock, kind: str, scores: list[int]) -> None:
    async with transaction(session_factory) as session:
        for index, score in enumerate(scores):
            session.add(
                QuestionnaireResponse(
                    id=uuid.uuid4(),
                    patient_id=patient.patient_id,
                    questionnaire=kind,
                    version="2026-1",
                    answers={},
                    score=score,
                    answered_at=clock.now() - timedelta(days=60 - 20 * index),
                )
            )


async def test_charts_for_the_patient_and_their_care_team_and_the_program_report(client, session_factory, settings, clock):
    first = await screened_patient(session_factory, settings, clock, email="one@example.org")
    second = await screened_patient(session_factory, settings, clock, email="two@example.org")
    await answered(session_factory, first, clock, "phq9", [18, 11, 4])  # remission (and a response)
    await answered(session_factory, first, clock, "gad7", [12, 8])  # neither
    await answered(session_factory, second, clock, "phq9", [20, 9])  # a response, not remission

    await sign_in(client, first, clock)
    page = await client.get("/outcomes")
    assert page.status_code == 200
    assert "<svg" in page.text and 'role="img"' in page.text and "PHQ-9 totals from first to latest: 18, 11, 4" in page.text
    assert "From 18 to 4 (-78%)" in page.text and "Remission." in page.text
    assert "<td>11</td>" in page.text  # the table beside the chart

    client.cookies.clear()
    prescriber = await make_person(session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=settings)
    await join_care_team(session_factory, first, prescriber, now=clock.now())
    await sign_in(client, prescriber, clock)
    staff_view = await client.get(f"/patients/{first.patient_id}/outcomes")
    assert staff_view.status_code == 200 and "Home sessions and doses" in staff_view.text
    async with session_factory() as session:
        audited = await session.scalar(
            text("SELECT count(*) FROM audit_event WHERE action = 'patient.record.outcomes' AND patient_id = :p"), {"p": first.patient_id}
        )
    assert audited == 1

    client.cookies.clear()
    clock.advance(timedelta(seconds=30))
    therapist = await make_person(session_factory, role=Role.THERAPIST, email="th@example.org", now=clock.now(), settings=settings)
    await sign_in(client, therapist, clock)
    assert (await client.get(f"/patients/{first.patient_id}/outcomes")).status_code == 404  # not on their care team

    client.cookies.clear()
    clock.advance(timedelta(seconds=30))
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    await sign_in(client, coordinator, clock)
    report = await client.get("/coordinator/outcomes")
    assert report.status_code == 200 and "2 (100%)" in report.text  # both PHQ-9 patients responded
    exported = await client.get("/coordinator/outcomes.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.strip().splitlines()
    assert lines[1] == "PHQ-9,2,2,2,100%,1,50%"
    assert lines[2] == "GAD-7,1,1,0,0%,0,0%"
    for private in ("one@example.org", "two@example.org", str(first.patient_id), str(second.patient_id), "One", "Two"):
        assert private not in exported.text and private not in report.text
