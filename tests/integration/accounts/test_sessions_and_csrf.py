"""Server-side sessions: idle 30 min, absolute 12 h, survive a restart; CSRF on every unsafe request."""

from __future__ import annotations

from datetime import timedelta

from litestar.testing import AsyncTestClient

from telehealth.accounts.roles import Role
from telehealth.asgi import create_app
from tests.helpers import PASSWORD, form_csrf_token, make_person, sign_in


async def test_idle_for_thirty_minutes_ends_the_session(client, session_factory, settings, clock):
    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    await sign_in(client, patient, clock)
    clock.advance(timedelta(minutes=29, seconds=59))
    assert (await client.get("/api/v1/auth/me")).status_code == 200
    clock.advance(timedelta(minutes=29, seconds=59))  # activity above reset the idle timer
    assert (await client.get("/api/v1/auth/me")).status_code == 200
    clock.advance(timedelta(minutes=30))
    response = await client.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert response.json()["code"] == "auth.required"


async def test_twelve_hours_end_the_session_even_when_active(client, session_factory, settings, clock):
    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    await sign_in(client, patient, clock)
    for _ in range(35):  # 35 x 20 min = 11 h 40 min, always active
        clock.advance(timedelta(minutes=20))
        assert (await client.get("/api/v1/auth/me")).status_code == 200
    clock.advance(timedelta(minutes=20))
    assert (await client.get("/api/v1/auth/me")).status_code == 401


async def test_a_session_survives_a_restart_and_works_on_another_app_instance(client, session_factory, settings, clock):
    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    await sign_in(client, patient, clock)
    token = client.cookies["th_session"]
    async with AsyncTestClient(app=create_app(settings, clock=clock), base_url="http://testserver.local") as other:
        other.cookies.set("th_session", token)
        response = await other.get("/api/v1/auth/me")
    assert response.status_code == 200
    assert response.json()["email"] == "pat@example.org"


async def test_unsafe_requests_without_the_csrf_token_are_refused(client, session_factory, settings, clock):
    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    await client.get("/sign-in")  # has the csrf cookie, but sends no header
    response = await client.post("/api/v1/auth/sign-in", json={"email": patient.email, "password": PASSWORD})
    assert response.status_code == 403
    assert response.json()["code"] == "csrf.invalid"
    forged = await client.post(
        "/sign-in", data={"email": patient.email, "password": PASSWORD, "_csrf_token": "forged"}, headers={"accept": "text/html"}
    )
    assert forged.status_code == 403
    assert "th_session" not in client.cookies


async def test_the_sign_in_form_works_with_its_csrf_token(client, session_factory, settings, clock):
    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    page = await client.get("/sign-in")
    assert 'name="_csrf_token"' in page.text
    token = form_csrf_token(page.text)
    response = await client.post(
        "/sign-in", data={"email": patient.email, "password": PASSWORD, "next": "/", "_csrf_token": token}, follow_redirects=False
    )
    assert response.status_code in (301, 302, 303)
    assert (await client.get("/patient")).status_code == 200


async def test_signed_in_pages_need_a_session(client):
    response = await client.get("/patient", headers={"accept": "text/html"}, follow_redirects=False)
    assert response.status_code in (302, 303)
    assert response.headers["location"].startswith("/sign-in")


async def test_security_headers_on_every_page(client):
    response = await client.get("/sign-in")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in response.headers  # only behind TLS


async def test_hsts_when_served_over_tls(settings, clock):
    from tests.conftest import with_settings

    tls = with_settings(settings, public_base_url="https://clinic.example")
    async with AsyncTestClient(app=create_app(tls, clock=clock)) as client:
        response = await client.get("/health")
    assert "max-age" in response.headers["strict-transport-security"]
