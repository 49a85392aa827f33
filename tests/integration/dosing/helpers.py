"""A patient with an active plan (batch 1 delivered, the rest held), a confirmed sitter (verified by a
coordinator through the API), and the steps of a home session through the real API: schedule, check in,
the sitter's presence (from the sitter's own device: another address and browser, no patient cookie),
unlock, report."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from litestar.testing.transport import TestClientTransport
from sqlalchemy import text

from telehealth.accounts.roles import Role
from telehealth.db.engine import transaction
from telehealth.prescribing.models import Encounter, Pharmacy, PlanBatch, TrochePlan
from tests.helpers import Person, csrf_headers, join_care_team, make_person, sign_in
from tests.integration.billing.helpers import insert_appointment
from tests.integration.scheduling.helpers import screened_patient

GOOD_CHECK_IN = {
    "systolic": 122,
    "diastolic": 78,
    "pulse": 72,
    "mood": 6,
    "phq9_item9": 0,
    "fasted_two_hours": True,
    "no_alcohol_or_sedatives": True,
}
GOOD_REPORT = {"completed": True, "troches_used": 2, "nausea": True, "dissociation": 4}
SITTER = {"full_name": "Sam Rivers", "email": "sam@example.org", "relationship": "partner", "phone": "+18025550199"}
END_LINK_SUBJECT = "Your link to close"
OBSERVATION = timedelta(minutes=60)  # DOMAIN.md: no report or end attestation earlier after unlock without a reason


@dataclass
class Home:
    patient: Person
    prescriber: Person
    plan_id: uuid.UUID
    batch_ids: list[uuid.UUID]


async def active_plan(
    session_factory,
    settings,
    clock,
    *,
    doses_mg=(100, 100, 150, 150),
    shipment_sessions=(2, 2),
    strength_mg=50,
    delivered=1,
    min_hours_between=48,
    status="active",
    email="pat@example.org",
) -> Home:
    """A signed plan written straight into the database (the prescribing tests prove how one is made):
    the first `delivered` batches delivered, the rest held."""
    patient = await screened_patient(session_factory, settings, clock, email=email)
    prescriber = await make_person(
        session_factory, role=Role.PRESCRIBER, email=f"rx-{uuid.uuid4().hex[:6]}@example.org", now=clock.now(), settings=settings
    )
    appointment_id = await insert_appointment(
        session_factory,
        patient=patient,
        clinician=prescriber,
        starts_at=clock.now() - timedelta(days=3),
        appointment_type="consult",
        status="completed",
        minutes=45,
    )
    plan_id, batch_ids = uuid.uuid4(), []
    await join_care_team(session_factory, patient, prescriber, now=clock.now(), because="plan_signed")
    async with transaction(session_factory) as session:
        pharmacy = Pharmacy(name=f"Pharmacy {plan_id.hex[:6]}", phone="+18025550111", address="1 Mill St", created_at=clock.now())
        encounter = Encounter(
            appointment_id=appointment_id,
            patient_id=patient.patient_id,
            prescriber_id=prescriber.user_id,
            opened_at=clock.now(),
            location_state="NY",
            decision="start_plan",
            decided_at=clock.now(),
        )
        session.add_all([pharmacy, encounter])
        await session.flush()
        session.add(
            TrochePlan(
                id=plan_id,
                patient_id=patient.patient_id,
                encounter_id=encounter.id,
                prescriber_id=prescriber.user_id,
                pharmacy_id=pharmacy.id,
                status=status,
                product="Ketamine HCl sublingual troche",
                strength_mg=strength_mg,
                sessions=len(doses_mg),
                doses_mg=list(doses_mg),
                min_hours_between=min_hours_between,
                directions="Under the tongue",
                shipment_sessions=list(shipment_sessions),
                content_sha256="a" * 64,
                signed_at=clock.now() - timedelta(days=2),
                created_at=clock.now(),
                updated_at=clock.now(),
            )
        )
        await session.flush()
        first = 1
        for sequence, count in enumerate(shipment_sessions, start=1):
            units = sum(doses_mg[first - 1 : first - 1 + count]) // strength_mg
            is_delivered = sequence <= delivered
            batch = PlanBatch(
                plan_id=plan_id,
                sequence=sequence,
                first_session=first,
                last_session=first + count - 1,
                units=units,
                status="delivered" if is_delivered else "held",
                units_filled=units if is_delivered else None,
                delivered_at=clock.now() - timedelta(days=1) if is_delivered else None,
                updated_at=clock.now(),
            )
            session.add(batch)
            await session.flush()
            batch_ids.append(batch.id)
            first += count
    return Home(patient, prescriber, plan_id, batch_ids)


async def post(client, url: str, body: dict | None = None):
    return await client.post(url, json=body or {}, headers=await csrf_headers(client))


class FromAddress(TestClientTransport):
    """The test client's transport (the same app, the same event loop), for requests from another address:
    the ASGI scope's client, which is what the app reads as the caller's IP."""

    def __init__(self, client, ip: str) -> None:
        super().__init__(client=client)
        self.ip = ip

    def parse_request(self, request):
        scope = super().parse_request(request)
        scope["client"] = (self.ip, 50000)
        return scope

    async def aclose(self) -> None:
        pass


SITTER_DEVICE = ("198.51.100.23", "Mozilla/5.0 (iPhone; the sitter's phone)")


def another_device(client, *, ip: str, user_agent: str) -> httpx.AsyncClient:
    """A second browser on the same app: its own cookies (none of the patient's), address and user agent."""
    return httpx.AsyncClient(
        base_url=str(client.base_url), transport=FromAddress(client, ip), headers={"user-agent": user_agent}, follow_redirects=True
    )


def sitter_device(client) -> httpx.AsyncClient:
    """The sitter's phone, one per test client: sitter links are refused where the patient is signed in, and
    an attestation from the patient's address or browser is flagged, so the sitter acts from here."""
    # Kept on the client, not in a WeakKeyDictionary: the device's transport refers to the client, so an entry
    # there kept its key, and with it the test's app, alive for the rest of the run.
    if (device := getattr(client, "sitter_device", None)) is None:
        ip, user_agent = SITTER_DEVICE
        device = client.sitter_device = another_device(client, ip=ip, user_agent=user_agent)
    return device


class Mail:
    """Runs the worker (the periodic jobs too) and reads what the real SMTP server received."""

    def __init__(self, session_factory, settings, clock, smtp) -> None:
        self.session_factory, self.settings, self.clock, self.smtp = session_factory, settings, clock, smtp

    async def deliver(self) -> None:
        """What the worker does each minute for dosing (presence links, end links, report chasing), then send the mail."""
        from telehealth.dosing.jobs import chase_reports, send_end_links, send_presence_links
        from tests.integration.billing.helpers import run_jobs

        async with transaction(self.session_factory) as session:
            await send_presence_links(session, now=self.clock.now(), settings=self.settings)
            await send_end_links(session, now=self.clock.now(), settings=self.settings)
            await chase_reports(session, now=self.clock.now(), settings=self.settings)
        await run_jobs(self.session_factory, self.settings, self.clock)

    async def sitter_link(self, to: str, *, invite: bool = False, end: bool = False) -> str:
        """The token of the /sitter/ link in the newest email to `to` that this delivery sent: the agreement or
        presence link, with `invite` the "I cannot come" link that comes with a session's invite, or with
        `end` the end link sent when the observation window closes."""
        already = len(self.smtp.messages)
        await self.deliver()
        for message in reversed(self.smtp.messages[already:]):
            subject = str(message["Subject"])
            if message["To"] != to or subject.startswith("Sitting with") != invite or subject.startswith(END_LINK_SUBJECT) != end:
                continue
            if found := re.search(r"/sitter/([\w\-]+)", self.smtp.text_of(message)):
                return found.group(1)
        raise AssertionError(f"no sitter link emailed to {to}")

    def subjects_to(self, to: str) -> list[str]:
        return [str(message["Subject"]) for message in self.smtp.messages if message["To"] == to]


async def signed_sitter(client, mail: Mail, **changes) -> dict:
    """The patient names a sitter; the sitter signs the agreement through their link (not verified yet)."""
    details = {**SITTER, **changes}
    added = await post(client, "/api/v1/my/sitters", details)
    assert added.status_code == 201, added.text
    token = await mail.sitter_link(details["email"])
    signed = await post(
        sitter_device(client),
        f"/api/v1/sitter-links/{token}/agreement",
        {"typed_name": details["full_name"], "adult": True, "agreed": True},
    )
    assert signed.status_code == 200, signed.text
    return signed.json()


async def coordinator_verifies(client, mail: Mail, sitter_id: str, *, method: str = "video", coordinator: Person | None = None):
    """A coordinator records the verification call through the API, from their own browser (a coordinator
    made for it unless one is given)."""
    if coordinator is None:
        coordinator = await make_person(
            mail.session_factory,
            role=Role.COORDINATOR,
            email=f"checks-{uuid.uuid4().hex[:8]}@example.org",
            now=mail.clock.now(),
            settings=mail.settings,
        )
    desk = another_device(client, ip="192.0.2.10", user_agent="Mozilla/5.0 (the clinic's desk)")
    try:
        await sign_in(desk, coordinator, mail.clock)
        return await post(
            desk, f"/api/v1/sitters/{sitter_id}/verification", {"method": method, "note": "Called; a different person from the patient."}
        )
    finally:
        await desk.aclose()


async def confirmed_sitter(client, mail: Mail, **changes) -> dict:
    """The patient names a sitter; the sitter signs the agreement through their link; a coordinator verifies them."""
    sitter = await signed_sitter(client, mail, **changes)
    verified = await coordinator_verifies(client, mail, sitter["id"])
    assert verified.status_code == 200, verified.text
    return verified.json()


async def schedule(client, sitter_id: str, starts_at: datetime):
    return await post(client, "/api/v1/my/dosing/sessions", {"starts_at": starts_at.isoformat(), "sitter_id": sitter_id})


async def scheduled(client, sitter_id: str, starts_at: datetime) -> dict:
    response = await schedule(client, sitter_id, starts_at)
    assert response.status_code == 201, response.text
    return response.json()


async def sitter_present(client, mail: Mail, *, name: str = SITTER["full_name"], email: str = SITTER["email"]) -> str:
    """The presence link is sent (the job runs), the sitter attests: the token of their end link."""
    token = await mail.sitter_link(email)
    attested = await post(sitter_device(client), f"/api/v1/sitter-links/{token}/presence", {"typed_name": name})
    assert attested.status_code == 200, attested.text
    return attested.json()["next_link"].rsplit("/", 1)[-1]


async def check_in(client, session_id: str, **changes):
    return await post(client, f"/api/v1/my/dosing/sessions/{session_id}/check-in", {**GOOD_CHECK_IN, **changes})


async def unlock(client, session_id: str):
    return await post(client, f"/api/v1/my/dosing/sessions/{session_id}/unlock")


def gate_codes(response) -> list[str]:
    assert response.status_code == 422, response.text
    return [gate["code"] for gate in response.json()["gates"]]


async def ready_session(client, mail: Mail, *, starts_in=timedelta(minutes=30)) -> tuple[dict, dict, str]:
    """A sitter confirmed, a session scheduled `starts_in` from now, the check-in done, the sitter present:
    (sitter, session, end-link token). Nothing is unlocked yet."""
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], mail.clock.now() + starts_in)
    assert (await check_in(client, booked["id"])).status_code == 201
    end_token = await sitter_present(client, mail)
    return sitter, booked, end_token


