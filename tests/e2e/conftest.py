"""Browser tests: the real app served by uvicorn on a free local port, driven by headless Chromium."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, Page, async_playwright
from sqlalchemy.ext.asyncio import AsyncEngine

from telehealth.lib.clock import SystemClock
from telehealth.settings import Settings
from tests.conftest import empty_all_tables, with_settings
from tests.fakes.stripe_api import FakeStripe

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@dataclass
class LiveServer:
    url: str
    settings: Settings


def find_chromium() -> str | None:
    return shutil.which("chromium") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)


@pytest.fixture(autouse=True)
async def empty_tables(engine: AsyncEngine) -> None:
    await empty_all_tables(engine)


@pytest.fixture
async def live_server(settings: Settings, stripe_fake: FakeStripe) -> AsyncIterator[LiveServer]:
    from telehealth.asgi import create_app

    # Bind the socket ourselves so the port is known (for public_base_url) and cannot be taken meanwhile.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    live_settings = with_settings(settings, run_worker_in_process=False, public_base_url=url)
    # A real clock: the browser types TOTP codes computed at real time.
    app = create_app(live_settings, clock=SystemClock())
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5))
    # Server.run() starts its own event loop; off the main thread it installs no signal handlers.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="live-server", daemon=True)
    thread.start()
    stripe_fake.webhook_url = f"{url}/api/v1/billing/stripe/webhook"  # the fake's pay page tells this server
    try:
        await _wait_for_health(url, thread)
        yield LiveServer(url, live_settings)
    finally:
        stripe_fake.webhook_url = None
        server.should_exit = True
        await asyncio.to_thread(thread.join, 15)
        sock.close()
        assert not thread.is_alive(), "the live server did not stop within 15 s"


async def _wait_for_health(url: str, thread: threading.Thread, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient(base_url=url, timeout=1.0) as client:
        while asyncio.get_running_loop().time() < deadline:
            if not thread.is_alive():
                pytest.fail("the live server stopped during start-up (see the captured log)")
            try:
                if (await client.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    pytest.fail(f"the live server did not answer /health within {timeout:.0f} s")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    executable = find_chromium()
    if executable is None:
        message = "Chromium not found (looked for `chromium` on PATH and /usr/bin/chromium)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"{message}, and REQUIRE_BROWSER=1 demands browser tests run")
        pytest.skip(f"{message}; set REQUIRE_BROWSER=1 to make this a failure")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def page(browser: Browser, live_server: LiveServer) -> AsyncIterator[Page]:
    """A fresh context (no cookies) per test; relative URLs go to the live server. Closed before the server stops."""
    context = await browser.new_context(base_url=live_server.url)
    try:
        yield await context.new_page()
    finally:
        await context.close()
