"""Signing in: password, wrong passwords throttled (throttle.py), per-address rate limit, audit rows."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from telehealth.accounts.roles import Role
from telehealth.audit.models import AuditEvent
from tests.helpers import PASSWORD, csrf_headers, make_person, sign_in


async def test_patient_signs_in_and_sees_who_they_are(client, session_factory, settings, clock):
    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    await sign_in(client, patient, clock)
    me = (await client.get("/api/v1/auth/me")).json()
    assert me["email"] == "pat@example.org"
    assert me["role"] == "patient"
    assert me["two_factor"] == "not_needed"
    assert me["patient_id"] == str(patient.patient_id)
    cookie_header = next(h for h in client.cookies.jar if h.name == "th_session")
    assert cookie_header.has_nonstandard_attr("HttpOnly")


async def test_session_cookie_is_httponly_and_samesite(client, session_factory, settings, clock):
    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    response = await client.post(
        "/api/v1/auth/sign-in", json={"email": patient.email, "password": PASSWORD}, headers=await csrf_headers(client)
    )
    set_cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("th_session="))
    assert "HttpOnly" in set_cookie
    assert "SameSite=lax" in set_cookie or "SameSite=Lax" in set_cookie


async def test_wrong_password_is_refused_and_audited(client, session_factory, settings, clock):
    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    response = await client.post(
        "/api/v1/auth/sign-in", json={"email": patient.email, "password": "not the password"}, headers=await csrf_headers(client)
    )
    assert response.status_code == 401
    assert response.json()["code"] == "auth.invalid_credentials"
    async with session_factory() as session:
        events = (await session.execute(select(AuditEvent).where(AuditEvent.action == "auth.sign_in"))).scalars().all()
    assert [(e.outcome, e.reason) for e in events] == [("failure", "wrong_password")]


async def test_unknown_email_answers_like_a_wrong_password(client, clock):
    response = await client.post(
        "/api/v1/auth/sign-in", json={"email": "nobody@example.org", "password": "whatever it is"}, headers=await csrf_headers(client)
    )
    assert response.status_code == 401
    assert response.json()["code"] == "auth.invalid_credentials"


async def test_ten_wrong_passwords_pause_that_address_for_that_account_for_fifteen_minutes(client, session_factory, settings, clock):
    """Throttled, not locked (throttle.py): the address that guessed waits; tests/integration/security has the rest."""
    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    headers = await csrf_headers(client)
    for attempt in range(10):
        response = await client.post("/api/v1/auth/sign-in", json={"email": patient.email, "password": f"wrong {attempt}"}, headers=headers)
        assert response.status_code == 401
    # the right password is not even checked from this address while it waits
    paused = await client.post("/api/v1/auth/sign-in", json={"email": patient.email, "password": PASSWORD}, headers=headers)
    assert paused.status_code == 429
    assert paused.json()["code"] == "auth.rate_limited"
    clock.advance(timedelta(minutes=15))
    still = await client.post("/api/v1/auth/sign-in", json={"email": patient.email, "password": PASSWORD}, headers=headers)
    assert still.status_code == 429
    clock.advance(timedelta(seconds=1))
    await sign_in(client, patient, clock)


async def test_a_correct_password_resets_no_count(client, session_factory, settings, clock):
    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    headers = await csrf_headers(client)
    for _ in range(9):
        await client.post("/api/v1/auth/sign-in", json={"email": patient.email, "password": "wrong wrong"}, headers=headers)
    await sign_in(client, patient, clock)
    assert (
        await client.post("/api/v1/auth/sign-in", json={"email": patient.email, "password": "wrong wrong"}, headers=headers)
    ).status_code == 401
    paused = await client.post("/api/v1/auth/sign-in", json={"email": patient.email, "password": PASSWORD}, headers=headers)
    assert paused.status_code == 429


async def test_sign_in_is_rate_limited_per_address(session_factory, settings, clock):
    from litestar.testing import AsyncTestClient

    from telehealth.asgi import create_app
    from tests.conftest import with_settings

    tight = with_settings(settings, login_attempts_per_ip_per_15_min=5)
    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=tight)
    async with AsyncTestClient(app=create_app(tight, clock=clock), base_url="http://testserver.local") as client:
        headers = await csrf_headers(client)
        for _ in range(5):
            await client.post("/api/v1/auth/sign-in", json={"email": "x@example.org", "password": "wrong wrong"}, headers=headers)
        limited = await client.post("/api/v1/auth/sign-in", json={"email": patient.email, "password": PASSWORD}, headers=headers)
        assert limited.status_code == 429
        assert limited.json()["code"] == "auth.rate_limited"
        clock.advance(timedelta(minutes=16))
        await sign_in(client, patient, clock)


async def test_sign_out_ends_the_session(client, session_factory, settings, clock):
    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    await sign_in(client, patient, clock)
    token = client.cookies["th_session"]
    assert (await client.post("/api/v1/auth/sign-out", headers=await csrf_headers(client))).status_code == 200
    client.cookies.set("th_session", token)  # a copied cookie is dead too
    assert (await client.get("/api/v1/auth/me")).status_code == 401
