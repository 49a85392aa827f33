"""Expiring credentials: one generic email per credential and expiry, the coordinator's home, the
credentials page, and renewals that reach appointment slots at once (one source of truth)."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, timedelta

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import update

from telehealth.accounts.models import UserAccount
from telehealth.accounts.roles import Role
from telehealth.clinicians.models import DeaRegistration, StateLicense
from telehealth.db.engine import transaction
from telehealth.outbox.schedule import enqueue_due_periodic_jobs
from tests.helpers import drain_jobs, form_csrf_token, sign_in, worker_context
from tests.integration.clinicians.helpers import DEA, LICENSE, clinician, post, put, signed_in_coordinator
from tests.integration.scheduling.helpers import prescriber_with_hours, screened_patient


async def _credentials(session_factory, person, *, license_expires=None, dea_expires=None, license_type="MD", state="NY"):
    """Rows as they might stand after time passed (the API refuses expiries in the past, time does not)."""
    async with transaction(session_factory) as session:
        if license_expires:
            session.add(
                StateLicense(clinician_id=person.user_id, state=state, number="L-1", license_type=license_type, expires_on=license_expires)
            )
        if dea_expires:
            session.add(
                DeaRegistration(
                    clinician_id=person.user_id, state=state, number="BX1234563", schedules="II,III,IV,V", expires_on=dea_expires
                )
            )


async def _daily_run(context) -> None:
    await enqueue_due_periodic_jobs(context)
    await drain_jobs(context)
    await drain_jobs(context)  # a second pass finds nothing more to send


def _reminders(smtp) -> Counter:
    return Counter(str(m["To"]) for m in smtp.messages if m["Subject"] == "A credential on file with Evergreen Home Program expires soon")


async def test_each_expiring_credential_is_emailed_once_per_expiry(client, session_factory, settings, clock, smtp):
    rx = await clinician(session_factory, settings, clock)
    therapist = await clinician(session_factory, settings, clock, role=Role.THERAPIST, email="t@example.org")
    gone = await clinician(session_factory, settings, clock, email="left@example.org")
    await _credentials(session_factory, rx, license_expires=date(2026, 12, 10), dea_expires=date(2027, 6, 30))  # license in 17 days
    await _credentials(session_factory, therapist, license_expires=date(2026, 12, 24), license_type="LCSW")  # 31 days: not yet
    await _credentials(session_factory, gone, license_expires=date(2026, 12, 1))
    async with transaction(session_factory) as session:
        await session.execute(update(UserAccount).where(UserAccount.id == gone.user_id).values(is_active=False))
    context = worker_context(session_factory, settings, clock)

    await _daily_run(context)
    await _daily_run(context)  # not due again the same day
    assert _reminders(smtp) == {"rx@example.org": 1}
    clock.advance(timedelta(days=1))
    await _daily_run(context)  # the therapist's license is now 30 days out; the prescriber's was already told
    assert _reminders(smtp) == {"rx@example.org": 1, "t@example.org": 1}

    message = next(m for m in smtp.messages if str(m["To"]) == "rx@example.org")
    text = smtp.text_of(message)
    assert "Hello Rx," in text and "send the renewal to the coordinator" in text and "http://testserver.local/" in text
    for detail in ("NY", "New York", "L-1", "2026", "December", "DEA", "license", "MD"):
        assert detail not in text and detail not in message["Subject"], detail

    await signed_in_coordinator(client, session_factory, settings, clock)
    listed = (await client.get(f"/api/v1/clinicians/{rx.user_id}")).json()
    renewed = await put(
        client,
        f"/api/v1/clinicians/{rx.user_id}/licenses/{listed['licenses'][0]['id']}",
        LICENSE | {"number": "L-1", "expires_on": "2026-12-20"},
    )
    assert renewed.status_code == 200
    clock.advance(timedelta(days=1))
    await _daily_run(context)  # a new expiry is a new reminder, once
    clock.advance(timedelta(days=1))
    await _daily_run(context)
    assert _reminders(smtp) == {"rx@example.org": 2, "t@example.org": 1}


async def test_the_coordinator_home_lists_lapsed_and_soon_expiring_credentials(client, session_factory, settings, clock):
    rx = await clinician(session_factory, settings, clock, email="casey@example.org")
    therapist = await clinician(session_factory, settings, clock, role=Role.THERAPIST, email="jordan@example.org")
    far = await clinician(session_factory, settings, clock, email="morgan@example.org")
    await _credentials(session_factory, rx, license_expires=date(2026, 12, 23), dea_expires=date(2026, 11, 20))  # 30 days; lapsed
    await _credentials(session_factory, therapist, license_expires=date(2026, 12, 1), license_type="LCSW", state="VT")
    await _credentials(session_factory, far, license_expires=date(2026, 12, 24), dea_expires=date(2028, 1, 1))  # 31 days: not listed
    await signed_in_coordinator(client, session_factory, settings, clock)
    page = await client.get("/coordinator", headers={"accept": "text/html"})
    assert page.status_code == 200
    section = page.text.split('id="expiring"')[1]
    block = " ".join(re.sub(r"<[^>]+>", "", section).split())  # the words a reader sees
    assert "Casey: DEA registration in New York, expired 20 Nov 2026" in block
    assert "Jordan: LCSW license in Vermont, expires 01 Dec 2026" in block
    assert "Casey: MD license in New York, expires 23 Dec 2026" in block
    assert block.index("20 Nov") < block.index("01 Dec") < block.index("23 Dec")  # soonest first
    assert "Morgan" not in block
    assert f'href="/coordinator/clinicians#clinician-{rx.user_id}"' in section


async def test_the_coordinator_home_says_when_nothing_expires(client, session_factory, settings, clock):
    await signed_in_coordinator(client, session_factory, settings, clock)
    page = await client.get("/coordinator", headers={"accept": "text/html"})
    assert "No license or DEA registration lapses within 30 days." in page.text
    assert 'href="/coordinator/clinicians"' in page.text


async def test_the_credentials_page_adds_renews_and_removes(client, session_factory, settings, clock):
    rx = await clinician(session_factory, settings, clock)
    await signed_in_coordinator(client, session_factory, settings, clock)
    html = {"accept": "text/html"}
    page = await client.get("/coordinator/clinicians", headers=html)
    assert page.status_code == 200 and "Rx" in page.text and "No licenses on file." in page.text
    token = form_csrf_token(page.text)
    base = f"/coordinator/clinicians/{rx.user_id}"

    added = await client.post(
        f"{base}/licenses", data=LICENSE | {"expires_on": "2026-12-01", "_csrf_token": token}, headers=html, follow_redirects=False
    )
    assert added.status_code in (302, 303) and added.headers["location"].endswith(f"#clinician-{rx.user_id}")
    page = await client.get(added.headers["location"], headers=html)
    assert "License added." in page.text and "01 Dec 2026" in page.text and "expires soon" in page.text
    license_id = (await client.get(f"/api/v1/clinicians/{rx.user_id}")).json()["licenses"][0]["id"]

    bad = await client.post(f"{base}/licenses", data=LICENSE | {"state": "XX", "_csrf_token": token}, headers=html)
    assert bad.status_code == 422 and "State</a>: is not a US state or DC code" in bad.text
    not_a_date = await client.post(
        f"{base}/licenses/{license_id}", data=LICENSE | {"expires_on": "soon", "_csrf_token": token}, headers=html
    )
    assert not_a_date.status_code == 422 and "Expires on</a>: must be a date" in not_a_date.text

    renewed = await client.post(
        f"{base}/licenses/{license_id}", data=LICENSE | {"expires_on": "2028-12-01", "_csrf_token": token}, headers=html
    )
    assert "License saved." in renewed.text and "01 Dec 2028" in renewed.text  # followed the redirect

    dea = {"state": "NY", "number": "BX1234563", "schedules": ["II", "IV"], "expires_on": "2027-06-30", "_csrf_token": token}
    flagged = await client.post(f"{base}/dea-registrations", data=dea, headers=html)
    assert (
        "DEA registration added." in flagged.text
        and "Without Schedule III this registration cannot prescribe ketamine in NY." in flagged.text
    )
    registration_id = (await client.get(f"/api/v1/clinicians/{rx.user_id}")).json()["dea_registrations"][0]["id"]
    fixed = await client.post(
        f"{base}/dea-registrations/{registration_id}", data=dea | {"schedules": ["II", "III", "IV", "V"]}, headers=html
    )
    assert "DEA registration saved." in fixed.text and "cannot prescribe ketamine in NY" not in fixed.text

    profile = await client.post(
        f"{base}/profile", data={"npi": "1234567893", "timezone": "America/Chicago", "_csrf_token": token}, headers=html
    )
    assert "Profile saved." in profile.text and 'value="1234567893"' in profile.text

    removed = await client.post(f"{base}/licenses/{license_id}/remove", data={"_csrf_token": token}, headers=html)
    assert "License removed." in removed.text and "No licenses on file." in removed.text
    removed = await client.post(f"{base}/dea-registrations/{registration_id}/remove", data={"_csrf_token": token}, headers=html)
    assert "DEA registration removed." in removed.text and "No DEA registrations on file." in removed.text


@pytest.fixture
async def patient_client(settings, clock):
    """A second browser, for the patient, beside the coordinator's."""
    from telehealth.asgi import create_app

    async with AsyncTestClient(app=create_app(settings, clock=clock), base_url="http://testserver.local") as second:
        yield second


