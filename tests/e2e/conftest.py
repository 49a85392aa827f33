"""Browser tests: the real app served by uvicorn on a free local port, driven by headless Chromium.

Every page of the app the tests show is also checked with axe-core (tests/assets/axe.min.js): see AxeAudit.
Contexts made with the `browser` fixture's `new_context()` (the `page` fixture's too) are audited automatically;
a context made any other way can be audited with `await axe_audit.watch(context)` (and `await
axe_audit.finish(context)` before closing it). A test fails at teardown listing each serious or critical
violation not in ALLOWED_A11Y_VIOLATIONS."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import shutil
import socket
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright
from sqlalchemy.ext.asyncio import AsyncEngine

from telehealth.devtools.stripe_stand_in import FakeStripe
from telehealth.lib.clock import SystemClock
from telehealth.settings import Settings
from tests.conftest import empty_all_tables, with_settings

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


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
async def chromium() -> AsyncIterator[Browser]:
    """The one Chromium of the session. Tests use `browser`, which audits every context it makes."""
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
async def axe_audit(live_server: LiveServer) -> AsyncIterator[AxeAudit]:
    """Collects the test's accessibility violations; fails the test at teardown if any is not allowed."""
    audit = AxeAudit(live_server.url)
    yield audit
    await audit.finish_all()
    if report := audit.report():
        pytest.fail(report, pytrace=False)


@pytest.fixture
async def browser(chromium: Browser, axe_audit: AxeAudit) -> AsyncIterator[AuditedBrowser]:
    """The session's Chromium for one test: every context made with `new_context()` is audited."""
    audited = AuditedBrowser(chromium, axe_audit)
    yield audited
    await audited.close_contexts()  # any the test left open, checked before the server stops


@pytest.fixture
async def page(browser: AuditedBrowser, live_server: LiveServer) -> AsyncIterator[Page]:
    """A fresh context (no cookies) per test; relative URLs go to the live server. Closed before the server stops."""
    context = await browser.new_context(base_url=live_server.url)
    try:
        yield await context.new_page()
    finally:
        await context.close()


# --- Accessibility: axe-core on every page the tests show ---------------------------------------------------

AXE_SCRIPT = Path(__file__).resolve().parents[1] / "assets" / "axe.min.js"  # vendored, see tests/assets/README.md
FAILING_IMPACTS = ("serious", "critical")
TARGETS_SHOWN = 3


@dataclass(frozen=True)
class AllowedViolation:
    """A known violation that can only be fixed outside the templates and CSS: `rule` on any page whose path
    (with query) matches `path_pattern` (re.search). Say why, and who fixes it."""

    rule: str
    path_pattern: str
    reason: str

    def allows(self, violation: A11yViolation) -> bool:
        return violation.rule == self.rule and re.search(self.path_pattern, violation.path) is not None


# Known violations that cannot be fixed in templates/ or telehealth/static/app.css (say why, and what would fix
# them), e.g. AllowedViolation("label", r"^/some/page", "the field is built in telehealth/x.py; ..."). Empty: none.
ALLOWED_A11Y_VIOLATIONS: tuple[AllowedViolation, ...] = ()


@dataclass(frozen=True)
class A11yViolation:
    path: str
    rule: str
    impact: str
    help: str
    help_url: str
    targets: tuple[str, ...]

    def describe(self) -> str:
        shown = ", ".join(self.targets[:TARGETS_SHOWN])
        more = f" (+{len(self.targets) - TARGETS_SHOWN} more)" if len(self.targets) > TARGETS_SHOWN else ""
        return f"{self.path}: {self.rule} ({self.impact}) {self.help}\n      at {shown}{more}\n      {self.help_url}"


