"""The demo clinic: one account per role, a prescriber licensed and DEA-registered in four states, a
therapist on the demo patient's care team, the pharmacist in the demo pharmacy, and a second patient already
in a home program (demo_home.py). Idempotent: running it again changes nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.models import Patient, UserAccount
from telehealth.accounts.roles import STAFF_ROLES, Role
from telehealth.accounts.security import new_totp_secret, totp_uri
from telehealth.accounts.service import create_account, find_user_by_email
from telehealth.accounts.totp_secrets import TotpKeyring, seal, unseal
from telehealth.care_teams import service as care_teams
from telehealth.clinicians.models import ClinicianProfile, DeaRegistration, StateLicense
from telehealth.demo_home import seed_home_program
from telehealth.lib.actors import Actor
from telehealth.prescribing.models import Pharmacy
from telehealth.prescribing.pharmacy_staff import assign_pharmacy, pharmacy_of
from telehealth.scheduling.models import WeeklyHours
from telehealth.settings import Settings
from telehealth.waitlist.models import WaitlistEntry
from telehealth.waitlist.states import EntryStatus

DEMO_PASSWORD = "demo-password-2026"
DEMO_ACCOUNTS: dict[Role, tuple[str, str]] = {
    Role.PATIENT: ("patient@demo.example", "Alex Rivera"),
    Role.PRESCRIBER: ("prescriber@demo.example", "Dr. Morgan Lee"),
    Role.THERAPIST: ("therapist@demo.example", "Sam Okafor, LCSW"),
    Role.PHARMACIST: ("pharmacist@demo.example", "Jordan Patel, PharmD"),
    Role.COORDINATOR: ("coordinator@demo.example", "Casey Nguyen"),
}
SERVED_STATES = ("NY", "NJ", "MA", "CA")


@dataclass(frozen=True)
class DemoSignIn:
    role: Role
    email: str
    password: str
    otpauth_uri: str | None


def demo_dea_number(serial: int) -> str:
    """A DEA number whose check digit is right (six digits, then the check), so the demo's credentials
    pass the same validation the coordinator's page applies."""
    digits = [int(d) for d in f"{serial:06d}"]
    check = (digits[0] + digits[2] + digits[4] + 2 * (digits[1] + digits[3] + digits[5])) % 10
    return f"BL{serial:06d}{check}"


