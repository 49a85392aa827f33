"""Coordinators keep clinicians' credentials through the JSON API: refusals that name the field, one
license per state and type, the Schedule III flag, every change audited, and nobody else gets in."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from telehealth.accounts.roles import Role
from telehealth.audit.models import AuditEvent
from telehealth.clinicians.service import served_states
from tests.helpers import csrf_headers, sign_in
from tests.integration.clinicians.helpers import DEA, LICENSE, TODAY, clinician, post, put, remove, signed_in_coordinator

REFUSALS = [
    ("licenses", LICENSE | {"state": "XX"}, "state", "is not a US state or DC code"),
    ("licenses", LICENSE | {"state": "PR"}, "state", "is not a US state or DC code"),
    ("licenses", LICENSE | {"expires_on": "2026-11-21"}, "expires_on", "is more than a day in the past"),
    ("licenses", LICENSE | {"license_type": "LCSW"}, "license_type", "must be one of MD, DO, NP, APRN, PA for a prescriber"),
    ("licenses", LICENSE | {"number": "   "}, "number", "is required"),
    ("dea-registrations", DEA | {"number": "BX1234564"}, "number", "fails the DEA check digit"),
    ("dea-registrations", DEA | {"number": "B12345634"}, "number", "must be 2 letters and 7 digits"),
    ("dea-registrations", DEA | {"schedules": ["III", "VI"]}, "schedules", "must be of II, IIN, III, IIIN, IV, V (not VI)"),
    ("dea-registrations", DEA | {"schedules": []}, "schedules", "must name at least one schedule"),
    ("dea-registrations", DEA | {"state": "ZZ"}, "state", "is not a US state or DC code"),
    ("dea-registrations", DEA | {"expires_on": "2026-01-31"}, "expires_on", "is more than a day in the past"),
]


@pytest.mark.parametrize(("kind", "body", "field", "reason"), REFUSALS)
async def test_bad_credentials_are_refused_naming_the_field_and_nothing_is_kept(
    client, session_factory, settings, clock, kind, body, field, reason
):
    await signed_in_coordinator(client, session_factory, settings, clock)
    rx = await clinician(session_factory, settings, clock)
    refused = await post(client, f"/api/v1/clinicians/{rx.user_id}/{kind}", body)
    assert refused.status_code == 422, refused.text
    assert (refused.json()["code"], refused.json()["fields"]) == ("clinician.invalid", {field: reason})
    listed = (await client.get(f"/api/v1/clinicians/{rx.user_id}")).json()
    assert listed["licenses"] == listed["dea_registrations"] == []
    async with session_factory() as session:
        assert not (await session.execute(select(AuditEvent).where(AuditEvent.action.like("clinician.%")))).first()


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"npi": "1234567890", "timezone": "America/New_York"}, "npi", "fails the NPI check digit"),
        ({"npi": "12345", "timezone": "America/New_York"}, "npi", "must be 10 digits"),
        ({"npi": "12345678ab", "timezone": "America/New_York"}, "npi", "must be 10 digits"),
        ({"npi": None, "timezone": "Mars/Olympus_Mons"}, "timezone", "is not an IANA time zone (e.g. America/Chicago)"),
    ],
)
async def test_a_bad_npi_or_zone_is_refused_naming_the_field(client, session_factory, settings, clock, body, field, reason):
    await signed_in_coordinator(client, session_factory, settings, clock)
    rx = await clinician(session_factory, settings, clock)
    refused = await put(client, f"/api/v1/clinicians/{rx.user_id}/profile", body)
    assert refused.status_code == 422 and refused.json()["fields"] == {field: reason}


async def test_the_profile_keeps_a_checked_npi_and_the_zone(client, session_factory, settings, clock):
    await signed_in_coordinator(client, session_factory, settings, clock)
    rx = await clinician(session_factory, settings, clock)
    assert (await client.get(f"/api/v1/clinicians/{rx.user_id}/profile")).json() == {
        "clinician_id": str(rx.user_id),
        "npi": None,
        "timezone": None,
    }
    saved = await put(client, f"/api/v1/clinicians/{rx.user_id}/profile", {"npi": " 1234567893 ", "timezone": "America/Chicago"})
    assert saved.status_code == 200 and (saved.json()["npi"], saved.json()["timezone"]) == ("1234567893", "America/Chicago")
    cleared = await put(client, f"/api/v1/clinicians/{rx.user_id}/profile", {"npi": None, "timezone": "America/Chicago"})
    assert cleared.json()["npi"] is None
    assert (await client.get(f"/api/v1/clinicians/{rx.user_id}/profile")).json()["timezone"] == "America/Chicago"


async def test_an_expiry_up_to_a_day_back_is_accepted_and_input_is_normalised(client, session_factory, settings, clock):
    await signed_in_coordinator(client, session_factory, settings, clock)
    rx = await clinician(session_factory, settings, clock)
    added = await post(
        client, f"/api/v1/clinicians/{rx.user_id}/licenses", LICENSE | {"state": "ny", "license_type": "md", "expires_on": "2026-11-22"}
    )
    assert added.status_code == 201, added.text
    body = added.json()
    assert (body["state"], body["state_name"], body["license_type"], body["expiry_status"]) == ("NY", "New York", "MD", "expired")
    dea = await post(
        client, f"/api/v1/clinicians/{rx.user_id}/dea-registrations", DEA | {"number": "bx1234563", "schedules": ["v", "III", "II"]}
    )
    assert (dea.json()["number"], dea.json()["schedules"]) == ("BX1234563", ["II", "III", "V"])


async def test_a_dea_registration_without_schedule_iii_is_kept_but_flagged(client, session_factory, settings, clock):
    await signed_in_coordinator(client, session_factory, settings, clock)
    rx = await clinician(session_factory, settings, clock)
    await post(client, f"/api/v1/clinicians/{rx.user_id}/licenses", LICENSE)
    flagged = await post(client, f"/api/v1/clinicians/{rx.user_id}/dea-registrations", DEA | {"schedules": ["II", "IIIN", "IV"]})
    assert flagged.status_code == 201
    assert flagged.json()["covers_schedule_iii"] is False  # IIIN (non-narcotic) is not III
    (warning,) = flagged.json()["warnings"]
    assert warning["code"] == "dea.no_schedule_iii" and "cannot prescribe ketamine in NY" in warning["detail"]
    async with session_factory() as session:
        assert "NY" not in await served_states(session, on=TODAY)  # the same rows decide who is served
    fixed = await put(client, f"/api/v1/clinicians/{rx.user_id}/dea-registrations/{flagged.json()['id']}", DEA)
    assert (fixed.json()["covers_schedule_iii"], fixed.json()["warnings"]) == (True, [])
    async with session_factory() as session:
        assert "NY" in await served_states(session, on=TODAY)
    gone = await remove(
        client,
        f"/api/v1/clinicians/{rx.user_id}/licenses/{(await client.get(f'/api/v1/clinicians/{rx.user_id}')).json()['licenses'][0]['id']}",
    )
    assert gone.status_code == 204
    async with session_factory() as session:
        assert "NY" not in await served_states(session, on=TODAY)


async def test_therapists_carry_their_own_license_types_and_no_dea_registration(client, session_factory, settings, clock):
    await signed_in_coordinator(client, session_factory, settings, clock)
    therapist = await clinician(session_factory, settings, clock, role=Role.THERAPIST, email="t@example.org")
    ok = await post(client, f"/api/v1/clinicians/{therapist.user_id}/licenses", LICENSE | {"license_type": "lcsw"})
    assert ok.status_code == 201 and ok.json()["license_type"] == "LCSW"
    md = await post(client, f"/api/v1/clinicians/{therapist.user_id}/licenses", LICENSE | {"state": "NJ"})
    assert md.status_code == 422 and md.json()["fields"]["license_type"].startswith("must be one of LCSW")
    dea = await post(client, f"/api/v1/clinicians/{therapist.user_id}/dea-registrations", DEA)
    assert dea.status_code == 422 and dea.json()["code"] == "clinician.not_a_prescriber"


async def test_one_license_per_state_and_type_and_one_dea_registration_per_state(client, session_factory, settings, clock):
    await signed_in_coordinator(client, session_factory, settings, clock)
    rx = await clinician(session_factory, settings, clock)
    base = f"/api/v1/clinicians/{rx.user_id}"
    await post(client, f"{base}/licenses", LICENSE)
    again = await post(client, f"{base}/licenses", LICENSE | {"number": "other"})
    assert again.status_code == 409 and again.json()["code"] == "clinician.license_exists" and "state" in again.json()["fields"]
    nj = (await post(client, f"{base}/licenses", LICENSE | {"state": "NJ"})).json()
    into_ny = await put(client, f"{base}/licenses/{nj['id']}", LICENSE)  # the UPDATE loses to the unique constraint
    assert into_ny.status_code == 409 and into_ny.json()["code"] == "clinician.license_exists"
    renewed = await put(client, f"{base}/licenses/{nj['id']}", LICENSE | {"state": "NJ", "expires_on": "2028-06-30"})
    assert renewed.status_code == 200 and renewed.json()["expires_on"] == "2028-06-30"  # the request after a refusal works
    await post(client, f"{base}/dea-registrations", DEA)
    second = await post(client, f"{base}/dea-registrations", DEA | {"number": "FS2345672"})
    assert second.status_code == 409 and second.json()["code"] == "clinician.dea_exists"
    listed = (await client.get(base)).json()
    assert sorted((item["state"], item["expires_on"]) for item in listed["licenses"]) == [("NJ", "2028-06-30"), ("NY", "2027-06-30")]


async def test_someone_elses_credential_or_a_non_clinician_is_not_found(client, session_factory, settings, clock):
    coordinator = await signed_in_coordinator(client, session_factory, settings, clock)
    rx = await clinician(session_factory, settings, clock)
    other = await clinician(session_factory, settings, clock, email="rx2@example.org")
    license = (await post(client, f"/api/v1/clinicians/{rx.user_id}/licenses", LICENSE)).json()
    dea = (await post(client, f"/api/v1/clinicians/{rx.user_id}/dea-registrations", DEA)).json()
    assert (await put(client, f"/api/v1/clinicians/{other.user_id}/licenses/{license['id']}", LICENSE)).status_code == 404
    assert (await remove(client, f"/api/v1/clinicians/{other.user_id}/licenses/{license['id']}")).status_code == 404
    assert (await remove(client, f"/api/v1/clinicians/{other.user_id}/dea-registrations/{dea['id']}")).status_code == 404
    not_clinician = await post(client, f"/api/v1/clinicians/{coordinator.user_id}/licenses", LICENSE)
    assert not_clinician.status_code == 404 and not_clinician.json()["code"] == "clinician.not_found"
    assert (await client.get(f"/api/v1/clinicians/{coordinator.user_id}")).status_code == 404
    assert len((await client.get(f"/api/v1/clinicians/{rx.user_id}")).json()["licenses"]) == 1


async def test_the_list_shows_every_clinician_with_credentials_and_how_soon_they_expire(client, session_factory, settings, clock):
    await signed_in_coordinator(client, session_factory, settings, clock)
    rx = await clinician(session_factory, settings, clock)
    therapist = await clinician(session_factory, settings, clock, role=Role.THERAPIST, email="t@example.org")
    await post(client, f"/api/v1/clinicians/{rx.user_id}/licenses", LICENSE | {"expires_on": "2026-12-23"})  # 30 days: expiring
    await post(client, f"/api/v1/clinicians/{rx.user_id}/dea-registrations", DEA | {"expires_on": "2026-12-24"})  # 31 days: valid
    await post(client, f"/api/v1/clinicians/{therapist.user_id}/licenses", LICENSE | {"license_type": "LPC"})
    listed = (await client.get("/api/v1/clinicians")).json()
    assert [(c["email"], c["role"]) for c in listed] == [("rx@example.org", "prescriber"), ("t@example.org", "therapist")]
    assert listed[0]["licenses"][0]["expiry_status"] == "expiring"
    assert listed[0]["dea_registrations"][0]["expiry_status"] == "valid"
    assert listed[1]["licenses"][0]["license_type"] == "LPC" and listed[1]["dea_registrations"] == []


async def test_every_change_is_audited_with_who_and_what(client, session_factory, settings, clock):
    coordinator = await signed_in_coordinator(client, session_factory, settings, clock)
    rx = await clinician(session_factory, settings, clock)
    base = f"/api/v1/clinicians/{rx.user_id}"
    await put(client, f"{base}/profile", {"npi": "1234567893", "timezone": "America/New_York"})
    await put(client, f"{base}/profile", {"npi": "1234567893", "timezone": "America/Denver"})
    license = (await post(client, f"{base}/licenses", LICENSE)).json()
    await put(client, f"{base}/licenses/{license['id']}", LICENSE | {"expires_on": "2029-06-30", "number": "209312"})
    await remove(client, f"{base}/licenses/{license['id']}")
    dea = (await post(client, f"{base}/dea-registrations", DEA)).json()
    await put(client, f"{base}/dea-registrations/{dea['id']}", DEA | {"schedules": ["II", "IV"]})
    await remove(client, f"{base}/dea-registrations/{dea['id']}")
    async with session_factory() as session:
        events = (
            (await session.execute(select(AuditEvent).where(AuditEvent.action.like("clinician.%")).order_by(AuditEvent.id))).scalars().all()
        )
    assert {(e.actor_user_id, e.actor_role, e.resource_type, e.resource_id, e.outcome) for e in events} == {
        (coordinator.user_id, "coordinator", "clinician", str(rx.user_id), "success")
    }
    assert [(e.action, e.reason) for e in events] == [
        ("clinician.profile.update", "created"),
        ("clinician.profile.update", "changed=timezone"),
        ("clinician.license.add", "NY MD 2027-06-30"),
        ("clinician.license.update", "NY MD 2029-06-30 changed=number,expires_on"),
        ("clinician.license.remove", "NY MD 2029-06-30"),
        ("clinician.dea.add", "NY 2027-06-30 II,III,IV,V"),
        ("clinician.dea.update", "NY 2027-06-30 II,IV changed=schedules"),
        ("clinician.dea.remove", "NY 2027-06-30 II,IV"),
    ]


@pytest.mark.parametrize("role", [Role.PATIENT, Role.PRESCRIBER, Role.THERAPIST, Role.PHARMACIST])
async def test_only_coordinators_reach_credentials(client, session_factory, settings, clock, role):
    rx = await clinician(session_factory, settings, clock, email="target@example.org")
    person = await clinician(session_factory, settings, clock, role=role, email="someone@example.org")
    await sign_in(client, person, clock)
    headers = await csrf_headers(client)
    attempts = [
        await client.get("/api/v1/clinicians"),
        await client.get(f"/api/v1/clinicians/{rx.user_id}"),
        await client.put(
            f"/api/v1/clinicians/{person.user_id}/profile", json={"npi": None, "timezone": "America/Chicago"}, headers=headers
        ),
        await client.post(f"/api/v1/clinicians/{person.user_id}/licenses", json=LICENSE, headers=headers),
        await client.post(f"/api/v1/clinicians/{person.user_id}/dea-registrations", json=DEA, headers=headers),
        await client.get("/coordinator/clinicians", headers={"accept": "text/html"}),
        await client.post(f"/coordinator/clinicians/{person.user_id}/licenses", data=LICENSE, headers=headers),
    ]
    assert [response.status_code for response in attempts] == [403] * len(attempts)
    assert attempts[0].json()["code"] == "auth.role_forbidden"
    async with session_factory() as session:
        assert not (await session.execute(select(AuditEvent).where(AuditEvent.action.like("clinician.%")))).first()


async def test_signed_out_callers_are_asked_to_sign_in(client, session_factory, settings, clock):
    assert (await client.get("/api/v1/clinicians")).status_code == 401