# Added to every document of an audited context, before the page's own scripts (the DevTools protocol adds it, so
# the app's Content-Security-Policy does not apply and the tests keep enforcing the real one: no bypass_csp).
# In a top-level document of our app it loads axe, says a check has started, and runs axe once the page has
# loaded (styles matter to colour contrast); other origins (the fake Stripe checkout) are not ours: skipped.
_AXE_IN_PAGE = """(() => {
    if (window.top !== window || !location.href.startsWith(%(origin)s + "/")) return;
    const report = window.%(binding)s, id = crypto.randomUUID ? crypto.randomUUID() : String(Math.random());
    report("start", id);
    %(axe)s
    window.%(binding)sDone = new Promise(finished => addEventListener("load", async () => {
        report("loaded", id);
        try {
            const results = await axe.run(document, {resultTypes: ["violations"]});
            report("done", id, location.href, results.violations.filter(v => %(impacts)s.includes(v.impact)).map(v => ({
                rule: v.id, impact: v.impact, help: v.help, help_url: v.helpUrl,
                targets: v.nodes.map(node => node.target.map(String).join(" ")),
            })));
        } catch (error) {
            report("error", id, location.href, String(error));
        } finally {
            finished();
        }
    }, {once: true}));
})();"""
_BINDING = "__axeAudit"
CHECK_TIMEOUT = 20.0  # seconds a page may take to load and be checked


@dataclass
class AxeAudit:
    """Runs axe-core on every document of our app shown in an audited context, once it has loaded.

    A page that leaves a document (a navigation request: a link, a form, goto, reload) is held until that
    document's check has reported, so no page goes unchecked however fast a test moves on; so is a context
    that closes. Only the page itself can run the check during the hold (a new evaluate() from here would
    wait for the navigation), which is why the check starts in the page, from an init script."""

    origin: str
    violations: dict[tuple[str, str], A11yViolation] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    left_loading: list[str] = field(default_factory=list)  # documents replaced before they had loaded: not checked
    _running: dict[Page, dict[str, asyncio.Future[None]]] = field(default_factory=dict)
    _loaded: set[str] = field(default_factory=set)
    _contexts: list[BrowserContext] = field(default_factory=list)

    async def watch(self, context: BrowserContext) -> None:
        """Audit every page of `context` from its next document on."""
        self._contexts.append(context)
        context.on("page", lambda page: page.once("close", self._on_close))
        await context.expose_binding(_BINDING, self._on_report)
        script = _AXE_IN_PAGE % {
            "origin": json.dumps(self.origin),
            "binding": _BINDING,
            "axe": _axe_source(),
            "impacts": json.dumps(FAILING_IMPACTS),
        }
        await context.add_init_script(script=script)
        await context.route("**/*", self._hold_navigation)

    async def finish(self, context: BrowserContext) -> None:
        """Wait for the checks still running in `context`; call before closing it."""
        if context not in self._contexts:
            return
        self._contexts.remove(context)
        for page in context.pages:
            if page.url.startswith(f"{self.origin}/"):  # a document just shown may not have said "start" yet
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(page.evaluate(f"() => window.{_BINDING}Done"), CHECK_TIMEOUT)
            await self._wait_for_checks(page)

    async def finish_all(self) -> None:
        for context in list(self._contexts):
            await self.finish(context)

    def report(self) -> str | None:
        failing = [v for v in self.violations.values() if not any(allowed.allows(v) for allowed in ALLOWED_A11Y_VIOLATIONS)]
        if not failing and not self.errors:
            return None
        lines = [
            f"axe-core {_axe_version()}: {len(failing)} serious or critical accessibility violation(s) "
            f"(known exceptions: ALLOWED_A11Y_VIOLATIONS in tests/e2e/conftest.py)"
        ]
        lines += [f"  {violation.describe()}" for violation in failing]
        lines += [f"  not checked: {error}" for error in self.errors]
        return "\n".join(lines)

    def _on_report(self, source: dict[str, Any], phase: str, check_id: str, url: str = "", found: Any = None) -> None:
        page: Page = source["page"]
        running = self._running.setdefault(page, {})
        if phase == "start":
            for gone in list(running):  # a new document, and the one before it left without being held
                if gone in self._loaded:  # it had loaded: the hold should have kept it (a bug here)
                    self._end(page, gone, error=f"{page.url}: the document before it was left while axe ran")
                else:  # left while still loading, before the hold knew of it: a test that did not wait for it
                    self._end(page, gone)
                    self.left_loading.append(page.url)
                    _SESSION_TOTALS["left_loading"] += 1
            running[check_id] = asyncio.get_running_loop().create_future()
            return
        if phase == "loaded":
            self._loaded.add(check_id)
            return
        if phase == "error":
            self._end(page, check_id, error=f"{url}: axe failed: {found}")
            return
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        for item in found:
            violation = A11yViolation(path=path, targets=tuple(item.pop("targets")), **item)
            self.violations.setdefault((path, violation.rule), violation)
        _SESSION_TOTALS["documents"] += 1
        self._end(page, check_id)

    def _on_close(self, page: Page) -> None:
        for check_id in list(self._running.get(page, {})):
            self._end(page, check_id, error=f"{page.url}: the page closed before its check finished")
        self._running.pop(page, None)

    def _end(self, page: Page, check_id: str, *, error: str | None = None) -> None:
        future = self._running.get(page, {}).pop(check_id, None)
        if future is not None and not future.done():
            future.set_result(None)
        if error is not None:
            self.errors.append(error)

    async def _wait_for_checks(self, page: Page) -> None:
        running = list(self._running.get(page, {}).items())
        if not running:
            return
        _done, late = await asyncio.wait([future for _, future in running], timeout=CHECK_TIMEOUT)
        for check_id, future in running:
            if future in late:
                self._end(page, check_id, error=f"{page.url}: no axe result within {CHECK_TIMEOUT:.0f} s")

    async def _hold_navigation(self, route: Route) -> None:
        """A page is about to leave its document: let that document's check finish first."""
        request = route.request
        try:
            leaving = request.frame.page if request.is_navigation_request() and request.frame.parent_frame is None else None
        except Exception:  # no frame or page yet (a new popup): nothing is being left
            leaving = None
        if leaving is not None:
            if leaving.url.startswith(f"{self.origin}/"):
                # A document that has only just committed may not have said "start" yet; it has by DOMContentLoaded.
                with contextlib.suppress(Exception):
                    await leaving.wait_for_load_state("domcontentloaded", timeout=CHECK_TIMEOUT * 1000)
                await asyncio.sleep(0)  # let that report be recorded
            await self._wait_for_checks(leaving)
        await route.fallback()