async def seed_demo(session: AsyncSession, *, now: datetime, settings: Settings) -> list[DemoSignIn]:
    actor = Actor.system()
    keyring = TotpKeyring.from_settings(settings)
    users: dict[Role, UserAccount] = {}
    for role, (email, name) in DEMO_ACCOUNTS.items():
        user = await find_user_by_email(session, email)
        if user is None:
            user = await create_account(
                session,
                email=email,
                full_name=name,
                role=role,
                password=DEMO_PASSWORD,
                actor=actor,
                now=now,
                settings=settings,
                email_verified=True,
            )
        if role in STAFF_ROLES and user.totp_confirmed_at is None:
            user.totp_secret = seal(new_totp_secret(), user_id=user.id, keyring=keyring)
            user.totp_confirmed_at = now
        users[role] = user
    await session.flush()

    today = now.date()
    prescriber, therapist = users[Role.PRESCRIBER], users[Role.THERAPIST]
    for clinician, zone in ((prescriber, "America/New_York"), (therapist, "America/Chicago")):
        if await session.get(ClinicianProfile, clinician.id) is None:
            session.add(
                ClinicianProfile(user_id=clinician.id, npi="1234567893" if clinician is prescriber else None, timezone=zone, created_at=now)
            )
    if not (await session.execute(select(StateLicense).where(StateLicense.clinician_id == prescriber.id))).first():
        for index, state in enumerate(SERVED_STATES):
            # California's credentials expire within 30 days, so the expiry warnings have something to show.
            expires = today + timedelta(days=20) if state == "CA" else date(today.year + 2, 6, 30)
            session.add(
                StateLicense(
                    clinician_id=prescriber.id, state=state, number=f"{state}-MD-{40210 + index}", license_type="MD", expires_on=expires
                )
            )
            session.add(
                DeaRegistration(
                    clinician_id=prescriber.id,
                    state=state,
                    number=demo_dea_number(123450 + index),
                    schedules="II,IIN,III,IIIN,IV,V",
                    expires_on=expires,
                )
            )
        for index, state in enumerate(SERVED_STATES[:3]):
            session.add(
                StateLicense(
                    clinician_id=therapist.id,
                    state=state,
                    number=f"{state}-LCSW-{7700 + index}",
                    license_type="LCSW",
                    expires_on=date(today.year + 2, 3, 31),
                )
            )
    patient = (await session.execute(select(Patient).where(Patient.user_id == users[Role.PATIENT].id))).scalar_one()
    patient.state_of_residence = patient.state_of_residence or "NY"
    for clinician in (prescriber, therapist):  # as a booked consult and integration session would have made it
        await care_teams.join(session, patient_id=patient.id, clinician_id=clinician.id, because="seed", now=now)
    if (await session.execute(select(Pharmacy).limit(1))).first() is None:
        session.add(
            Pharmacy(
                name="Green Mountain Compounding (demo)",
                phone="+18025550111",
                address="1 Mill Street, Burlington, VT 05401",
                created_at=now,
            )
        )
        await session.flush()
    if await pharmacy_of(session, users[Role.PHARMACIST].id) is None:  # the demo pharmacist works for the demo pharmacy
        pharmacy = (await session.execute(select(Pharmacy).order_by(col(Pharmacy.created_at), Pharmacy.name).limit(1))).scalar_one()
        await assign_pharmacy(session, pharmacist_id=users[Role.PHARMACIST].id, pharmacy_id=pharmacy.id, actor=actor, now=now)
    await _seed_waiting_list(session, now=now)
    await _seed_hours(session, prescriber_id=prescriber.id, therapist_id=therapist.id)
    await session.flush()
    home = await seed_home_program(
        session, prescriber=prescriber, coordinator=users[Role.COORDINATOR], password=DEMO_PASSWORD, now=now, settings=settings
    )
    await session.flush()
    return [DemoSignIn(role=Role.PATIENT, email=home.email, password=DEMO_PASSWORD, otpauth_uri=None)] + [
        DemoSignIn(
            role=role,
            email=user.email,
            password=DEMO_PASSWORD,
            otpauth_uri=totp_uri(unseal(user.totp_secret, user_id=user.id, keyring=keyring), email=user.email, issuer=settings.clinic_name)
            if user.totp_secret
            else None,
        )
        for role, user in users.items()
    ]


DEMO_WAITING = (("Jamie", "NY"), ("Priya", "NY"), ("Luis", "NY"), ("Mei", "NJ"), ("Tom", "CA"), ("Ada", "TX"))


async def _seed_waiting_list(session: AsyncSession, *, now: datetime) -> None:
    """A few confirmed people on the list, so the coordinator's queues have something to show."""
    if (await session.execute(select(WaitlistEntry.id).limit(1))).first():
        return
    for index, (first_name, state) in enumerate(DEMO_WAITING):
        joined = now - timedelta(days=30 - index)
        session.add(
            WaitlistEntry(
                status=EntryStatus.WAITING,
                state=state,
                first_name=first_name,
                last_name="Demo",
                email=f"{first_name.lower()}.waiting@demo.example",
                date_of_birth=date(1980 + index, 1, 15),
                consent_to_contact=True,
                joined_at=joined,
                confirmed_at=joined + timedelta(minutes=10),
            )
        )


async def _seed_hours(session: AsyncSession, *, prescriber_id: uuid.UUID, therapist_id: uuid.UUID) -> None:
    """Weekday hours in each clinician's own zone, so the demo has slots to book."""
    if (await session.execute(select(WeeklyHours.id).where(WeeklyHours.clinician_id == prescriber_id).limit(1))).first():
        return
    for weekday in range(5):
        session.add(WeeklyHours(clinician_id=prescriber_id, weekday=weekday, starts_at_local=time(9), ends_at_local=time(12)))
        session.add(WeeklyHours(clinician_id=prescriber_id, weekday=weekday, starts_at_local=time(13), ends_at_local=time(17)))
        session.add(WeeklyHours(clinician_id=therapist_id, weekday=weekday, starts_at_local=time(10), ends_at_local=time(18)))
