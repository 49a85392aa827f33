"""The intake as the patient reads it: the C-SSRS asks its follow-ups only when the instrument does, every
problem is named by its question (never a field key) beside the question, and what the waiting list already
knows is filled in."""

from __future__ import annotations

from datetime import date

from sqlalchemy import text

from tests.helpers import form_csrf_token
from tests.integration.intake.helpers import new_patient


async def post_form(client, path: str, answers: dict[str, str]):
    token = form_csrf_token((await client.get(path)).text)
    return await client.post(path, data=answers | {"_csrf_token": token})


async def test_no_to_question_six_needs_no_follow_up(client, session_factory, settings, clock):
    await new_patient(client, session_factory, settings, clock)
    answered = await post_form(client, "/intake/cssrs", {"cssrs_1": "0", "cssrs_2": "0", "cssrs_6": "0"})
    assert answered.status_code in (200, 303) and "need another look" not in answered.text, answered.text[:400]


async def test_a_missing_answer_is_named_by_its_question_beside_it(client, session_factory, settings, clock):
    await new_patient(client, session_factory, settings, clock)
    refused = await post_form(client, "/intake/cssrs", {"cssrs_1": "0", "cssrs_2": "1", "cssrs_3": "0", "cssrs_5": "0", "cssrs_6": "1"})
    assert refused.status_code == 422
    assert '<a href="#cssrs_4">Question 4</a>: Please choose an answer.' in refused.text
    assert '<a href="#cssrs_6_recent">Question 7</a>' in refused.text
    assert 'id="error-cssrs_4">Please choose an answer.</p>' in refused.text  # by the question, not only at the top
    assert "Cssrs" not in refused.text and "cssrs_4:" not in refused.text


async def test_a_section_problem_reads_as_its_label(client, session_factory, settings, clock):
    await new_patient(client, session_factory, settings, clock)
    refused = await post_form(
        client, "/intake/vitals", {"bp_systolic": "abc", "bp_diastolic": "80", "pulse": "70", "height_inches": "68", "weight_pounds": "160"}
    )
    assert refused.status_code == 422
    top = refused.text.split('id="form-error"')[1].split("</div>")[0]
    assert '<a href="#bp_systolic">' in top and "Bp systolic" not in refused.text and "bp_systolic:" not in top
    assert 'id="error-bp_systolic">Must be a whole number.</p>' in refused.text


async def test_demographics_start_from_what_the_waiting_list_knows(client, session_factory, settings, clock):
    patient = await new_patient(client, session_factory, settings, clock)
    async with session_factory() as session:
        await session.execute(
            text(
                "INSERT INTO waitlist_entry (id, status, state, first_name, last_name, email, date_of_birth, phone, "
                "consent_to_contact, joined_at, patient_id)"
                " VALUES (gen_random_uuid(), 'enrolled', 'NY', 'Robin', 'Fresh', 'pat@example.org', :dob, '+12125550123', "
                "true, now(), :patient)"
            ),
            {"dob": date(1990, 4, 2), "patient": patient.patient_id},
        )
        await session.commit()
    page = (await client.get("/intake/demographics")).text
    for value in ('value="Robin"', 'value="Fresh"', 'value="1990-04-02"', 'value="+12125550123"'):
        assert value in page