_SESSION_TOTALS = {"documents": 0, "left_loading": 0}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _SESSION_TOTALS["documents"]:
        left = _SESSION_TOTALS["left_loading"]
        unchecked = f"; {left} left by a test before they had loaded, not checked" if left else ""
        terminalreporter.write_line(
            f"axe-core {_axe_version()}: checked {_SESSION_TOTALS['documents']} page loads for serious and critical violations{unchecked}"
        )


class AuditedBrowser:
    """The session's Browser, except that `new_context()` returns contexts the test's AxeAudit watches, whose
    `close()` waits for their checks first. Everything else is the Browser's own."""

    def __init__(self, browser: Browser, audit: AxeAudit) -> None:
        self._browser, self._audit = browser, audit
        self._contexts: list[AuditedContext] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._browser, name)

    async def new_context(self, **options: Any) -> AuditedContext:
        context = await self._browser.new_context(**options)
        await self._audit.watch(context)
        self._contexts.append(audited := AuditedContext(context, self._audit))
        return audited

    async def new_page(self, **options: Any) -> Page:
        return await (await self.new_context(**options)).new_page()

    async def close_contexts(self) -> None:
        for context in self._contexts:
            await context.close()


class AuditedContext:
    """A BrowserContext that, when it closes, first lets the checks of its pages finish."""

    def __init__(self, context: BrowserContext, audit: AxeAudit) -> None:
        self._context, self._audit = context, audit
        self._closed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    async def close(self, **options: Any) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._audit.finish(self._context)
        finally:
            await self._context.close(**options)

    async def __aenter__(self) -> AuditedContext:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


@functools.cache
def _axe_source() -> str:
    return AXE_SCRIPT.read_text(encoding="utf-8")


def _axe_version() -> str:
    match = re.match(r"/\*! axe v(\S+)", _axe_source())
    return f"v{match.group(1)}" if match else "(unknown version)"
