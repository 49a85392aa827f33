"""/dev/clock: the demo's time and the buttons that move it (devtools/demo_clock.py). Signed-in staff only; a
404 for everyone wherever the demo clock is off (production always; a DATABASE_URL without DEMO_CLOCK=true)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.guards import requires_role
from telehealth.accounts.roles import STAFF_ROLES
from telehealth.devtools.demo_clock import STEP_NAMES, demo_clock_of, move_demo_clock, moved_by_words
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.errors import DomainError, NotFound
from telehealth.lib.forms import attempt, form_fields

STAFF = [requires_role(*STAFF_ROLES)]


async def demo_clock_available(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Runs before the role guard: where the demo clock is off, the page does not exist for anyone."""
    state = connection.app.state
    if not state.settings.demo_clock_enabled or demo_clock_of(state.clock) is None:
        raise NotFound("not_found", "There is nothing at this address.")


def _page(clock: Clock, *, error: str | None = None, moved: str | None = None) -> Template:
    demo = demo_clock_of(clock)
    assert demo is not None  # demo_clock_available
    return Template(
        "devtools/clock.html",
        context={
            "demo_now": demo.now(),
            "real_now": demo.base.now(),
            "offset": demo.offset,
            "moved_words": moved_by_words(demo.offset),
            "steps": STEP_NAMES,
            "error": error,
            "moved": moved,
        },
        status_code=422 if error else 200,
    )


class DemoClockController(Controller):
    path = "/dev/clock"
    include_in_schema = False
    guards = [demo_clock_available]

    @get("/", guards=STAFF)
    async def show(self, clock: NamedDependency[Clock], moved: FromQuery[str | None] = None) -> Template:
        return _page(clock, moved=STEP_NAMES.get(moved or ""))

    @post("/", guards=STAFF)
    async def move(
        self,
        request: Request,
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        step = (await form_fields(request, "step"))["step"]
        demo = demo_clock_of(clock)
        assert demo is not None  # demo_clock_available
        outcome = await attempt(db_session, move_demo_clock(db_session, clock=demo, step=step, actor=actor))
        if isinstance(outcome, DomainError):
            return _page(clock, error=outcome.detail)
        return Redirect(path=f"/dev/clock?moved={step}")
