"""The demo's movable clock (issue 23 item 11): staff move the embedded demo's time forward on /dev/clock to show
what time does (a held slot lapsing, reminders, the 48-hour interval, batch release, the telemedicine cliff date)
without waiting. Only where `settings.demo_clock_enabled` (never in production; with a DATABASE_URL only when
DEMO_CLOCK=true).

The offset is one row in the database (devtools/models.py), so every process agrees: the process that moves it
sets its own clock at once, and each process follows the row every FOLLOW_EVERY_SECONDS (`follow_offset`), the
separate `worker` process included; the worker's SQL compares against the database's now() plus the offset
(db/clock.py), so its due jobs and periodic tasks run as time moves. Sign-ins are carried along: each live
session's times move with the clock, so nobody is signed out by a jump; TOTP codes are still checked at real
time (lib/clock.authenticator_time), as an authenticator app shows them."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.audit.service import record_audit_event
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock, OffsetClock, utc_now
from telehealth.lib.errors import InvalidInput

logger = logging.getLogger("telehealth.demo_clock")

STEPS: dict[str, timedelta] = {"hour": timedelta(hours=1), "day": timedelta(days=1), "two_days": timedelta(days=2)}
STEP_NAMES = {"hour": "+1 hour", "day": "+1 day", "two_days": "+2 days", "real": "Back to real time"}
LONGEST = timedelta(days=366)  # the table's check: forward only, at most a year
FOLLOW_EVERY_SECONDS = 2.0
TRUST_OWN_MOVE = timedelta(seconds=10)

_MOVE = text("""
    INSERT INTO demo_clock (one_row, offset_seconds, moved_at, moved_by) VALUES (true, :offset, :moved_at, :moved_by)
    ON CONFLICT (one_row) DO UPDATE SET offset_seconds = CASE WHEN :reset THEN 0 ELSE demo_clock.offset_seconds + :step END,
        moved_at = excluded.moved_at, moved_by = excluded.moved_by
    RETURNING offset_seconds
""")  # one statement: two people pressing at once both count, whatever each process believed the offset was
# Live sessions move with the clock (idle and absolute limits, the second factor's and step-up's times).
_CARRY_SESSIONS = text("""
    UPDATE user_session SET last_seen_at = last_seen_at + :by, expires_at = expires_at + :by,
        two_factor_verified_at = two_factor_verified_at + :by, step_up_at = step_up_at + :by
    WHERE revoked_at IS NULL
""")


def demo_clock_of(clock: Clock) -> OffsetClock | None:
    return clock if isinstance(clock, OffsetClock) else None


async def stored_offset(session: AsyncSession) -> timedelta:
    seconds = await session.scalar(text("SELECT offset_seconds FROM demo_clock"))
    return timedelta(seconds=seconds or 0)


async def move_demo_clock(session: AsyncSession, *, clock: OffsetClock, step: str, actor: Actor) -> timedelta:
    """Move the demo's time forward by a STEPS step, or back to real time (`step="real"`); return the new offset.
    Audited as demo_clock.move; the caller's transaction commits it."""
    if step != "real" and step not in STEPS:
        raise InvalidInput(
            "request.invalid", "Choose how far to move the clock.", fields={"step": f"must be one of {', '.join(STEP_NAMES)}"}
        )
    before = await stored_offset(session)
    by = STEPS.get(step, timedelta(0))
    if step != "real" and before + by > LONGEST:
        raise InvalidInput(
            "demo_clock.too_far", "The demo clock moves at most a year ahead; go back to real time first.", fields={"step": "too far ahead"}
        )
    # With no row yet, the first move starts from real time: this step (or nothing, for "real").
    offset = timedelta(
        seconds=await session.scalar(
            _MOVE,
            {
                "offset": int(by.total_seconds()),
                "step": int(by.total_seconds()),
                "reset": step == "real",
                "moved_at": utc_now(),
                "moved_by": actor.user_id,
            },
        )
    )
    if offset != before:
        await session.execute(_CARRY_SESSIONS, {"by": offset - before})
    clock.set_offset(offset)  # this process at once; the others within FOLLOW_EVERY_SECONDS
    clock.moved_here_at = utc_now()
    await record_audit_event(
        session,
        actor=actor,
        action="demo_clock.move",
        resource_type="demo_clock",
        now=clock.now(),
        reason=f"{step}:{int(offset.total_seconds())}s",
    )
    return offset


async def refresh_offset(factory: async_sessionmaker[AsyncSession], clock: OffsetClock) -> None:
    """Set this process's clock to the stored offset. Just after a move made here, a read may still see the row as it
    was before that move committed: for TRUST_OWN_MOVE the move made here stands (then the row wins, even if the
    move was rolled back)."""
    try:
        async with factory() as session:
            stored = await stored_offset(session)
    except Exception:  # the database is starting, or the table not yet made: keep what we have
        logger.debug("demo clock offset not readable yet", exc_info=True)
        return
    if stored != clock.offset and clock.moved_here_at is not None and utc_now() - clock.moved_here_at < TRUST_OWN_MOVE:
        return
    clock.set_offset(stored)


async def follow_offset(factory: async_sessionmaker[AsyncSession], clock: OffsetClock, stop: asyncio.Event) -> None:
    """Keep this process's clock on the stored offset until `stop` (web and worker processes alike)."""
    while not stop.is_set():
        await refresh_offset(factory, clock)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=FOLLOW_EVERY_SECONDS)


def moved_by_words(offset: timedelta) -> str:
    """+2 days 3 hours, for the banner."""
    days, hours, minutes = offset.days, offset.seconds // 3600, offset.seconds % 3600 // 60
    parts = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in ((days, "day"), (hours, "hour"), (minutes, "minute")) if n]
    return "+" + " ".join(parts) if parts else "not moved"


def demo_clock_notice(clock: Clock, zone: str) -> str | None:
    """The banner's words while the demo clock is moved; None at real time (or with any other clock)."""
    demo = demo_clock_of(clock)
    if demo is None or not demo.offset:
        return None
    now: datetime = demo.now()
    return f"Demo time: {now.astimezone(ZoneInfo(zone)):%a %d %b %Y, %H:%M %Z} (moved {moved_by_words(demo.offset)})"
