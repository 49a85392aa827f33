"""The time SQL compares against: the database's own `now()`, unless a test clock was injected.

Leases and due times are compared by several processes on several machines; if each compared against its
own clock, one running a minute fast would take jobs whose lease another still holds. So every comparison
and every time the worker writes (a lease's end, a retry's due time, a periodic task's next run) is
`now()` in the database's clock. Tests inject a FrozenClock to move time without sleeping; its time is
then bound as a parameter in the same place, so the SQL is the same statement either way.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, DateTime, Interval, func, literal

from telehealth.lib.clock import Clock, OffsetClock, SystemClock


def database_now(clock: Clock) -> ColumnElement[datetime]:
    """`now()` for the real clock (whatever this process's clock says); an injected clock's time otherwise."""
    if isinstance(clock, SystemClock):
        return func.now(type_=DateTime(timezone=True))
    if isinstance(clock, OffsetClock) and isinstance(clock.base, SystemClock):  # the demo clock: still the database's, moved
        return func.now(type_=DateTime(timezone=True)) + literal(clock.offset, type_=Interval())
    return literal(clock.now(), type_=DateTime(timezone=True))
