"""Issue 23 item 11 in the browser: a coordinator moves the demo's time forward on /dev/clock, every page then
says so in a banner, and "Back to real time" ends it (the rules: tests/integration/devtools/test_demo_clock.py)."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from telehealth.accounts.roles import Role
from telehealth.lib.clock import SystemClock
from tests.conftest import with_settings
from tests.e2e.conftest import LiveServer
from tests.e2e.screenshots import save_screenshots
from tests.e2e.test_prescribing_pages import _sign_in
from tests.helpers import make_person

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(settings):  # the tests' database has a DATABASE_URL: the demo clock only with DEMO_CLOCK=true
    return with_settings(settings, demo_clock=True)


async def test_a_coordinator_moves_the_demo_clock_and_every_page_says_so(page: Page, live_server: LiveServer, session_factory):
    coordinator = await make_person(
        session_factory, role=Role.COORDINATOR, email="co@example.org", now=SystemClock().now(), settings=live_server.settings
    )
    await _sign_in(page, coordinator)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Coordinator home")
    await expect(page.locator(".demo-clock")).to_have_count(0)  # real time: no banner

    await page.goto("/dev/clock")
    await page.get_by_role("button", name="+1 day").click()
    await expect(page.locator("#demo-offset")).to_contain_text("1 day")
    await save_screenshots(page, "coordinator-demo-clock")

    await page.goto("/coordinator")
    await expect(page.locator(".demo-clock")).to_contain_text("Demo time")

    await page.goto("/dev/clock")
    await page.get_by_role("button", name="Back to real time").click()
    await page.goto("/coordinator")
    await expect(page.locator(".demo-clock")).to_have_count(0)
