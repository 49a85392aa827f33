"""Signing in through the HTML pages in a real browser: password, two-factor, enrolment, errors, headers, a11y."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from telehealth.accounts.roles import Role
from telehealth.accounts.security import current_totp_code
from telehealth.lib.clock import SystemClock
from tests.e2e.conftest import LiveServer
from tests.helpers import PASSWORD, Person, make_person

pytestmark = pytest.mark.browser


async def person(session_factory, live_server: LiveServer, role: Role, **kwargs: object) -> Person:
    email = f"{role.value}@example.org"
    return await make_person(session_factory, role=role, email=email, now=SystemClock().now(), settings=live_server.settings, **kwargs)


def code_now(secret: str) -> str:
    return current_totp_code(secret, at=SystemClock().now())


async def submit_password(page: Page, email: str, password: str = PASSWORD) -> None:
    await page.goto("/sign-in")
    await page.get_by_label("Email", exact=True).fill(email)
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def test_patient_signs_in_and_out(page: Page, live_server: LiveServer, session_factory):
    patient = await person(session_factory, live_server, Role.PATIENT)
    await submit_password(page, patient.email)
    await expect(page).to_have_url(f"{live_server.url}/patient")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")

    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(f"{live_server.url}/sign-in")
    # signed out for real: the portal sends us back to sign in
    await page.goto("/patient")
    await expect(page).to_have_url(f"{live_server.url}/sign-in?next=/patient")


async def test_prescriber_signs_in_with_a_two_factor_code(page: Page, live_server: LiveServer, session_factory):
    prescriber = await person(session_factory, live_server, Role.PRESCRIBER)
    assert prescriber.totp_secret
    await submit_password(page, prescriber.email)
    await expect(page).to_have_url(re.compile(r"/sign-in/two-factor(\?|$)"))

    await page.get_by_label("6-digit code").fill(code_now(prescriber.totp_secret))
    await page.get_by_role("button", name="Continue").click()
    await expect(page).to_have_url(f"{live_server.url}/prescriber")


async def test_staff_without_two_factor_sets_it_up_at_first_sign_in(page: Page, live_server: LiveServer, session_factory):
    coordinator = await person(session_factory, live_server, Role.COORDINATOR, enrol_two_factor=False)
    await submit_password(page, coordinator.email)
    await expect(page).to_have_url(f"{live_server.url}/account/two-factor")

    secret = (await page.locator("#totp-secret").inner_text()).strip()
    qr = page.get_by_alt_text("QR code that adds this account to an authenticator app")
    assert await qr.evaluate("img => img.complete && img.naturalWidth > 0")  # drawn locally, shown in the page
    await page.get_by_label("6-digit code").fill(code_now(secret))
    await page.get_by_role("button", name="Turn on two-factor sign-in").click()
    await expect(page).to_have_url(f"{live_server.url}/coordinator")


async def test_wrong_password_shows_an_alert_and_stays_on_sign_in(page: Page, live_server: LiveServer, session_factory):
    patient = await person(session_factory, live_server, Role.PATIENT)
    async with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/sign-in")) as answer:
        await submit_password(page, patient.email, password="not the password at all")
    assert (await answer.value).status == 401
    await expect(page.get_by_role("alert")).to_be_visible()
    await expect(page).to_have_url(f"{live_server.url}/sign-in")
    await expect(page.get_by_label("Email", exact=True)).to_have_value(patient.email)


async def test_pages_send_security_headers_and_load_nothing_from_elsewhere(page: Page, live_server: LiveServer, session_factory):
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    patient = await person(session_factory, live_server, Role.PATIENT)

    sign_in_page = await page.goto("/sign-in")
    async with page.expect_response(f"{live_server.url}/patient") as portal:
        await submit_password(page, patient.email)
    await page.wait_for_load_state("networkidle")  # sub-resources of /patient are requested after its response
    for response in (sign_in_page, await portal.value):
        assert response is not None and response.ok, response
        headers = await response.all_headers()
        assert "default-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"

    assert f"{live_server.url}/static/app.css" in requested  # the listener did see the page's own resources
    elsewhere = [url for url in requested if not url.startswith(f"{live_server.url}/")]
    assert elsewhere == []


async def test_sign_in_page_basic_accessibility(page: Page):
    await page.goto("/sign-in")
    await expect(page.locator("html")).to_have_attribute("lang", "en")

    unlabelled = await page.evaluate(
        """() => {
            const fields = [...document.querySelectorAll("input:not([type=hidden]), select, textarea")];
            return {count: fields.length, unlabelled: fields.filter(f => f.labels.length === 0).map(f => f.name || f.id)};
        }"""
    )
    assert unlabelled["count"] >= 2  # email and password, at least
    assert unlabelled["unlabelled"] == []

    await page.keyboard.press("Tab")
    skip_link = page.get_by_role("link", name="Skip to content")
    await expect(skip_link).to_be_focused()
    await expect(skip_link).to_have_attribute("href", "#main")
