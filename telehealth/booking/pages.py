"""HTML pages for booking: patients book, reschedule and cancel (with the price, and the late fee shown before
they confirm); therapists book follow-ups for their own patients. (The clinician's calendar and weekly hours
are scheduling/hours_pages.py.)"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import quote_plus
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.authz import load_patient_for, own_patient_record, visible_patients_clause
from telehealth.accounts.guards import requires_role
from telehealth.accounts.models import Patient, UserAccount
from telehealth.accounts.roles import Role
from telehealth.accounts.sessions import SignedIn
from telehealth.billing.settlement import booking_terms, cancellation_quote
from telehealth.booking import changes
from telehealth.booking import service as booking
from telehealth.clinicians.models import ClinicianProfile
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.errors import DomainError
from telehealth.lib.forms import attempt, form_fields
from telehealth.scheduling import day_picker, service
from telehealth.scheduling.states import AppointmentType
from telehealth.settings import Settings

PATIENT = [requires_role(Role.PATIENT)]


BOOKABLE = {"consult": AppointmentType.CONSULT, "integration": AppointmentType.INTEGRATION, "reassessment": AppointmentType.REASSESSMENT}


@dataclass(frozen=True)
class DayChoice:
    """The day picker's part of a page: the open days, the chosen one's times, and a sentence if `?day=` was wrong."""

    days: list[day_picker.OpenDay]
    day: date | None
    times: list[service.Slot]
    problem: str | None


def _choose_day(slots: list[service.Slot], zone: ZoneInfo, *, today: date, raw_day: str | None) -> DayChoice:
    try:
        day = day_picker.parse_day(raw_day, today=today)
    except day_picker.DayNotShown as wrong:
        return DayChoice(day_picker.open_days(slots, zone), None, [], str(wrong))
    return DayChoice(day_picker.open_days(slots, zone), day, day_picker.times_on(slots, zone, day) if day else [], None)


def _local_day_of(starts_at: str, zone: ZoneInfo) -> str | None:
    """The day of a time the patient chose, to show that day again when the booking is refused."""
    try:
        return datetime.fromisoformat(starts_at).astimezone(zone).date().isoformat()
    except (ValueError, OverflowError):
        return None


async def _slot_page(
    db_session: AsyncSession,
    signed_in: SignedIn,
    *,
    now: datetime,
    settings: Settings,
    clinician_id: uuid.UUID | None = None,
    appointment_id: uuid.UUID | None = None,
    error: str | None = None,
    status_code: int = 200,
    kind: AppointmentType = AppointmentType.CONSULT,
    raw_day: str | None = None,
) -> Template:
    """Days first (each with its number of open times), then the chosen day's times, under the price and the
    cancellation rule; a `?day=` that is not one of the days shown answers 400 with the days to choose from."""
    patient = await own_patient_record(db_session, viewer=signed_in)
    zone = ZoneInfo(patient.timezone)
    today, window_start, window_end = day_picker.window(now, zone)
    slots = await service.find_slots(
        db_session,
        patient=patient,
        appointment_type=kind,
        window_start=window_start,
        window_end=window_end,
        now=now,
        clinician_id=clinician_id,
    )
    if appointment_id is not None:  # rescheduling keeps the clinician; their own current slot is not offered
        slots = [slot for slot in slots if slot.clinician_id == clinician_id]
    choice = _choose_day(slots, zone, today=today, raw_day=raw_day)
    if choice.problem and error is None:
        error, status_code = choice.problem, 400
    terms = await booking_terms(db_session, patient_id=patient.id, appointment_type=kind, settings=settings)
    day_path = f"/appointments/{appointment_id}/reschedule?day=" if appointment_id else f"/appointments/book?type={kind.value}&day="
    return Template(
        "scheduling/book.html",
        context={
            "choice": choice,
            "day_path": day_path,
            "zone": patient.timezone,
            "appointment_id": appointment_id,
            "error": error,
            "kind": kind.value,
            "terms": terms,
        },
        status_code=status_code,
    )


class BookingPagesController(Controller):
    include_in_schema = False

    @get("/appointments", guards=PATIENT)
    async def mine(
        self,
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
        done: FromQuery[str | None] = None,
    ) -> Template:
        patient = await own_patient_record(db_session, viewer=signed_in)
        appointments = [
            a for a in await service.patient_appointments(db_session, patient=patient, since=clock.now()) if a.status in ("held", "booked")
        ]
        return Template("scheduling/mine.html", context={"appointments": appointments, "zone": patient.timezone, "done": done})

    @get("/appointments/book", guards=PATIENT)
    async def book_form(
        self,
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        type: FromQuery[str] = "consult",
        day: FromQuery[str | None] = None,
    ) -> Template:
        """The open days; with `?day=YYYY-MM-DD` (in the patient's zone) that day's times too."""
        return await _slot_page(
            db_session, signed_in, now=clock.now(), settings=settings, kind=BOOKABLE.get(type, AppointmentType.CONSULT), raw_day=day
        )

    @post("/appointments/book", guards=PATIENT)
    async def book(
        self,
        request: Request,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        fields = await form_fields(request, "clinician_id", "starts_at", "type")
        kind = BOOKABLE.get(fields["type"], AppointmentType.CONSULT)
        patient = await own_patient_record(db_session, viewer=signed_in)
        try:
            clinician_id, starts_at = uuid.UUID(fields["clinician_id"]), datetime.fromisoformat(fields["starts_at"])
        except ValueError:
            return await _slot_page(
                db_session,
                signed_in,
                now=clock.now(),
                settings=settings,
                error="Choose one of the times below.",
                status_code=422,
                kind=kind,
            )
        booked = await attempt(
            db_session,
            booking.book_for_patient(
                db_session,
                patient=patient,
                clinician_id=clinician_id,
                appointment_type=kind,
                starts_at=starts_at,
                hold=False,
                actor=actor,
                now=clock.now(),
                settings=settings,
            ),
        )
        if isinstance(booked, DomainError):
            return await _slot_page(
                db_session,
                signed_in,
                now=clock.now(),
                settings=settings,
                error=booked.detail,
                status_code=booked.status_code,
                kind=kind,
                raw_day=_local_day_of(fields["starts_at"], ZoneInfo(patient.timezone)),
            )
        appointment, fee = booked
        if fee is not None:  # held while the patient reads the policy and pays; booked when Stripe confirms
            return Redirect(path=f"/billing/appointments/{appointment.id}/pay")
        return Redirect(path="/appointments?done=booked")

    @get("/appointments/{appointment_id:uuid}/cancel", guards=PATIENT)
    async def cancel_form(
        self,
        appointment_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template:
        """Before cancelling, the patient reads what happens to their money, in dollars."""
        patient = await own_patient_record(db_session, viewer=signed_in)
        appointment = await service.patient_appointment(db_session, patient=patient, appointment_id=appointment_id)
        quote = await cancellation_quote(db_session, appointment, by_patient=True, now=clock.now(), settings=settings)
        return Template("scheduling/confirm_cancel.html", context={"appointment": appointment, "quote": quote, "zone": patient.timezone})

    @get("/appointments/{appointment_id:uuid}/reschedule", guards=PATIENT)
    async def reschedule_form(
        self,
        appointment_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        day: FromQuery[str | None] = None,
    ) -> Template:
        patient = await own_patient_record(db_session, viewer=signed_in)
        appointment = await service.patient_appointment(db_session, patient=patient, appointment_id=appointment_id)
        return await _slot_page(
            db_session,
            signed_in,
            now=clock.now(),
            settings=settings,
            clinician_id=appointment.clinician_id,
            appointment_id=appointment.id,
            kind=AppointmentType(appointment.appointment_type),
            raw_day=day,
        )

    @post("/appointments/{appointment_id:uuid}/change", guards=PATIENT)
    async def change(
        self,
        request: Request,
        appointment_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        """Cancel (no starts_at) or move (starts_at); inside 24 h the page asks to accept the fee first."""
        fields = await form_fields(request, "starts_at", "accept_late_fee")
        patient = await own_patient_record(db_session, viewer=signed_in)
        appointment = await changes.load_for_change(db_session, appointment_id=appointment_id, viewer=signed_in, patient=patient)
        accept = fields["accept_late_fee"] == "yes"
        if fields["starts_at"]:
            try:
                new_start = datetime.fromisoformat(fields["starts_at"])
            except ValueError:
                new_start = clock.now()  # refused below as not open
            work = changes.reschedule(
                db_session,
                appointment,
                new_start=new_start,
                by_patient=True,
                accept_late_fee=accept,
                actor=actor,
                now=clock.now(),
                settings=settings,
            )
        else:
            work = changes.cancel(
                db_session, appointment, by_patient=True, accept_late_fee=accept, actor=actor, now=clock.now(), settings=settings
            )
        result = await attempt(db_session, work)
        if isinstance(result, DomainError):
            if result.code == "appointment.late_fee_applies":
                return Template(
                    "scheduling/confirm_fee.html",
                    context={"appointment_id": appointment_id, "starts_at": fields["starts_at"], "detail": result.detail},
                )
            return await _slot_page(
                db_session,
                signed_in,
                now=clock.now(),
                settings=settings,
                clinician_id=appointment.clinician_id,
                appointment_id=appointment_id,
                error=result.detail,
                status_code=result.status_code,
                kind=AppointmentType(appointment.appointment_type),
                raw_day=_local_day_of(fields["starts_at"], ZoneInfo(patient.timezone)) if fields["starts_at"] else None,
            )
        return Redirect(path=f"/appointments?done={'moved' if fields['starts_at'] else 'cancelled'}")


class FollowUpPagesController(Controller):
    """Therapists book integration follow-ups for their own patients, from their own hours."""

    include_in_schema = False
    guards = [requires_role(Role.THERAPIST)]

    @get("/clinician/follow-ups")
    async def patients(self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession]) -> Template:
        rows = await db_session.execute(
            select(Patient.id, UserAccount.full_name)
            .join(UserAccount, col(UserAccount.id) == Patient.user_id)
            .where(visible_patients_clause(signed_in))
            .order_by(UserAccount.full_name)
        )
        return Template("scheduling/follow_up_patients.html", context={"patients": rows.all()})

    @get("/clinician/follow-ups/{patient_id:uuid}")
    async def slots(
        self,
        patient_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        error: FromQuery[str | None] = None,
        day: FromQuery[str | None] = None,
    ) -> Template:
        """The open days in the therapist's own hours and zone; with `?day=` that day's times, and what the patient pays."""
        patient = await load_patient_for(
            db_session, viewer=signed_in, patient_id=patient_id, actor=actor, now=clock.now(), purpose="follow_up.slots"
        )
        profile = await db_session.get(ClinicianProfile, signed_in.user_id)
        zone = ZoneInfo(profile.timezone if profile else "America/New_York")
        today, window_start, window_end = day_picker.window(clock.now(), zone)
        found = await service.find_slots(
            db_session,
            patient=patient,
            appointment_type=AppointmentType.INTEGRATION,
            window_start=window_start,
            window_end=window_end,
            now=clock.now(),
            clinician_id=signed_in.user_id,
        )
        choice = _choose_day(found, zone, today=today, raw_day=day)
        terms = await booking_terms(db_session, patient_id=patient.id, appointment_type=AppointmentType.INTEGRATION, settings=settings)
        user = await db_session.get(UserAccount, patient.user_id)
        return Template(
            "scheduling/follow_up_slots.html",
            context={
                "choice": choice,
                "terms": terms,
                "day_path": f"/clinician/follow-ups/{patient.id}?day=",
                "zone": str(zone),
                "patient_id": patient.id,
                "patient_name": user.full_name if user else "",
                "error": choice.problem or error,
            },
            status_code=400 if choice.problem else 200,
        )

    @post("/clinician/follow-ups/{patient_id:uuid}")
    async def book(
        self,
        request: Request,
        patient_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Redirect:
        patient = await load_patient_for(
            db_session, viewer=signed_in, patient_id=patient_id, actor=actor, now=clock.now(), purpose="follow_up.book"
        )
        therapist = await db_session.get(UserAccount, signed_in.user_id)
        assert therapist is not None
        try:
            starts_at = datetime.fromisoformat((await form_fields(request, "starts_at"))["starts_at"])
        except ValueError:
            return Redirect(path=f"/clinician/follow-ups/{patient_id}?error=Choose+one+of+the+times")
        booked = await attempt(
            db_session,
            booking.book_follow_up(
                db_session, therapist=therapist, patient=patient, starts_at=starts_at, actor=actor, now=clock.now(), settings=settings
            ),
        )
        if isinstance(booked, DomainError):
            profile = await db_session.get(ClinicianProfile, signed_in.user_id)
            day = _local_day_of(starts_at.isoformat(), ZoneInfo(profile.timezone if profile else "America/New_York"))  # that day again
            return Redirect(path=f"/clinician/follow-ups/{patient_id}?day={day or ''}&error={quote_plus(booked.detail)}")
        return Redirect(path="/clinician/calendar")
