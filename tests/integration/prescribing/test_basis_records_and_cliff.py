"""Recording an in-person evaluation (dates on the patient's calendar: not in the future, not before their
account existed; 422 naming the field), and seeing the cliff coming: from 45 days before the date the homes
count the active patients whose next plan after it has no basis, and a coordinator page and CSV list them
by state with what each lacks (and nothing of anyone's health)."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import replace
from datetime import date

from litestar.testing import AsyncTestClient
from sqlalchemy import select, text

from telehealth.accounts.roles import Role
from telehealth.audit.models import AuditEvent
from telehealth.db.engine import transaction
from telehealth.prescribing.models import InPersonEvaluation
from tests.helpers import csrf_headers, form_csrf_token, make_person, sign_in
from tests.integration.prescribing.helpers import consult_with_encounter, refusal, switch_to
from tests.integration.scheduling.helpers import screened_patient

HTML = {"accept": "text/html"}


async def record(client, patient_id, body: dict):
    return await client.post(f"/api/v1/patients/{patient_id}/in-person-evaluations", json=body, headers=await csrf_headers(client))


async def test_an_evaluation_dated_in_the_future_or_before_the_account_is_refused_naming_the_field(
    client, session_factory, settings, clock
):
    patient = await screened_patient(session_factory, settings, clock)  # account created 23 Nov 2026, 10:00 in New York
    rx = await make_person(session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=settings)
    other = await make_person(session_factory, role=Role.PRESCRIBER, email="rx2@example.org", now=clock.now(), settings=settings)
    therapist = await make_person(session_factory, role=Role.THERAPIST, email="tx@example.org", now=clock.now(), settings=settings)
    co = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    await sign_in(client, rx, clock)
    place = {"place": "100 Main St, Burlington VT"}

    future = await record(client, patient.patient_id, {"evaluated_on": "2026-11-24", **place})
    assert refusal(future) == (422, "request.invalid", ["evaluated_on"]) and future.json()["fields"]["evaluated_on"] == "is in the future"
    before = await record(client, patient.patient_id, {"evaluated_on": "2026-11-22", **place})
    assert refusal(before) == (422, "request.invalid", ["evaluated_on"])
    assert before.json()["fields"]["evaluated_on"] == "is before the patient's account was created (2026-11-23)"
    assert refusal(await record(client, patient.patient_id, {"evaluated_on": "2026-11-23", "place": "  "})) == (
        422,
        "request.invalid",
        ["place"],
    )
    not_mine = await record(client, patient.patient_id, {"evaluated_on": "2026-11-23", **place, "prescriber_id": str(other.user_id)})
    assert refusal(not_mine) == (422, "request.invalid", ["prescriber_id"])
    unknown = await record(client, uuid.uuid4(), {"evaluated_on": "2026-11-23", **place})
    assert refusal(unknown)[:2] == (404, "patient.not_found")

    await switch_to(client, co, clock)
    assert refusal(await record(client, patient.patient_id, {"evaluated_on": "2026-11-23", **place})) == (
        422,
        "request.invalid",
        ["prescriber_id"],
    )
    by_therapist = await record(
        client, patient.patient_id, {"evaluated_on": "2026-11-23", **place, "prescriber_id": str(therapist.user_id)}
    )
    assert refusal(by_therapist) == (422, "request.invalid", ["prescriber_id"])
    async with session_factory() as session:
        assert (await session.execute(select(InPersonEvaluation))).first() is None
        assert (await session.execute(select(AuditEvent).where(AuditEvent.action == "in_person_evaluation.record"))).first() is None

    today = await record(client, patient.patient_id, {"evaluated_on": "2026-11-23", **place, "prescriber_id": str(rx.user_id)})
    assert today.status_code == 201, today.text
    assert (today.json()["prescriber_name"], today.json()["recorded_by"]) == ("Rx", str(co.user_id))


async def test_the_evaluation_form_records_one_and_shows_the_reason_of_a_refusal(client, session_factory, settings, clock):
    patient = await screened_patient(session_factory, settings, clock)
    rx = await make_person(session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=settings)
    await sign_in(client, rx, clock)
    path = f"/patients/{patient.patient_id}/in-person-evaluations"
    page = await client.get(path, headers=HTML)
    assert page.status_code == 200 and "No in-person evaluation recorded." in page.text
    token = form_csrf_token(page.text)

    refused = await client.post(path, data={"evaluated_on": "2026-12-01", "place": "Clinic", "_csrf_token": token}, headers=HTML)
    assert refused.status_code == 422 and "<strong>Evaluated on</strong>: is in the future" in refused.text
    assert 'aria-invalid="true"' in refused.text and 'value="Clinic"' in refused.text
    not_a_date = await client.post(path, data={"evaluated_on": "soon", "place": "Clinic", "_csrf_token": token}, headers=HTML)
    assert not_a_date.status_code == 422 and "<strong>Evaluated on</strong>: must be a date" in not_a_date.text

    saved = await client.post(
        path, data={"evaluated_on": "2026-11-23", "place": "Evergreen clinic, Burlington", "_csrf_token": token}, headers=HTML
    )
    assert saved.status_code == 200 and "Evaluation recorded." in saved.text  # followed the redirect
    assert "23 Nov 2026" in saved.text and "Evergreen clinic, Burlington" in saved.text


def csv_rows(body: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body)))


async def test_the_cliff_is_counted_on_the_homes_and_listed_by_state_with_what_each_lacks(
    client, session_factory, settings, clock, stripe_fake
):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)  # Pat, NY, consult booked with Rx
    await screened_patient(session_factory, settings, clock, email="dana@example.org", state="NJ")  # screened, no consult yet
    await screened_patient(session_factory, settings, clock, email="ivan@example.org", state="NY", outcome="ineligible")  # not active
    co = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    await switch_to(client, co, clock)

    home = await client.get("/coordinator", headers=HTML)  # 24 Nov 2026: within 45 days of 31 Dec
    assert "2 active patients need a new plan or renewal after 31 Dec 2026" in home.text
    assert 'href="/coordinator/prescribing-basis"' in home.text

    page = await client.get("/coordinator/prescribing-basis", headers=HTML)
    assert page.status_code == 200
    assert page.text.index("New Jersey") < page.text.index("New York")  # by state
    assert "no prescriber yet: book one with a special registration in New Jersey" in page.text
    assert "no in-person evaluation by Rx" in page.text and "no special registration of Rx in New York" in page.text
    assert "consult booked" in page.text and "Ivan" not in page.text

    exported = await client.get("/coordinator/prescribing-basis.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    assert 'filename="without-prescribing-basis-after-2026-12-31.csv"' in exported.headers["content-disposition"]
    assert csv_rows(exported.text) == [
        ["patient", "state", "prescriber", "missing"],
        ["Dana", "NJ", "", "no prescriber yet: book one with a special registration in New Jersey, or arrange an in-person evaluation"],
        ["Pat", "NY", "Rx", "no in-person evaluation by Rx; no special registration of Rx in New York"],
    ]
    for health in ("eligible", "consult", "screen", "plan", "PHQ", "ketamine"):
        assert health not in exported.text, health
    async with session_factory() as session:
        exports = list((await session.execute(select(AuditEvent.reason).where(AuditEvent.action == "prescribing_basis.export"))).scalars())
    assert exports == ["2 patients"]

    # A special registration lapsing before the first day after the date is no basis; renewed, it is.
    registrations = f"/api/v1/clinicians/{consult.prescriber.user_id}/special-registrations"
    added = await client.post(
        registrations, json={"state": "NY", "number": "TSR-9", "expires_on": "2026-12-31"}, headers=await csrf_headers(client)
    )
    assert added.status_code == 201, added.text
    assert (
        "Rx's special registration in New York expires 2026-12-31, before 2027-01-01"
        in (await client.get("/coordinator/prescribing-basis.csv")).text
    )
    renewed = await client.put(
        f"{registrations}/{added.json()['id']}",
        json={"state": "NY", "number": "TSR-9", "expires_on": "2027-06-30"},
        headers=await csrf_headers(client),
    )
    assert renewed.status_code == 200
    assert [row[0] for row in csv_rows((await client.get("/coordinator/prescribing-basis.csv")).text)] == ["patient", "Dana"]
    assert "1 active patient needs a new plan or renewal" in (await client.get("/coordinator", headers=HTML)).text

    # Without the registration, an in-person evaluation by Rx covers Pat too; by someone else it does not.
    assert (await client.delete(f"{registrations}/{added.json()['id']}", headers=await csrf_headers(client))).status_code == 204
    await switch_to(client, consult.prescriber, clock)
    prescriber_home = await client.get("/prescriber", headers=HTML)
    assert "1 active patient needs a new plan or renewal after 31 Dec 2026" in prescriber_home.text
    assert f'href="/patients/{consult.patient.patient_id}/in-person-evaluations"' in prescriber_home.text
    assert (await record(client, consult.patient.patient_id, {"evaluated_on": "2026-11-23", "place": "Clinic"})).status_code == 201
    assert "Every active patient of yours has a basis" in (await client.get("/prescriber", headers=HTML)).text
    await switch_to(client, co, clock)
    assert [row[0] for row in csv_rows((await client.get("/coordinator/prescribing-basis.csv")).text)] == ["patient", "Dana"]


async def test_a_seen_patient_counts_with_the_prescriber_who_saw_them_and_disabled_accounts_do_not(
    client, session_factory, settings, clock, stripe_fake
):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    dana = await screened_patient(session_factory, settings, clock, email="dana@example.org", state="NJ")
    async with transaction(session_factory) as session:  # the consult is over; the encounter has no decision yet
        await session.execute(text("UPDATE appointment SET status = 'completed' WHERE id = :id"), {"id": uuid.UUID(consult.appointment_id)})
        await session.execute(text("UPDATE user_account SET is_active = false WHERE id = :id"), {"id": dana.user_id})
    co = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    await switch_to(client, co, clock)
    page = await client.get("/coordinator/prescribing-basis", headers=HTML)
    assert "seen, plan not signed yet" in page.text and "Dana" not in page.text
    assert csv_rows((await client.get("/coordinator/prescribing-basis.csv")).text)[1:] == [
        ["Pat", "NY", "Rx", "no in-person evaluation by Rx; no special registration of Rx in New York"]
    ]


async def test_the_homes_are_quiet_until_45_days_before_the_date(client, session_factory, settings, clock, stripe_fake):
    from telehealth.asgi import create_app

    await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    co = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    await switch_to(client, co, clock)
    assert 'id="basis-cliff"' in (await client.get("/coordinator", headers=HTML)).text
    # Extended to 1 Mar 2027: 24 Nov 2026 is 97 days before, so the homes say nothing yet.
    later = create_app(replace(settings, telemedicine_flexibilities_until=date(2027, 3, 1)), clock=clock)
    async with AsyncTestClient(app=later, base_url="http://testserver.local") as other:
        other.cookies = client.cookies
        home = await other.get("/coordinator", headers=HTML)
        assert home.status_code == 200 and 'id="basis-cliff"' not in home.text
