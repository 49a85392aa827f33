"""Prescribing under the law of the date (DOMAIN.md "Prescribing basis on the date"): through
TELEMEDICINE_FLEXIBILITIES_UNTIL (2026-12-31) an audio-video visit is basis enough; from the day after, as
judged where the patient is, a signature needs an in-person evaluation by the signing prescriber or their
telemedicine special registration valid in the patient's state that day. The plan stores its basis."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, text

from telehealth.accounts.roles import Role
from telehealth.prescribing.models import TrochePlan
from tests.helpers import csrf_headers, make_person
from tests.integration.prescribing.helpers import (
    audit_actions,
    consult_with_encounter,
    drafted,
    ready_to_prescribe,
    refusal,
    request_as,
    sign,
    switch_to,
)

NO_BASIS = (422, "plan.no_prescribing_basis", ["prescribing_basis"])
NEW_YEAR_NOON_NY = datetime(2027, 1, 1, 17, 0, tzinfo=UTC)  # the first day after the flexibilities, noon in New York


async def draft_then_wait_until(client, session_factory, settings, clock, stripe_fake, signing_at: datetime, *, state="NY"):
    """A consult, its encounter ready and a draft plan; then the clock moves so that `sign` sends at `signing_at`
    with the prescriber signed in again and a PDMP check five minutes before it (so only the date decides)."""
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake, state=state)
    await ready_to_prescribe(client, consult, clock, state=state)
    plan = await drafted(client, consult)
    clock.set(signing_at - timedelta(seconds=60))
    await switch_to(client, consult.prescriber, clock)  # +30 s
    await pdmp_checked_at(session_factory, consult, signing_at - timedelta(minutes=5))
    return consult, plan


async def pdmp_checked_at(session_factory, consult, checked_at: datetime) -> None:
    """The encounter is decided (its record is closed): the PDMP time moves in the database, as a re-check would."""
    from sqlalchemy import update

    from telehealth.db.engine import transaction
    from telehealth.prescribing.models import Encounter

    async with transaction(session_factory) as session:
        await session.execute(update(Encounter).where(Encounter.id == uuid.UUID(consult.encounter_id)).values(pdmp_checked_at=checked_at))


async def sign_at(client, consult, plan, clock, signing_at: datetime):
    """`sign` moves the clock 30 s on and sends: set it so that it sends exactly at `signing_at`."""
    clock.set(signing_at - timedelta(seconds=30))
    return await sign(client, consult, plan["id"], clock)


async def stored_basis(session_factory, plan_id) -> tuple[str | None, uuid.UUID | None, uuid.UUID | None]:
    async with session_factory() as session:
        plan = await session.get(TrochePlan, uuid.UUID(str(plan_id)))
        return plan.prescribing_basis, plan.in_person_evaluation_id, plan.special_registration_id


async def coordinator(session_factory, settings, clock):
    return await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)


async def test_before_the_date_the_visit_is_basis_enough_and_the_plan_says_so(client, session_factory, settings, clock, stripe_fake):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    await ready_to_prescribe(client, consult, clock)
    plan = await drafted(client, consult)
    signed = await sign(client, consult, plan["id"], clock)
    assert signed.status_code == 200, signed.text
    assert signed.json()["prescribing_basis"] == "telemedicine_flexibilities"
    assert await stored_basis(session_factory, plan["id"]) == ("telemedicine_flexibilities", None, None)
    assert "troche_plan.basis" in await audit_actions(session_factory, plan["id"])


async def test_the_day_after_the_date_signing_without_a_basis_is_refused_naming_the_date_and_what_is_missing(
    client, session_factory, settings, clock, stripe_fake
):
    consult, plan = await draft_then_wait_until(client, session_factory, settings, clock, stripe_fake, NEW_YEAR_NOON_NY)
    refused = await sign_at(client, consult, plan, clock, NEW_YEAR_NOON_NY)
    assert refusal(refused) == NO_BASIS
    body = refused.json()
    assert "1 Jan 2027" in body["detail"] and "31 Dec 2026" in body["detail"] and "New York" in body["detail"]
    assert "in-person medical evaluation" in body["detail"] and "special registration" in body["detail"]
    assert (body["day"], body["flexibilities_until"], body["zone"]) == ("2027-01-01", "2026-12-31", "America/New_York")
    assert body["missing"] == ["in_person_evaluation", "special_registration"]
    assert (await client.get(f"/api/v1/plans/{plan['id']}")).json()["status"] == "draft"
    assert await stored_basis(session_factory, plan["id"]) == (None, None, None)


async def test_a_later_date_in_the_setting_keeps_the_visit_basis_enough(client, session_factory, settings, clock, stripe_fake):
    """A fifth extension is a configuration change: the same signing moment is then before the date."""
    from dataclasses import replace

    from litestar.testing import AsyncTestClient

    from telehealth.asgi import create_app

    consult, plan = await draft_then_wait_until(client, session_factory, settings, clock, stripe_fake, NEW_YEAR_NOON_NY)
    extended = create_app(replace(settings, telemedicine_flexibilities_until=date(2027, 12, 31)), clock=clock)
    async with AsyncTestClient(app=extended, base_url="http://testserver.local") as other:
        other.cookies = client.cookies
        signed = await sign_at(other, consult, plan, clock, NEW_YEAR_NOON_NY)
    assert signed.status_code == 200, signed.text
    assert signed.json()["prescribing_basis"] == "telemedicine_flexibilities"


async def test_an_in_person_evaluation_by_the_signing_prescriber_is_a_basis(client, session_factory, settings, clock, stripe_fake):
    consult, plan = await draft_then_wait_until(client, session_factory, settings, clock, stripe_fake, NEW_YEAR_NOON_NY)
    evaluations = f"/api/v1/patients/{consult.patient.patient_id}/in-person-evaluations"

    # An evaluation by another prescriber is no basis for this one (a coordinator records it from the paperwork).
    other = await make_person(session_factory, role=Role.PRESCRIBER, email="rx2@example.org", now=clock.now(), settings=settings)
    co = await coordinator(session_factory, settings, clock)
    await switch_to(client, co, clock)
    theirs = await client.post(
        evaluations,
        json={"evaluated_on": "2026-12-10", "place": "12 Hudson St clinic", "prescriber_id": str(other.user_id)},
        headers=await csrf_headers(client),
    )
    assert theirs.status_code == 201, theirs.text
    await switch_to(client, consult.prescriber, clock)
    assert refusal(await sign_at(client, consult, plan, clock, NEW_YEAR_NOON_NY + timedelta(minutes=2))) == NO_BASIS

    mine = await client.post(
        evaluations,
        json={"evaluated_on": "2026-12-15", "place": "Evergreen clinic, 100 Main St, Burlington VT"},
        headers=await csrf_headers(client),
    )
    assert mine.status_code == 201, mine.text
    assert (mine.json()["prescriber_id"], mine.json()["recorded_by"]) == (str(consult.prescriber.user_id), str(consult.prescriber.user_id))
    signed = await sign_at(client, consult, plan, clock, NEW_YEAR_NOON_NY + timedelta(minutes=4))
    assert signed.status_code == 200, signed.text
    assert (signed.json()["prescribing_basis"], signed.json()["in_person_evaluation_id"]) == ("in_person_evaluation", mine.json()["id"])
    assert await stored_basis(session_factory, plan["id"]) == ("in_person_evaluation", uuid.UUID(mine.json()["id"]), None)
    assert await audit_actions(session_factory, mine.json()["id"]) == ["in_person_evaluation.record"]
    listed = (await client.get(evaluations)).json()
    assert [line["prescriber_name"] for line in listed] == ["Rx", "Rx2"]  # latest first


async def test_a_special_registration_valid_in_the_patients_state_that_day_is_a_basis(
    client, session_factory, settings, clock, stripe_fake
):
    consult, plan = await draft_then_wait_until(client, session_factory, settings, clock, stripe_fake, NEW_YEAR_NOON_NY)
    co = await coordinator(session_factory, settings, clock)
    registrations = f"/api/v1/clinicians/{consult.prescriber.user_id}/special-registrations"

    async def as_coordinator(method: str, url: str, body: dict | None = None):
        await switch_to(client, co, clock)
        response = await client.request(method, url, json=body, headers=await csrf_headers(client))
        await switch_to(client, consult.prescriber, clock)
        return response

    elsewhere = await as_coordinator("POST", registrations, {"state": "NJ", "number": "TSR-NJ-1", "expires_on": "2027-12-31"})
    assert elsewhere.status_code == 201, elsewhere.text
    assert (
        refusal(await sign_at(client, consult, plan, clock, NEW_YEAR_NOON_NY + timedelta(minutes=3))) == NO_BASIS
    )  # New Jersey's, not New York's

    lapsed = await as_coordinator("POST", registrations, {"state": "ny", "number": "tsr-ny-7", "expires_on": "2026-12-31"})
    assert (lapsed.status_code, lapsed.json()["state"], lapsed.json()["number"]) == (201, "NY", "TSR-NY-7")
    assert (
        refusal(await sign_at(client, consult, plan, clock, NEW_YEAR_NOON_NY + timedelta(minutes=6))) == NO_BASIS
    )  # good through 31 Dec only

    renewed = await as_coordinator(
        "PUT", f"{registrations}/{lapsed.json()['id']}", {"state": "NY", "number": "TSR-NY-7", "expires_on": "2027-12-31"}
    )
    assert renewed.status_code == 200, renewed.text
    signed = await sign_at(client, consult, plan, clock, NEW_YEAR_NOON_NY + timedelta(minutes=9))
    assert signed.status_code == 200, signed.text
    assert (signed.json()["prescribing_basis"], signed.json()["special_registration_id"]) == ("special_registration", lapsed.json()["id"])
    assert await stored_basis(session_factory, plan["id"]) == ("special_registration", None, uuid.UUID(lapsed.json()["id"]))

    # The registration is the signed plan's evidence: it stays on file (an expiry can still be set).
    cited = await as_coordinator("DELETE", f"{registrations}/{lapsed.json()['id']}")
    assert refusal(cited) == (409, "clinician.special_registration_cited", ["registration"])
    assert (await as_coordinator("DELETE", f"{registrations}/{elsewhere.json()['id']}")).status_code == 204
    actions = await audit_actions(session_factory, consult.prescriber.user_id)
    assert [a for a in actions if a.startswith("clinician.special_registration")] == [
        "clinician.special_registration.add",
        "clinician.special_registration.add",
        "clinician.special_registration.update",
        "clinician.special_registration.remove",
    ]


# The last instant of 31 Dec 2026 differs by zone: 05:00 UTC ends it in New York, 08:00 UTC in California.
BOUNDARY = [
    ("NY", datetime(2027, 1, 1, 4, 59, 59, tzinfo=UTC), 200),  # 23:59:59 EST on 31 Dec
    ("NY", datetime(2027, 1, 1, 5, 0, 0, tzinfo=UTC), 422),  # 00:00 EST on 1 Jan
    ("CA", datetime(2027, 1, 1, 5, 0, 0, tzinfo=UTC), 200),  # the same instant is 21:00 PST on 31 Dec
    ("CA", datetime(2027, 1, 1, 7, 59, 59, tzinfo=UTC), 200),  # 23:59:59 PST on 31 Dec
    ("CA", datetime(2027, 1, 1, 8, 0, 0, tzinfo=UTC), 422),  # 00:00 PST on 1 Jan
]


@pytest.mark.parametrize(("state", "signing_at", "status"), BOUNDARY)
async def test_the_last_day_ends_at_midnight_where_the_patient_is(
    client, session_factory, settings, clock, stripe_fake, state, signing_at, status
):
    # The California patient's own zone is New York's (the helper's default): not a California zone, so
    # California's main zone reads the day.
    consult, plan = await draft_then_wait_until(client, session_factory, settings, clock, stripe_fake, signing_at, state=state)
    answer = await sign_at(client, consult, plan, clock, signing_at)
    if status == 200:
        assert answer.status_code == 200, answer.text
        assert answer.json()["prescribing_basis"] == "telemedicine_flexibilities"
    else:
        assert refusal(answer) == NO_BASIS
        assert answer.json()["zone"] == {"NY": "America/New_York", "CA": "America/Los_Angeles"}[state]


async def test_signing_holds_the_special_registration_it_relies_on(client, session_factory, settings, clock, stripe_fake):
    """No check-then-act: a coordinator's uncommitted lapse of the registration makes the signature wait for it,
    and once committed the signature sees it and is refused (read without a lock, it would have signed)."""
    from telehealth.accounts.security import current_totp_code
    from telehealth.clinicians.models import SpecialRegistration
    from tests.helpers import PASSWORD

    consult, plan = await draft_then_wait_until(client, session_factory, settings, clock, stripe_fake, NEW_YEAR_NOON_NY)
    async with session_factory() as session, session.begin():
        registration_id = uuid.uuid4()
        session.add(
            SpecialRegistration(
                id=registration_id, clinician_id=consult.prescriber.user_id, state="NY", number="TSR-1", expires_on=date(2027, 12, 31)
            )
        )
    await csrf_headers(client)
    browser = httpx.Cookies(client.cookies)
    clock.set(NEW_YEAR_NOON_NY)
    body = {"password": PASSWORD, "code": current_totp_code(consult.prescriber.totp_secret, at=clock.now())}
    signing = request_as(client, browser, "POST", f"/api/v1/plans/{plan['id']}/sign", json=body)

    def send():
        response = client._transport.handle_request(signing)
        response.read()
        return response

    async with session_factory() as coordinator_session, coordinator_session.begin():
        await coordinator_session.execute(
            text("UPDATE special_registration SET expires_on = '2026-12-20' WHERE id = :id"), {"id": registration_id}
        )
        answer = asyncio.ensure_future(asyncio.to_thread(send))
        await _finished_or_waiting_on_a_lock(answer, session_factory)
        assert not answer.done(), (await answer).text  # waiting for the coordinator's change
    response = await answer
    assert refusal(response) == NO_BASIS, response.text
    async with session_factory() as session:
        assert (await session.execute(select(TrochePlan.status).where(TrochePlan.id == uuid.UUID(plan["id"])))).scalar_one() == "draft"


async def _finished_or_waiting_on_a_lock(answer: asyncio.Future, session_factory) -> None:
    """Until the request has either finished or is waiting on a lock in the database (no fixed sleep)."""
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    async with session_factory() as watcher:
        for _ in range(1000):
            if answer.done() or await watcher.scalar(text(waiting)):
                return
            await asyncio.sleep(0.01)
    raise AssertionError("the signing request neither finished nor waited on a lock")
