"""Completing the second factor gives the session a new token; the token from before it no longer signs anyone in."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from telehealth.accounts.roles import Role
from telehealth.accounts.security import current_totp_code
from tests.helpers import PASSWORD, csrf_headers, form_csrf_token, make_person


async def _old_token_is_dead(app, old_token: str) -> bool:
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as other:
        other.cookies.set("th_session", old_token)
        return (await other.get("/api/v1/auth/me")).status_code == 401


async def test_the_api_rotates_the_session_token_at_the_second_factor(client, session_factory, settings, clock):
    prescriber = await make_person(session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=settings)
    signed_in = await client.post(
        "/api/v1/auth/sign-in", json={"email": prescriber.email, "password": PASSWORD}, headers=await csrf_headers(client)
    )
    assert signed_in.status_code == 200
    before = client.cookies["th_session"]
    code = current_totp_code(prescriber.totp_secret, at=clock.now())
    verified = await client.post("/api/v1/auth/two-factor/verify", json={"code": code}, headers=await csrf_headers(client))
    assert verified.status_code == 200, verified.text
    after = client.cookies["th_session"]
    assert after != before
    assert (await client.get("/api/v1/auth/me")).json()["two_factor"] == "done"
    assert await _old_token_is_dead(client.app, before)


async def test_the_page_rotates_it_too(client, session_factory, settings, clock):
    prescriber = await make_person(session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=settings)
    form = await client.get("/sign-in")
    await client.post("/sign-in", data={"email": prescriber.email, "password": PASSWORD, "_csrf_token": form_csrf_token(form.text)})
    before = client.cookies["th_session"]
    page = await client.get("/sign-in/two-factor")
    code = current_totp_code(prescriber.totp_secret, at=clock.now())
    done = await client.post(
        "/sign-in/two-factor", data={"code": code, "next": "/", "_csrf_token": form_csrf_token(page.text)}, follow_redirects=False
    )
    assert done.status_code in (302, 303), done.text
    assert client.cookies["th_session"] != before
    assert await _old_token_is_dead(client.app, before)


async def test_enrolment_rotates_it_as_well(client, session_factory, settings, clock):
    from telehealth.accounts.security import current_totp_code as code_at

    pharmacist = await make_person(
        session_factory, role=Role.PHARMACIST, email="ph@example.org", now=clock.now(), settings=settings, enrol_two_factor=False
    )
    await client.post("/api/v1/auth/sign-in", json={"email": pharmacist.email, "password": PASSWORD}, headers=await csrf_headers(client))
    before = client.cookies["th_session"]
    secret = (await client.post("/api/v1/auth/two-factor/enrol", headers=await csrf_headers(client))).json()["secret"]
    confirmed = await client.post(
        "/api/v1/auth/two-factor/confirm", json={"code": code_at(secret, at=clock.now())}, headers=await csrf_headers(client)
    )
    assert confirmed.status_code == 200, confirmed.text
    assert client.cookies["th_session"] != before
    assert await _old_token_is_dead(client.app, before)