async def after_the_window(client, home: Home, clock) -> None:
    """The observation window after unlock has passed (the patient signs in again: the idle session ended)."""
    clock.advance(OBSERVATION)
    await patient_signed_in(client, home, clock)


async def count(session_factory, sql: str, **params) -> int:
    async with session_factory() as session:
        return int(await session.scalar(text(sql), params) or 0)


async def patient_signed_in(client, home: Home, clock) -> None:
    client.cookies.clear()
    await sign_in(client, home.patient, clock)


# --- Added for the gate, sitter-link, report and inventory tests ----------------------------------------


async def execute(session_factory, sql: str, **params) -> None:
    """Change the database directly (what time, another process or an unreachable state would do)."""
    async with transaction(session_factory) as session:
        await session.execute(text(sql), params)


async def prescriber_signed_in(client, home: Home, clock) -> None:
    """Sign in as the plan's prescriber in a fresh 30-second step (a TOTP code is never accepted twice)."""
    client.cookies.clear()
    clock.advance(timedelta(seconds=30))
    await sign_in(client, home.prescriber, clock)


async def report(client, session_id: str, **changes):
    return await post(client, f"/api/v1/my/dosing/sessions/{session_id}/report", {**GOOD_REPORT, **changes})


async def unlocked_session(client, mail: Mail, *, starts_in=timedelta(minutes=30)) -> tuple[dict, dict, str]:
    """ready_session, then the dose unlocked: (sitter, unlocked session, end-link token)."""
    sitter, booked, end_token = await ready_session(client, mail, starts_in=starts_in)
    unlocked = await unlock(client, booked["id"])
    assert unlocked.status_code == 200, unlocked.text
    return sitter, unlocked.json(), end_token


async def coordinator(session_factory, settings, clock, email: str = "coord@example.org") -> Person:
    return await make_person(session_factory, role=Role.COORDINATOR, email=email, now=clock.now(), settings=settings)


def emails_to(mail: Mail, to: str) -> list:
    return [message for message in mail.smtp.messages if message["To"] == to]


async def next_unlocked(client, home: Home, mail: Mail, sitter_id: str, *, after=timedelta(hours=48)) -> dict:
    """`after` later (the plan's interval by default): the next session scheduled, checked in, the sitter
    present and the dose unlocked (the patient signs in again first: the idle session ended)."""
    mail.clock.advance(after)
    await patient_signed_in(client, home, mail.clock)
    booked = await scheduled(client, sitter_id, mail.clock.now() + timedelta(minutes=30))
    assert (await check_in(client, booked["id"])).status_code == 201
    await sitter_present(client, mail)
    unlocked = await unlock(client, booked["id"])
    assert unlocked.status_code == 200, unlocked.text
    return unlocked.json()
