"""TOTP: required for staff, enrolment, replay refused, wrong codes lock, step-up for signing."""

from __future__ import annotations

from datetime import timedelta

from telehealth.accounts.roles import Role
from telehealth.accounts.security import current_totp_code
from telehealth.accounts.sessions import SignedIn
from telehealth.accounts.two_factor import require_recent_step_up
from telehealth.lib.errors import Forbidden
from tests.helpers import PASSWORD, csrf_headers, make_person, sign_in


async def _password_only(client, person):
    headers = await csrf_headers(client)
    response = await client.post("/api/v1/auth/sign-in", json={"email": person.email, "password": PASSWORD}, headers=headers)
    assert response.status_code == 200
    return response.json(), headers


async def test_staff_cannot_reach_records_before_the_second_factor(client, session_factory, settings, clock):
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    me, headers = await _password_only(client, coordinator)
    assert me["two_factor"] == "required"
    blocked = await client.get(f"/api/v1/patients/{patient.patient_id}")
    assert blocked.status_code == 403
    assert blocked.json()["code"] == "auth.two_factor_required"
    code = current_totp_code(coordinator.totp_secret, at=clock.now())
    assert (await client.post("/api/v1/auth/two-factor/verify", json={"code": code}, headers=headers)).status_code == 200
    assert (await client.get(f"/api/v1/patients/{patient.patient_id}")).status_code == 200


async def test_every_staff_role_must_enrol_before_anything_else(client, session_factory, settings, clock):
    for index, role in enumerate((Role.PRESCRIBER, Role.PHARMACIST, Role.COORDINATOR, Role.THERAPIST)):
        client.cookies.clear()
        person = await make_person(
            session_factory, role=role, email=f"staff{index}@example.org", now=clock.now(), settings=settings, enrol_two_factor=False
        )
        me, _headers = await _password_only(client, person)
        assert me["two_factor"] == "enrol"
        home = await client.get(f"/{role.value}")
        assert home.status_code == 403
        assert home.json()["code"] == "auth.two_factor_enrolment_required"


async def test_enrolment_then_sign_in_with_the_new_secret(client, session_factory, settings, clock):
    prescriber = await make_person(
        session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=settings, enrol_two_factor=False
    )
    _, headers = await _password_only(client, prescriber)
    enrolment = (await client.post("/api/v1/auth/two-factor/enrol", headers=headers)).json()
    assert enrolment["otpauth_uri"].startswith("otpauth://totp/")
    wrong = await client.post("/api/v1/auth/two-factor/confirm", json={"code": "000000"}, headers=headers)
    assert wrong.status_code == 422
    assert wrong.json()["fields"] == {"code": "is not the current code"}
    code = current_totp_code(enrolment["secret"], at=clock.now())
    assert (await client.post("/api/v1/auth/two-factor/confirm", json={"code": code}, headers=headers)).status_code == 200
    assert (await client.get("/prescriber")).status_code == 200
    assert (await client.get("/api/v1/auth/me")).json()["two_factor"] == "done"


async def test_a_code_works_once(client, session_factory, settings, clock):
    prescriber = await make_person(session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=settings)
    await sign_in(client, prescriber, clock)
    same_code = current_totp_code(prescriber.totp_secret, at=clock.now())
    replay = await client.post("/api/v1/auth/step-up", json={"code": same_code}, headers=await csrf_headers(client))
    assert replay.status_code == 422
    assert replay.json()["code"] == "two_factor.wrong_code"
    clock.advance(timedelta(seconds=30))
    fresh = current_totp_code(prescriber.totp_secret, at=clock.now())
    step_up = await client.post("/api/v1/auth/step-up", json={"code": fresh}, headers=await csrf_headers(client))
    assert step_up.status_code == 200


async def test_ten_wrong_codes_lock_the_second_factor_and_end_the_session(client, session_factory, settings, clock):
    prescriber = await make_person(session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=settings)
    _, headers = await _password_only(client, prescriber)
    for _ in range(10):
        await client.post("/api/v1/auth/two-factor/verify", json={"code": "123456"}, headers=headers)
    assert (await client.get("/api/v1/auth/me")).status_code == 401
    # The password still passes (it was never wrong); the code step refuses, even the right code.
    _, headers = await _password_only(client, prescriber)
    code = current_totp_code(prescriber.totp_secret, at=clock.now())
    locked = await client.post("/api/v1/auth/two-factor/verify", json={"code": code}, headers=headers)
    assert (locked.status_code, locked.json()["code"], locked.json()["fields"]) == (
        403,
        "two_factor.locked",
        {"code": "is paused after too many wrong codes"},
    )


def test_step_up_is_needed_within_five_minutes(settings, clock):
    import uuid

    def signed_in(step_up_at):
        return SignedIn(uuid.uuid4(), uuid.uuid4(), Role.PRESCRIBER, "rx@example.org", "Rx", True, True, True, step_up_at)

    require_recent_step_up(signed_in(clock.now() - timedelta(minutes=5)), now=clock.now(), settings=settings)
    for stale in (None, clock.now() - timedelta(minutes=5, seconds=1)):
        try:
            require_recent_step_up(signed_in(stale), now=clock.now(), settings=settings)
        except Forbidden as refusal:
            assert refusal.code == "auth.step_up_required"
        else:
            raise AssertionError("a stale step-up was accepted")


async def test_reloading_enrolment_keeps_the_same_secret(client, session_factory, settings, clock):
    pharmacist = await make_person(
        session_factory, role=Role.PHARMACIST, email="ph@example.org", now=clock.now(), settings=settings, enrol_two_factor=False
    )
    _, headers = await _password_only(client, pharmacist)
    first = (await client.post("/api/v1/auth/two-factor/enrol", headers=headers)).json()["secret"]
    page = await client.get("/account/two-factor")
    assert first in page.text  # a second tab shows the same key, so the first tab's app still works
    assert "data:image/svg+xml" in page.text