async def _slot_days(patient_client) -> list[str]:
    query = {"type": "consult", "from": "2026-11-24T00:00:00Z", "to": "2026-11-29T00:00:00Z"}
    response = await patient_client.get("/api/v1/slots", params=query)
    assert response.status_code == 200, response.text
    return sorted({slot["starts_at"][:10] for slot in response.json()})


async def test_renewing_a_license_through_the_api_opens_slots_after_the_old_expiry(
    client, patient_client, session_factory, settings, clock
):
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    patient = await screened_patient(session_factory, settings, clock)
    await sign_in(patient_client, patient, clock)
    await signed_in_coordinator(client, session_factory, settings, clock)
    license = (await client.get(f"/api/v1/clinicians/{prescriber.user_id}")).json()["licenses"][0]
    path = f"/api/v1/clinicians/{prescriber.user_id}/licenses/{license['id']}"
    body = {"state": "NY", "number": license["number"], "license_type": "MD"}

    assert (await put(client, path, body | {"expires_on": "2026-11-25"})).status_code == 200
    assert await _slot_days(patient_client) == ["2026-11-24", "2026-11-25"]  # good through its expiry date, not after
    assert (await put(client, path, body | {"expires_on": "2027-11-25"})).status_code == 200
    assert await _slot_days(patient_client) == ["2026-11-24", "2026-11-25", "2026-11-26", "2026-11-27", "2026-11-28"]


