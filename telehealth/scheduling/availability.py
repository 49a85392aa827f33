"""Clinicians keep their own hours: weekly ranges in their zone, date overrides, per-type settings."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from telehealth.audit.service import record_audit_event
from telehealth.lib.actors import Actor
from telehealth.lib.errors import InvalidInput
from telehealth.scheduling.calendars import DEFAULT_DURATIONS
from telehealth.scheduling.models import AppointmentTypeSettings, DateOverride, WeeklyHours
from telehealth.scheduling.states import AppointmentType


@dataclass(frozen=True)
class WeeklyRange:
    weekday: int
    start: time
    end: time


async def replace_weekly_hours(
    session: AsyncSession, *, clinician_id: uuid.UUID, ranges: list[WeeklyRange], actor: Actor, now: datetime
) -> None:
    """Set the whole week at once (several ranges a day allowed; overlapping ranges on a day are refused)."""
    problems: dict[str, str] = {}
    for index, item in enumerate(ranges):
        if not 0 <= item.weekday <= 6:
            problems[f"ranges[{index}].weekday"] = "must be 0 (Monday) to 6 (Sunday)"
        if item.start >= item.end:
            problems[f"ranges[{index}].end"] = "must be after the start"
    by_day: dict[int, list[WeeklyRange]] = {}
    for item in ranges:
        by_day.setdefault(item.weekday, []).append(item)
    for day, items in by_day.items():
        items.sort(key=lambda r: r.start)
        if any(a.end > b.start for a, b in itertools.pairwise(items)):
            problems[f"weekday {day}"] = "has overlapping ranges"
    if problems:
        raise InvalidInput("availability.invalid", "Some hours need another look.", fields=problems)
    await session.execute(delete(WeeklyHours).where(col(WeeklyHours.clinician_id) == clinician_id))
    for item in ranges:
        session.add(WeeklyHours(clinician_id=clinician_id, weekday=item.weekday, starts_at_local=item.start, ends_at_local=item.end))
    await record_audit_event(
        session, actor=actor, action="availability.set_weekly", resource_type="clinician", resource_id=clinician_id, now=now
    )


async def add_date_override(
    session: AsyncSession,
    *,
    clinician_id: uuid.UUID,
    on_date: date,
    kind: str,
    start: time | None,
    end: time | None,
    actor: Actor,
    now: datetime,
) -> None:
    """A day off, or extra hours on one date."""
    if kind not in ("off", "extra"):
        raise InvalidInput("availability.invalid", "Choose a day off or extra hours.", fields={"kind": "must be off or extra"})
    if kind == "extra" and (start is None or end is None or start >= end):
        raise InvalidInput("availability.invalid", "Extra hours need a start before their end.", fields={"end": "must be after the start"})
    session.add(
        DateOverride(
            clinician_id=clinician_id,
            on_date=on_date,
            kind=kind,
            starts_at_local=start if kind == "extra" else None,
            ends_at_local=end if kind == "extra" else None,
        )
    )
    await record_audit_event(
        session, actor=actor, action="availability.add_override", resource_type="clinician", resource_id=clinician_id, now=now
    )


async def save_type_settings(
    session: AsyncSession,
    *,
    clinician_id: uuid.UUID,
    appointment_type: AppointmentType,
    values: dict[str, int | None],
    actor: Actor,
    now: datetime,
) -> None:
    limits = {
        "duration_minutes": (10, 240),
        "buffer_before_minutes": (0, 120),
        "buffer_after_minutes": (0, 120),
        "minimum_notice_minutes": (0, 20160),
        "horizon_days": (1, 180),
        "step_minutes": (5, 120),
    }
    problems = {
        name: f"must be between {low} and {high}"
        for name, (low, high) in limits.items()
        if (value := values.get(name)) is not None and not low <= value <= high
    }
    if (cap := values.get("max_per_day")) is not None and not 1 <= cap <= 50:
        problems["max_per_day"] = "must be between 1 and 50"
    if problems:
        raise InvalidInput("availability.invalid", "Some settings need another look.", fields=problems)
    row = {key: value for key, value in values.items() if value is not None or key == "max_per_day"}
    first_time = {"duration_minutes": DEFAULT_DURATIONS[appointment_type], **row}
    await session.execute(
        insert(AppointmentTypeSettings)
        .values(clinician_id=clinician_id, appointment_type=appointment_type.value, **first_time)
        .on_conflict_do_update(index_elements=["clinician_id", "appointment_type"], set_=row)
    )
    await record_audit_event(
        session, actor=actor, action="availability.set_type_settings", resource_type="clinician", resource_id=clinician_id, now=now
    )
