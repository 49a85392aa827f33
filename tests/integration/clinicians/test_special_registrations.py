"""Telemedicine special registrations: a credential kind coordinators keep like licenses (API and page), one
per prescriber and state, refusals naming the field, every change audited on the clinician."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from telehealth.accounts.roles import Role
from telehealth.audit.models import AuditEvent
from tests.helpers import form_csrf_token
from tests.integration.clinicians.helpers import clinician, post, put, remove, signed_in_coordinator

SPECIAL = {"state": "NY", "number": "TSR-0042", "expires_on": "2027-12-31"}


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (SPECIAL | {"state": "XX"}, "state", "is not a US state or DC code"),
        (SPECIAL | {"number": "   "}, "number", "is required"),
        (SPECIAL | {"number": "TSR\x00"}, "number", "contains control characters"),
        (SPECIAL | {"expires_on": "2026-11-01"}, "expires_on", "is more than a day in the past"),
    ],
)
async def test_bad_details_are_refused_naming_the_field(client, session_factory, settings, clock, body, field, reason):
    await signed_in_coordinator(client, session_factory, settings, clock)
    rx = await clinician(session_factory, settings, clock)
    refused = await post(client, f"/api/v1/clinicians/{rx.user_id}/special-registrations", body)
    assert (refused.status_code, refused.json()["code"], refused.json()["fields"]) == (422, "clinician.invalid", {field: reason})
    assert (await client.get(f"/api/v1/clinicians/{rx.user_id}")).json()["special_registrations"] == []


async def test_one_per_state_prescribers_only_and_every_change_audited(client, session_factory, settings, clock):
    await signed_in_coordinator(client, session_factory, settings, clock)
    rx = await clinician(session_factory, settings, clock)
    therapist = await clinician(session_factory, settings, clock, role=Role.THERAPIST, email="tx@example.org")
    base = f"/api/v1/clinicians/{rx.user_id}/special-registrations"

    added = await post(client, base, SPECIAL)
    assert added.status_code == 201, added.text
    assert {k: added.json()[k] for k in ("state", "state_name", "number", "expires_on", "expiry_status")} == {
        "state": "NY",
        "state_name": "New York",
        "number": "TSR-0042",
        "expires_on": "2027-12-31",
        "expiry_status": "valid",
    }
    again = await post(client, base, SPECIAL | {"number": "TSR-2"})
    assert (again.status_code, again.json()["code"]) == (409, "clinician.special_registration_exists")
    nj = await post(client, base, SPECIAL | {"state": "NJ"})
    collides = await put(client, f"{base}/{nj.json()['id']}", SPECIAL)  # renamed onto New York's
    assert (collides.status_code, collides.json()["code"]) == (409, "clinician.special_registration_exists")
    not_a_prescriber = await post(client, f"/api/v1/clinicians/{therapist.user_id}/special-registrations", SPECIAL)
    assert (not_a_prescriber.status_code, not_a_prescriber.json()["code"]) == (422, "clinician.not_a_prescriber")

    renewed = await put(client, f"{base}/{added.json()['id']}", SPECIAL | {"expires_on": "2028-12-31"})
    assert renewed.json()["expires_on"] == "2028-12-31"
    assert [r["state"] for r in (await client.get(f"/api/v1/clinicians/{rx.user_id}")).json()["special_registrations"]] == ["NJ", "NY"]
    assert (await remove(client, f"{base}/{added.json()['id']}")).status_code == 204
    assert (await remove(client, f"{base}/{added.json()['id']}")).status_code == 404
    async with session_factory() as session:
        events = (
            await session.execute(
                select(AuditEvent.action, AuditEvent.reason)
                .where(AuditEvent.resource_id == str(rx.user_id), AuditEvent.action.like("clinician.%"))
                .order_by(AuditEvent.id)
            )
        ).all()
    assert events == [
        ("clinician.special_registration.add", "NY 2027-12-31"),
        ("clinician.special_registration.add", "NJ 2027-12-31"),
        ("clinician.special_registration.update", "NY 2028-12-31 changed=expires_on"),
        ("clinician.special_registration.remove", "NY 2028-12-31"),
    ]


async def test_the_credentials_page_adds_renews_and_removes_a_special_registration(client, session_factory, settings, clock):
    rx = await clinician(session_factory, settings, clock)
    await signed_in_coordinator(client, session_factory, settings, clock)
    html = {"accept": "text/html"}
    page = await client.get("/coordinator/clinicians", headers=html)
    assert "No special registrations on file." in page.text
    token = form_csrf_token(page.text)
    base = f"/coordinator/clinicians/{rx.user_id}/special-registrations"

    bad = await client.post(base, data=SPECIAL | {"number": "", "_csrf_token": token}, headers=html)
    assert bad.status_code == 422 and "Number</a>: is required" in bad.text
    added = await client.post(base, data=SPECIAL | {"_csrf_token": token}, headers=html)
    assert "Special registration added." in added.text and "TSR-0042" in added.text and "31 Dec 2027" in added.text
    registration_id = (await client.get(f"/api/v1/clinicians/{rx.user_id}")).json()["special_registrations"][0]["id"]
    renewed = await client.post(
        f"{base}/{registration_id}", data=SPECIAL | {"expires_on": "2029-01-31", "_csrf_token": token}, headers=html
    )
    assert "Special registration saved." in renewed.text and "31 Jan 2029" in renewed.text
    removed = await client.post(f"{base}/{registration_id}/remove", data={"_csrf_token": token}, headers=html)
    assert "Special registration removed." in removed.text and "No special registrations on file." in removed.text


async def test_a_special_registration_running_out_is_listed_and_reminded_like_the_others(client, session_factory, settings, clock):
    from telehealth.clinicians.expiry import remind_expiring_credentials
    from telehealth.db.engine import transaction

    await signed_in_coordinator(client, session_factory, settings, clock)
    rx = await clinician(session_factory, settings, clock)
    added = await post(client, f"/api/v1/clinicians/{rx.user_id}/special-registrations", SPECIAL | {"expires_on": "2026-12-10"})
    assert added.json()["expiry_status"] == "expiring"
    home = await client.get("/coordinator", headers={"accept": "text/html"})
    assert "telemedicine special registration in New York, expires 10 Dec 2026" in home.text
    async with transaction(session_factory) as session:
        assert await remind_expiring_credentials(session, now=clock.now(), settings=settings) == 1
    async with transaction(session_factory) as session:
        assert await remind_expiring_credentials(session, now=clock.now(), settings=settings) == 0  # once per expiry