async def test_removing_the_dea_registration_closes_consult_slots(client, patient_client, session_factory, settings, clock):
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    patient = await screened_patient(session_factory, settings, clock)
    await sign_in(patient_client, patient, clock)
    await signed_in_coordinator(client, session_factory, settings, clock)
    assert await _slot_days(patient_client)
    registration = (await client.get(f"/api/v1/clinicians/{prescriber.user_id}")).json()["dea_registrations"][0]
    path = f"/api/v1/clinicians/{prescriber.user_id}/dea-registrations/{registration['id']}"
    flagged = await put(client, path, DEA | {"schedules": ["II", "IV", "V"]})
    assert flagged.json()["warnings"][0]["code"] == "dea.no_schedule_iii"
    assert await _slot_days(patient_client) == []  # no Schedule III, no consults
    await put(client, path, DEA)
    assert await _slot_days(patient_client)
    assert (await client.delete(path, headers={"x-csrftoken": client.cookies["csrftoken"]})).status_code == 204
    assert await _slot_days(patient_client) == []
    assert (await post(client, f"/api/v1/clinicians/{prescriber.user_id}/dea-registrations", DEA)).status_code == 201
    assert await _slot_days(patient_client)


async def test_credentials_expiring_together_are_one_email(client, session_factory, settings, clock, smtp):
    """The demo's prescriber has a state's license and DEA registration expiring on one day: one email at first
    start saying two credentials, not two identical ones; a renewal later re-arms only the renewed one."""
    rx = await clinician(session_factory, settings, clock)
    await _credentials(session_factory, rx, license_expires=date(2026, 12, 10), dea_expires=date(2026, 12, 10))
    context = worker_context(session_factory, settings, clock)

    await _daily_run(context)
    await _daily_run(context)
    together = [m for m in smtp.messages if str(m["To"]) == "rx@example.org"]
    assert [m["Subject"] for m in together] == ["2 credentials on file with Evergreen Home Program expire soon"]
    assert "send the renewals to the coordinator" in smtp.text_of(together[0])

    async with transaction(session_factory) as session:
        await session.execute(update(StateLicense).where(StateLicense.clinician_id == rx.user_id).values(expires_on=date(2026, 12, 20)))
    clock.advance(timedelta(days=1))
    await _daily_run(context)
    assert _reminders(smtp) == {"rx@example.org": 1}  # the renewed license alone: "A credential ... expires soon"
