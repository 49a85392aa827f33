"""The patient answers PHQ-9 and GAD-7 again when the plan needs a reassessment (issue 6): refused when none
is due, stored with the intake's version and scoring (intake_id NULL), told as baseline vs now in plain
words, shown on the prescriber's encounter chart, a crisis answer takes the intake's crisis path, and one
answer per due reassessment (plan and checkpoint), also when sent twice at once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update

from telehealth.accounts.models import UserAccount
from telehealth.accounts.roles import Role
from telehealth.db.engine import transaction
from telehealth.intake.escalations import has_open_crisis
from telehealth.intake.models import Escalation, Intake, QuestionnaireResponse
from telehealth.prescribing.models import TrochePlan
from tests.helpers import Person, csrf_headers, drain_jobs, form_csrf_token, make_person, sign_in, visit_took_place, worker_context
from tests.integration.billing.helpers import plan_row, rows
from tests.integration.prescribing.helpers import at_once, request_as
from tests.integration.scheduling.helpers import prescriber_with_hours, screened_patient

URL = "/api/v1/reassessment/questionnaires"
# Baseline at intake: PHQ-9 18 (moderately severe), GAD-7 12 (moderate).
BASELINE = {"phq9": {f"phq9_{i}": 2 for i in range(1, 10)}, "gad7": {f"gad7_{i}": 2 for i in range(1, 7)} | {"gad7_7": 0}}
# Now: PHQ-9 4 (remission, and a response), GAD-7 7 (a 42% drop: neither).
NOW = {"phq9": {f"phq9_{i}": 1 if i <= 4 else 0 for i in range(1, 10)}, "gad7": {f"gad7_{i}": 1 for i in range(1, 8)}}


async def patient_with_baseline(client, session_factory, settings, clock, *, email="pat@example.org") -> Person:
    """A screened patient whose intake stored the baseline scores two months ago, signed in."""
    patient = await screened_patient(session_factory, settings, clock, email=email)
    async with transaction(session_factory) as session:
        intake_id = await session.scalar(select(Intake.id).where(Intake.patient_id == patient.patient_id))
        for key, score, band in (("phq9", 18, "moderately severe"), ("gad7", 12, "moderate")):
            session.add(
                QuestionnaireResponse(
                    patient_id=patient.patient_id,
                    intake_id=intake_id,
                    questionnaire=key,
                    version=f"{key}-v1",
                    answers=BASELINE[key],
                    score=score,
                    band=band,
                    answered_at=clock.now() - timedelta(days=60),
                )
            )
    client.cookies.clear()
    await sign_in(client, patient, clock)
    return patient


async def completed_plan(session_factory, settings, clock, patient: Person, *, status="completed") -> uuid.UUID:
    plan_id = await plan_row(session_factory, settings, clock, patient_id=patient.patient_id)
    async with transaction(session_factory) as session:
        await session.execute(
            update(TrochePlan).where(TrochePlan.id == plan_id).values(status=status, content_sha256="0" * 64, signed_at=clock.now())
        )
    return plan_id


async def answer(client, body=NOW):
    return await client.post(URL, json=body, headers=await csrf_headers(client))


async def test_no_reassessment_is_due_without_a_plan_or_while_it_runs(client, session_factory, settings, clock):
    patient = await patient_with_baseline(client, session_factory, settings, clock)
    refused = await answer(client)
    assert (refused.status_code, refused.json()["code"]) == (422, "reassessment.not_due")
    assert (await client.get(URL)).json() | {"questionnaires": []} == {
        "due": False,
        "answered": False,
        "questionnaires": [],
        "score_changes": [],
        "booking_path": None,
        "crisis": False,
        "crisis_resources": None,
    }
    await completed_plan(session_factory, settings, clock, patient, status="active")  # no session reported yet
    still = await answer(client)
    assert (still.status_code, still.json()["code"]) == (422, "reassessment.not_due")
    assert "No reassessment is due now" in (await client.get("/reassessment")).text
    assert "/reassessment" not in (await client.get("/patient")).text
    assert len(await rows(session_factory, QuestionnaireResponse, QuestionnaireResponse.intake_id.is_(None))) == 0


async def test_a_completed_plan_asks_again_stores_the_scores_and_tells_baseline_vs_now(client, session_factory, settings, clock):
    patient = await patient_with_baseline(client, session_factory, settings, clock)
    await completed_plan(session_factory, settings, clock, patient)
    home = await client.get("/patient")
    assert 'href="/reassessment"' in home.text and "Answer the questionnaires" in home.text
    offered = (await client.get(URL)).json()
    assert (offered["due"], offered["answered"]) == (True, False)
    assert [(q["key"], q["version"], len(q["items"])) for q in offered["questionnaires"]] == [
        ("phq9", "phq9-v1", 9),
        ("gad7", "gad7-v1", 7),
    ]

    answered = await answer(client)
    assert answered.status_code == 201, answered.text
    body = answered.json()
    assert (body["answered"], body["crisis"], body["questionnaires"]) == (True, False, [])
    assert body["booking_path"] == "/appointments/book?type=reassessment"
    changes = {c["questionnaire"]: c for c in body["score_changes"]}
    assert {k: (c["baseline"], c["latest"], c["latest_band"], c["response"], c["remission"]) for k, c in changes.items()} == {
        "phq9": (18, 4, "minimal", True, True),
        "gad7": (12, 7, "mild", False, False),
    }
    assert "response to treatment" in changes["phq9"]["in_words"] and "remission" in changes["phq9"]["in_words"]
    assert "drop of 42%" in changes["gad7"]["in_words"]

    stored = await rows(session_factory, QuestionnaireResponse, QuestionnaireResponse.intake_id.is_(None))
    assert sorted((r.questionnaire, r.version, r.score, r.band, r.patient_id) for r in stored) == [
        ("gad7", "gad7-v1", 7, "mild", patient.patient_id),
        ("phq9", "phq9-v1", 4, "minimal", patient.patient_id),
    ]
    page = await client.get("/reassessment")
    assert "When you started: <strong>18</strong> (moderately severe). Now: <strong>4</strong> (minimal)" in page.text
    assert "response to treatment" in page.text and 'href="/appointments/book?type=reassessment"' in page.text
    assert "See my scores" in (await client.get("/patient")).text


async def test_incomplete_or_out_of_range_answers_are_refused_naming_the_field(client, session_factory, settings, clock):
    patient = await patient_with_baseline(client, session_factory, settings, clock)
    await completed_plan(session_factory, settings, clock, patient)
    phq9 = dict(NOW["phq9"])
    del phq9["phq9_9"]
    refused = await answer(client, {"phq9": phq9, "gad7": NOW["gad7"] | {"gad7_3": 4}})
    assert (refused.status_code, refused.json()["code"]) == (422, "reassessment.invalid")
    assert refused.json()["fields"] == {"phq9_9": "Please choose an answer.", "gad7_3": "Please choose one of the answers shown."}
    only_one = await answer(client, {"phq9": NOW["phq9"]})
    assert only_one.status_code == 422 and set(only_one.json()["fields"]) == {f"gad7_{i}" for i in range(1, 8)}
    page = await client.get("/reassessment")
    form = {k: str(v) for k, v in (phq9 | NOW["gad7"]).items()} | {"_csrf_token": form_csrf_token(page.text)}
    shown = await client.post("/reassessment", data=form)
    assert shown.status_code == 422 and "PHQ-9, question 9</strong>: Please choose an answer." in shown.text
    assert 'name="gad7_1" value="1" checked' in shown.text  # the answers given are kept
    assert len(await rows(session_factory, QuestionnaireResponse, QuestionnaireResponse.intake_id.is_(None))) == 0
    assert (await answer(client)).status_code == 201  # a refusal does not use up the reassessment


async def test_a_crisis_answer_takes_the_intakes_crisis_path(client, session_factory, settings, clock, smtp):
    await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    patient = await patient_with_baseline(client, session_factory, settings, clock)
    await completed_plan(session_factory, settings, clock, patient)
    page = await client.get("/reassessment")
    answers = NOW["phq9"] | {"phq9_9": 3} | NOW["gad7"]
    shown = await client.post("/reassessment", data={k: str(v) for k, v in answers.items()} | {"_csrf_token": form_csrf_token(page.text)})
    assert shown.status_code == 200 and 'role="alert"' in shown.text and "988" in shown.text and "911" in shown.text
    async with session_factory() as session:
        assert await has_open_crisis(session, patient_id=patient.patient_id)
    escalation = (await rows(session_factory, Escalation))[0]
    assert (escalation.kind, escalation.rule_ids) == ("crisis", "crisis.phq9_item9_nearly_every_day")
    await drain_jobs(worker_context(session_factory, settings, clock))
    alerted = {str(m["To"]) for m in smtp.messages}
    prescriber_email = (await rows(session_factory, UserAccount, UserAccount.role == "prescriber"))[0].email  # the plan's prescriber
    assert alerted == {"co@example.org", prescriber_email}
    body = (await client.get(URL)).json()
    assert (body["answered"], body["booking_path"]) == (True, None)  # self-booking waits for a clinician's contact
    result = await client.get("/reassessment")
    assert "Booking your reassessment opens once a clinician has spoken with you" in result.text
    assert "988" in result.text and "type=reassessment" not in result.text


async def test_the_json_crisis_answer_comes_back_with_crisis_resources(client, session_factory, settings, clock):
    patient = await patient_with_baseline(client, session_factory, settings, clock)
    await completed_plan(session_factory, settings, clock, patient)
    answered = await answer(client, {"phq9": NOW["phq9"] | {"phq9_9": 3}, "gad7": NOW["gad7"]})
    assert answered.status_code == 201 and answered.json()["crisis"] is True
    assert any("988" in line for line in answered.json()["crisis_resources"])
    assert len(await rows(session_factory, Escalation)) == 1


async def test_a_reassessment_is_answered_once_per_plan_checkpoint(client, session_factory, settings, clock):
    patient = await patient_with_baseline(client, session_factory, settings, clock)
    await completed_plan(session_factory, settings, clock, patient)
    assert (await answer(client)).status_code == 201
    clock.advance(timedelta(minutes=5))
    again = await answer(client)
    assert (again.status_code, again.json()["code"]) == (409, "reassessment.already_answered")
    page = await client.get("/reassessment")
    assert "Your scores: then and now" in page.text and '<form method="post" action="/reassessment"' not in page.text
    # The next plan, once completed, is a new reassessment.
    async with transaction(session_factory) as session:
        await session.execute(update(TrochePlan).values(created_at=clock.now() - timedelta(days=10)))
    await completed_plan(session_factory, settings, clock, patient)
    assert (await answer(client)).status_code == 201
    assert len(await rows(session_factory, QuestionnaireResponse, QuestionnaireResponse.intake_id.is_(None))) == 4


async def test_two_answers_sent_at_once_store_one(client, session_factory, settings, clock):
    patient = await patient_with_baseline(client, session_factory, settings, clock)
    await completed_plan(session_factory, settings, clock, patient)
    await csrf_headers(client)
    browser = httpx.Cookies(client.cookies)
    answers = await at_once(client, [request_as(client, browser, "POST", URL, json=NOW) for _ in range(4)])
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409], [(a.status_code, a.text) for a in answers]
    assert len(await rows(session_factory, QuestionnaireResponse, QuestionnaireResponse.intake_id.is_(None))) == 2


async def test_only_the_signed_in_patient_answers_for_themselves(client, session_factory, settings, clock):
    patient = await patient_with_baseline(client, session_factory, settings, clock)
    await completed_plan(session_factory, settings, clock, patient)
    other = await patient_with_baseline(client, session_factory, settings, clock, email="other@example.org")  # signed in now
    naming = await answer(client, NOW | {"patient_id": str(patient.patient_id)})
    assert naming.status_code == 422 and "patient_id" in naming.text, naming.text  # no patient is named in a request: refused
    refused = await answer(client)  # the other patient has no plan: their own record is the only one in play
    assert (refused.status_code, refused.json()["code"]) == (422, "reassessment.not_due")
    prescriber = await make_person(session_factory, role=Role.PRESCRIBER, email="rx2@example.org", now=clock.now(), settings=settings)
    client.cookies.clear()
    await sign_in(client, prescriber, clock)
    assert (await answer(client)).status_code == 403
    assert (await client.get("/reassessment")).status_code in (302, 303, 403)
    assert await rows(session_factory, QuestionnaireResponse, QuestionnaireResponse.intake_id.is_(None)) == []
    assert other.patient_id != patient.patient_id


async def test_the_prescriber_sees_baseline_vs_now_on_the_reassessment_encounter(client, session_factory, settings, clock):
    prescriber = await prescriber_with_hours(session_factory, settings, clock, email="rxh@example.org")
    patient = await patient_with_baseline(client, session_factory, settings, clock)
    await completed_plan(session_factory, settings, clock, patient)
    assert (await answer(client)).status_code == 201
    body = {"type": "reassessment", "clinician_id": str(prescriber.user_id), "starts_at": "2026-11-24T15:00:00Z"}
    booked = await client.post("/api/v1/appointments", json=body, headers=await csrf_headers(client))
    assert booked.status_code == 201, booked.text
    await visit_took_place(session_factory, booked.json()["id"], started_at=datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    clock.set(datetime(2026, 11, 24, 15, 5, tzinfo=UTC))
    client.cookies.clear()
    await sign_in(client, prescriber, clock)
    opened = await client.post(f"/api/v1/appointments/{booked.json()['id']}/encounter", headers=await csrf_headers(client))
    assert opened.status_code == 200, opened.text
    chart = (await client.get(f"/api/v1/encounters/{opened.json()['id']}")).json()["chart"]
    assert {
        c["questionnaire"]: (c["baseline"], c["latest"], c["change_percent"], c["response"], c["remission"]) for c in chart["score_changes"]
    } == {
        "phq9": (18, 4, -78, True, True),
        "gad7": (12, 7, -42, False, False),
    }
    assert sorted((s["questionnaire"], s["score"]) for s in chart["scores"]) == [("gad7", 7), ("gad7", 12), ("phq9", 4), ("phq9", 18)]
