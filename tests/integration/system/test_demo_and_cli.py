"""The demo clinic is idempotent and complete; create-staff makes an account that must enrol two-factor."""

from __future__ import annotations

import asyncio

from click.testing import CliRunner
from sqlalchemy import func, select

from telehealth.accounts.models import CareTeamMember, UserAccount
from telehealth.clinicians.models import DeaRegistration, StateLicense
from telehealth.db.engine import transaction
from telehealth.demo import DEMO_WAITING, SERVED_STATES, seed_demo
from telehealth.dosing.models import Sitter
from telehealth.prescribing.models import Pharmacy, PharmacyStaff, TrochePlan
from telehealth.scheduling.models import WeeklyHours
from telehealth.waitlist.models import WaitlistEntry


async def test_seed_demo_twice_changes_nothing(session_factory, settings, clock):
    for _ in range(2):
        async with transaction(session_factory) as session:
            sign_ins = await seed_demo(session, now=clock.now(), settings=settings)
    assert {item.role.value for item in sign_ins} == {"patient", "prescriber", "therapist", "pharmacist", "coordinator"}
    assert all(item.otpauth_uri for item in sign_ins if item.role.value != "patient")
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(UserAccount)) == 6  # two patients: one new, one in a home program
        assert await session.scalar(select(func.count()).select_from(TrochePlan).where(TrochePlan.status == "active")) == 1
        assert await session.scalar(select(func.count()).select_from(Sitter).where(Sitter.status == "confirmed")) == 1
        assert (
            await session.scalar(select(func.count()).select_from(CareTeamMember)) == 3
        )  # the demo patient: prescriber, therapist; the home patient: prescriber
        # The demo pharmacist works for the demo pharmacy (once, however often the seed runs).
        staff = (
            await session.execute(
                select(UserAccount.email, Pharmacy.name)
                .join(PharmacyStaff, PharmacyStaff.user_id == UserAccount.id)
                .join(Pharmacy, Pharmacy.id == PharmacyStaff.pharmacy_id)
            )
        ).all()
        assert [tuple(row) for row in staff] == [("pharmacist@demo.example", "Green Mountain Compounding (demo)")]
        dea_states = set((await session.execute(select(DeaRegistration.state))).scalars())
        prescriber_license_states = set(
            (await session.execute(select(StateLicense.state).where(StateLicense.license_type == "MD"))).scalars()
        )
    assert dea_states == prescriber_license_states == set(SERVED_STATES)
    async with session_factory() as session:
        waiting = await session.scalar(select(func.count()).select_from(WaitlistEntry).where(WaitlistEntry.status == "waiting"))
    assert waiting == len(DEMO_WAITING)  # seeded once, not twice
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(WeeklyHours)) == 15
    assert len(SERVED_STATES) >= 3


async def test_create_staff_command(database_url, session_factory, monkeypatch):
    from telehealth import cli
    from telehealth.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        args = ["--email", "NewRx@Example.org", "--name", "New Prescriber", "--role", "prescriber", "--password", "a long staff password"]
        made = await asyncio.to_thread(CliRunner().invoke, cli.create_staff_command, args)
        again = await asyncio.to_thread(CliRunner().invoke, cli.create_staff_command, args)
        weak = await asyncio.to_thread(
            CliRunner().invoke,
            cli.create_staff_command,
            ["--email", "b@example.org", "--name", "B", "--role", "coordinator", "--password", "short"],
        )
    finally:
        get_settings.cache_clear()
    assert made.exit_code == 0, made.output
    assert again.exit_code == 1 and "already exists" in again.output
    assert weak.exit_code == 1 and "password must be at least 12 characters" in weak.output
    async with session_factory() as session:
        user = (await session.execute(select(UserAccount).where(UserAccount.email == "newrx@example.org"))).scalar_one()
    assert (user.role, user.totp_confirmed_at) == ("prescriber", None)
