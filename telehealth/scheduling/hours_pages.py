"""HTML pages of a clinician's own schedule: their calendar of held and booked appointments, their weekly
hours and the days off or extra hours that override them."""

from __future__ import annotations

from datetime import date, time, timedelta
from itertools import groupby
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.guards import requires_role
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.clinicians.models import ClinicianProfile
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.errors import DomainError
from telehealth.lib.forms import attempt, form_fields
from telehealth.scheduling import availability, service
from telehealth.scheduling.models import DateOverride, WeeklyHours

CLINICIAN = [requires_role(Role.PRESCRIBER, Role.THERAPIST)]
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


async def _hours_page(
    db_session: AsyncSession,
    signed_in: SignedIn,
    *,
    today: date,
    lines: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Template:
    if lines is None:
        rows = (
            (
                await db_session.execute(
                    select(WeeklyHours)
                    .where(WeeklyHours.clinician_id == signed_in.user_id)
                    .order_by(col(WeeklyHours.weekday), col(WeeklyHours.starts_at_local))
                )
            )
            .scalars()
            .all()
        )
        lines = "\n".join(f"{WEEKDAYS[r.weekday]} {r.starts_at_local:%H:%M}-{r.ends_at_local:%H:%M}" for r in rows)
    overrides = (
        (
            await db_session.execute(
                select(DateOverride)
                .where(DateOverride.clinician_id == signed_in.user_id, DateOverride.on_date >= today)
                .order_by(col(DateOverride.on_date))
            )
        )
        .scalars()
        .all()
    )
    return Template("scheduling/hours.html", context={"lines": lines, "overrides": overrides, "error": error}, status_code=status_code)


class ClinicianSchedulePagesController(Controller):
    include_in_schema = False

    @get("/clinician/calendar", guards=CLINICIAN)
    async def calendar(
        self,
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
        days: FromQuery[int] = 7,
    ) -> Template:
        profile = await db_session.get(ClinicianProfile, signed_in.user_id)
        zone = profile.timezone if profile else "America/New_York"
        start = clock.now().astimezone(ZoneInfo(zone)).replace(hour=0, minute=0, second=0, microsecond=0)
        entries = await service.clinician_calendar(
            db_session, clinician_id=signed_in.user_id, start=start, end=start + timedelta(days=max(1, min(days, 31)))
        )
        grouped = [
            (label, list(group))
            for label, group in groupby(entries, key=lambda e: e[0].starts_at.astimezone(ZoneInfo(zone)).strftime("%A %d %B"))
        ]
        return Template("scheduling/calendar.html", context={"days": grouped, "zone": zone})

    @get("/clinician/hours", guards=CLINICIAN)
    async def hours_form(
        self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession], clock: NamedDependency[Clock]
    ) -> Template:
        return await _hours_page(db_session, signed_in, today=clock.now().date())

    @post("/clinician/overrides", guards=CLINICIAN)
    async def add_override(
        self,
        request: Request,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        fields = await form_fields(request, "on_date", "kind", "start", "end")
        try:
            on_date = date.fromisoformat(fields["on_date"])
            start = time.fromisoformat(fields["start"]) if fields["start"] else None
            end = time.fromisoformat(fields["end"]) if fields["end"] else None
        except ValueError:
            return await _hours_page(
                db_session,
                signed_in,
                today=clock.now().date(),
                error="Give a date, and for extra hours a start and an end.",
                status_code=422,
            )
        added = await attempt(
            db_session,
            availability.add_date_override(
                db_session,
                clinician_id=signed_in.user_id,
                on_date=on_date,
                kind=fields["kind"],
                start=start,
                end=end,
                actor=actor,
                now=clock.now(),
            ),
        )
        if isinstance(added, DomainError):
            return await _hours_page(db_session, signed_in, today=clock.now().date(), error=added.detail, status_code=added.status_code)
        return Redirect(path="/clinician/hours")

    @post("/clinician/hours", guards=CLINICIAN)
    async def save_hours(
        self,
        request: Request,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        lines = (await form_fields(request, "lines", max_length=4000))["lines"]
        ranges, problems = [], []
        for number, line in enumerate(filter(None, (raw.strip() for raw in lines.splitlines())), start=1):
            try:
                day, span = line.split(maxsplit=1)
                start, end = (time.fromisoformat(part.strip()) for part in span.split("-"))
                ranges.append(availability.WeeklyRange(WEEKDAYS.index(day.capitalize()), start, end))
            except ValueError:
                problems.append(f"Line {number} should look like: Monday 09:00-12:00")
        if problems:
            return await _hours_page(
                db_session, signed_in, today=clock.now().date(), lines=lines, error=" ".join(problems), status_code=422
            )
        saved = await attempt(
            db_session,
            availability.replace_weekly_hours(db_session, clinician_id=signed_in.user_id, ranges=ranges, actor=actor, now=clock.now()),
        )
        if isinstance(saved, DomainError):
            error = f"{saved.detail} {'; '.join(f'{k} {v}' for k, v in saved.fields.items())}"
            return await _hours_page(db_session, signed_in, today=clock.now().date(), lines=lines, error=error, status_code=422)
        return Redirect(path="/clinician/hours")
