"""The built-in video room, for real: the patient's Chromium on one app process and the prescriber's on another
(two uvicorns over one PostgreSQL, as two machines would run them) join one room with Chromium's fake camera
and microphone, and each sees the other's video advancing: the remote <video> has a picture and getStats()
shows inbound bytes and decoded frames growing. Their signalling crossed processes only through PostgreSQL
NOTIFY. The room records both connections and the visit's start; a third, uninvited patient is refused the
page and the socket. Screenshots of the room at desktop and phone sizes go to test-artifacts/screenshots/."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from datetime import timedelta

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, async_playwright, expect
from sqlalchemy import select

from benchmarks.server import environment, running_server
from telehealth.lib.clock import SystemClock
from telehealth.scheduling.models import Appointment, VideoVisit, VisitConnection
from tests.e2e.conftest import CHROMIUM_ARGS, find_chromium
from tests.e2e.screenshots import SCREENSHOTS
from tests.integration.billing.helpers import insert_appointment
from tests.integration.scheduling.helpers import prescriber_with_hours, screened_patient
from tests.integration.system.test_several_processes import signed_in

pytestmark = pytest.mark.browser

FAKE_MEDIA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]

INBOUND_VIDEO = """async () => {
  const stats = await window.videoRoom.pc.getStats();
  for (const report of stats.values()) {
    if (report.type === "inbound-rtp" && report.kind === "video") return [report.bytesReceived || 0, report.framesDecoded || 0];
  }
  return [0, 0];
}"""

SOCKET_CLOSE_CODE = """(path) => new Promise((resolve) => {
  const socket = new WebSocket("ws://" + location.host + path);
  socket.onclose = (event) => resolve(event.code);
})"""


async def _context_signed_in(browser, client: httpx.AsyncClient, base_url: str, **options) -> BrowserContext:
    """A browser context holding the session the API sign-in made (the pages' sign-in is tested elsewhere)."""
    context = await browser.new_context(base_url=base_url, **options)
    await context.add_cookies([{"name": cookie.name, "value": cookie.value, "url": base_url} for cookie in client.cookies.jar])
    return context


async def _join(page: Page, room_path: str) -> None:
    await page.goto(room_path)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Video visit")
    await page.get_by_role("button", name="Check camera and microphone").click()
    await expect(page.get_by_role("status")).to_have_text("Your camera and microphone work. Join when you are ready.")
    await page.get_by_role("button", name="Join the visit").click()


async def _sees_the_other_advancing(page: Page) -> None:
    await page.wait_for_function("() => document.getElementById('remote-video').videoWidth > 0", timeout=30_000)
    bytes_before, frames_before = await page.evaluate(INBOUND_VIDEO)
    await asyncio.sleep(2)
    bytes_after, frames_after = await page.evaluate(INBOUND_VIDEO)
    assert bytes_after > bytes_before > 0 and frames_after > frames_before > 0, (bytes_before, bytes_after, frames_before, frames_after)


async def test_patient_and_prescriber_on_two_app_processes_see_each_other(database_url, session_factory, settings):
    executable = find_chromium()
    assert executable, "Chromium is needed for the video room's test (apt-get install chromium)"
    clock = SystemClock()  # the app processes run on real time
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    patient = await screened_patient(session_factory, settings, clock)
    stranger = await screened_patient(session_factory, settings, clock, email="stranger@example.org")
    starts_at = (clock.now() + timedelta(minutes=3)).replace(second=0, microsecond=0)
    appointment_id = await insert_appointment(
        session_factory, patient=patient, clinician=prescriber, starts_at=starts_at, appointment_type="consult", minutes=45
    )
    async with session_factory() as session:
        room_path = f"/rooms/{await session.scalar(select(Appointment.room_token).where(Appointment.id == appointment_id))}"

    async with AsyncExitStack() as stack:
        stack.enter_context(environment({"LOGIN_ATTEMPTS_PER_IP_PER_15_MIN": "100000"}))
        first = await stack.enter_async_context(running_server(database_url))
        second = await stack.enter_async_context(running_server(database_url))
        patient_api = await signed_in(first.base_url, patient.email)
        prescriber_api = await signed_in(second.base_url, prescriber.email, totp_secret=prescriber.totp_secret)
        stranger_api = await signed_in(first.base_url, stranger.email)
        for client in (patient_api, prescriber_api, stranger_api):
            stack.push_async_callback(client.aclose)

        playwright = await stack.enter_async_context(async_playwright())
        browser = await playwright.chromium.launch(executable_path=executable, args=[*CHROMIUM_ARGS, *FAKE_MEDIA])
        stack.push_async_callback(browser.close)
        patient_context = await _context_signed_in(browser, patient_api, first.base_url, permissions=["camera", "microphone"])
        prescriber_context = await _context_signed_in(browser, prescriber_api, second.base_url, permissions=["camera", "microphone"])
        stranger_context = await _context_signed_in(browser, stranger_api, first.base_url)
        for context in (patient_context, prescriber_context, stranger_context):
            stack.push_async_callback(context.close)
        patient_page, prescriber_page = await patient_context.new_page(), await prescriber_context.new_page()

        await _join(patient_page, room_path)
        await expect(patient_page.get_by_role("status")).to_contain_text("Waiting for the other person")
        await _join(prescriber_page, room_path)
        await _sees_the_other_advancing(patient_page)
        await _sees_the_other_advancing(prescriber_page)
        await expect(prescriber_page.get_by_role("status")).to_have_text("Connected. You can see and hear each other.")

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await prescriber_page.screenshot(path=str(SCREENSHOTS / "video-room-desktop.png"), full_page=True)
        await patient_page.set_viewport_size({"width": 390, "height": 844})
        await patient_page.screenshot(path=str(SCREENSHOTS / "video-room-phone.png"), full_page=True)

        # The room kept the evidence: both connections, and the start when both were connected.
        async with session_factory() as session:
            visit = await session.get(VideoVisit, appointment_id)
            connections = list(
                (await session.execute(select(VisitConnection).where(VisitConnection.appointment_id == appointment_id))).scalars()
            )
        assert visit is not None and visit.start_evidence == "both_connected" and visit.modality == "audio_video"
        assert {c.participant for c in connections} == {"patient", "clinician"} and all(c.left_at is None for c in connections)
        assert visit.started_at >= max(c.joined_at for c in connections)

        # A third person with the room's link gets nothing: not the page, not the socket.
        stranger_page = await stranger_context.new_page()
        refused = await stranger_page.goto(room_path)
        assert refused is not None and refused.status == 404
        await stranger_page.goto("/patient")
        assert await stranger_page.evaluate(SOCKET_CLOSE_CODE, f"{room_path}/signal") == 4404

        # Mute and camera toggles, then the patient leaves: the prescriber is told, and the room records it.
        await patient_page.get_by_role("button", name="Mute microphone").click()
        await expect(patient_page.get_by_role("button", name="Unmute microphone")).to_have_attribute("aria-pressed", "true")
        await patient_page.get_by_role("button", name="Leave the visit").click()
        await expect(prescriber_page.get_by_role("status")).to_contain_text("The other person left the room")

        async def left_recorded() -> bool:
            async with session_factory() as session:
                row = await session.scalar(
                    select(VisitConnection).where(
                        VisitConnection.appointment_id == appointment_id, VisitConnection.participant == "patient"
                    )
                )
                ended = await session.scalar(select(VideoVisit.ended_at).where(VideoVisit.appointment_id == appointment_id))
            return row is not None and row.left_at is not None and ended is not None

        for _ in range(50):
            if await left_recorded():
                break
            await asyncio.sleep(0.1)
        assert await left_recorded()

        # And rejoins within the window: they see each other again.
        await patient_page.set_viewport_size({"width": 1280, "height": 800})
        await patient_page.get_by_role("button", name="Rejoin the visit").click()
        await _sees_the_other_advancing(patient_page)
        await _sees_the_other_advancing(prescriber_page)
