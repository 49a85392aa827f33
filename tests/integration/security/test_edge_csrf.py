"""The CSRF token is bound to the session, and unsafe requests from another site are refused whatever they carry.

These tests use clients of their own: the shared `client` fixture sends the jar's current token for the test's
convenience, which would hide exactly what is checked here."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient

from telehealth.accounts.roles import Role
from telehealth.asgi import create_app
from tests.helpers import PASSWORD, deliver_stripe_event, make_person

BASE = "http://testserver.local"


@pytest.fixture
async def app(settings, clock):
    return create_app(settings, clock=clock)


@pytest.fixture
async def browser(app) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app=app, base_url=BASE) as client:
        yield client


async def _token(client: AsyncTestClient) -> str:
    if "csrftoken" not in client.cookies:
        await client.get("/sign-in")
    return client.cookies["csrftoken"]


async def _sign_in(client: AsyncTestClient, email: str) -> None:
    response = await client.post(
        "/api/v1/auth/sign-in", json={"email": email, "password": PASSWORD}, headers={"x-csrftoken": await _token(client)}
    )
    assert response.status_code == 200, response.text


async def test_a_token_planted_from_another_visit_does_not_work_for_a_signed_in_session(app, browser, session_factory, settings, clock):
    """The attacker gets a valid token pair from their own visit and plants it in the victim's browser (a cookie
    set from a sibling subdomain or over plain http): with the victim's session it is refused."""
    victim = await make_person(session_factory, role=Role.PATIENT, email="victim@example.org", now=clock.now(), settings=settings)
    await _sign_in(browser, victim.email)
    assert (await browser.post("/api/v1/auth/sign-out", headers={"x-csrftoken": browser.cookies["csrftoken"]})).status_code == 200
    await _sign_in(browser, victim.email)  # signed in again, with a token for this session

    async with AsyncTestClient(app=app, base_url=BASE) as attacker:
        planted = await _token(attacker)
    browser.cookies.set("csrftoken", planted, domain="testserver.local")
    forged = await browser.post("/api/v1/auth/sign-out", headers={"x-csrftoken": planted})
    assert forged.status_code == 403 and forged.json()["code"] == "csrf.invalid"
    assert (await browser.get("/api/v1/auth/me")).status_code == 200  # still signed in


async def test_a_token_stops_working_when_the_session_changes(browser, session_factory, settings, clock):
    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    before = await _token(browser)
    await _sign_in(browser, patient.email)
    after = browser.cookies["csrftoken"]
    assert after != before  # the sign-in answer carried a token for the new session
    browser.cookies.set("csrftoken", before, domain="testserver.local")
    stale = await browser.post("/api/v1/auth/sign-out", headers={"x-csrftoken": before})
    assert stale.status_code == 403
    browser.cookies.set("csrftoken", after, domain="testserver.local")
    assert (await browser.post("/api/v1/auth/sign-out", headers={"x-csrftoken": after})).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"origin": "http://testserver.local:8080"},  # another port is another origin
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},  # a sibling subdomain is not us either
    ],
)
async def test_unsafe_requests_from_another_site_are_refused_even_with_a_good_token(browser, headers):
    token = await _token(browser)
    refused = await browser.post("/waitlist", data={"_csrf_token": token}, headers=headers | {"accept": "application/json"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "csrf.invalid"


async def test_our_own_origin_and_no_origin_at_all_are_accepted(browser, session_factory, settings, clock):
    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    token = await _token(browser)
    same_origin = {"origin": "http://testserver.local", "sec-fetch-site": "same-origin", "x-csrftoken": token}
    response = await browser.post("/api/v1/auth/sign-in", json={"email": patient.email, "password": PASSWORD}, headers=same_origin)
    assert response.status_code == 200, response.text
    # Chromium's own form post under our Referrer-Policy: no-referrer says Origin: null, same-origin.
    chromium_form = {"origin": "null", "sec-fetch-site": "same-origin", "x-csrftoken": browser.cookies["csrftoken"]}
    assert (await browser.post("/api/v1/auth/sign-out", headers=chromium_form)).status_code == 200
    assert (
        await browser.post(
            "/api/v1/auth/sign-in",
            json={"email": patient.email, "password": PASSWORD},
            headers={"x-csrftoken": browser.cookies["csrftoken"]},
        )
    ).status_code == 200
    # An API client (no Origin, no Sec-Fetch-Site) with the token is fine: browsers send Origin on cross-site posts.
    assert (await browser.post("/api/v1/auth/sign-out", headers={"x-csrftoken": browser.cookies["csrftoken"]})).status_code == 200


async def test_stripes_webhook_stays_exempt(browser, stripe_fake):
    event = {"id": "evt_edge_1", "type": "customer.created", "data": {"object": {"id": "cus_1"}}}
    browser.headers.update({"origin": "https://stripe.example", "sec-fetch-site": "cross-site"})  # neither matters here
    answered = await deliver_stripe_event(browser, stripe_fake, event)
    assert answered.status_code == 200, answered.text
