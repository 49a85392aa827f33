"""An injectable clock, so expiries, reminders and the 48 h rules are tested without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


def utc_now() -> datetime:
    return datetime.now(UTC)


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return utc_now()


class FrozenClock:
    """A clock that moves only when told to (tests, demos)."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._at = at

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> None:
        self._at += delta

    def set(self, at: datetime) -> None:
        self._at = at


class OffsetClock:
    """The embedded demo's movable clock: another clock (the system's) plus an offset that a staff member sets on
    /dev/clock (telehealth/devtools/demo_clock.py), so holds lapsing, reminders, the 48-hour interval, batch
    release and the cliff date can be shown without waiting. The offset lives in the database (one row), so the
    web process and a separate worker process agree; each process follows it (demo_clock.follow_offset)."""

    def __init__(self, base: Clock | None = None, offset: timedelta = timedelta(0)) -> None:
        self.base = base or SystemClock()
        self._offset = offset
        self.moved_here_at: datetime | None = None  # real time of this process's last move (demo_clock.refresh_offset)
        _note_moved(self._offset)

    @property
    def offset(self) -> timedelta:
        return self._offset

    def set_offset(self, offset: timedelta) -> None:
        self._offset = offset
        _note_moved(offset)

    def now(self) -> datetime:
        return self.base.now() + self._offset


# An authenticator app shows codes for the real time, whatever the demo clock says: the two-factor check asks
# `authenticator_time` (a process has one app clock; create_app notes a fresh one, so a test's moved clock does
# not outlive its app).
_moved_by = timedelta(0)


def _note_moved(offset: timedelta) -> None:
    global _moved_by
    _moved_by = offset


def forget_demo_offset() -> None:
    _note_moved(timedelta(0))


def authenticator_time(now: datetime) -> datetime:
    """The time to check a TOTP code at: `now` less the demo clock's offset (zero unless the demo clock is moved)."""
    return now - _moved_by
