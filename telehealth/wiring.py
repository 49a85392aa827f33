"""What the web process and the worker build alike from the settings: the mailer and the clock. Both the app
factory (asgi.py) and the worker command (cli.py) use them, so they sit below both."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.lib.clock import Clock, OffsetClock, SystemClock, forget_demo_offset
from telehealth.notifications.mailer import DatabaseMailbox, Mailer, SmtpMailer
from telehealth.settings import Settings


def make_mailer(settings: Settings, app_state_factory: async_sessionmaker[AsyncSession]) -> Mailer:
    if settings.smtp_url:
        return SmtpMailer(settings.smtp_url)
    return DatabaseMailbox(app_state_factory)


def make_clock(settings: Settings, clock: Clock | None = None) -> Clock:
    """The app's clock: the one given (tests) or the system's, made movable where the demo clock is enabled."""
    forget_demo_offset()  # a previous app's moved clock in this process (tests) does not carry over
    clock = clock or SystemClock()
    if settings.demo_clock_enabled and not isinstance(clock, OffsetClock):
        return OffsetClock(clock)
    return clock
