"""Safety decisions take turns: each race is run with two real connections, the first decision held open in
its transaction while the second arrives through the API. The second must wait, then act on what the first
committed. On one patient the turn is the lock order of accounts/locks.py (unlock, scheduling, a new crisis, a
sitter's step behind a pause); signing holds the credentials it rests on (a license removed, an account
deactivated meanwhile) and swaps the plan's status only from draft; the pharmacy's ship step holds the plan.
Without its lock (or its compare-and-swap) each second decision goes through: that is what these tests catch."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy import delete, select, text, update

from telehealth.accounts.models import UserAccount, UserSession
from telehealth.accounts.roles import Role
from telehealth.accounts.security import current_totp_code
from telehealth.accounts.sessions import SignedIn
from telehealth.clinicians.models import StateLicense
from telehealth.dosing import plan_changes
from telehealth.intake.escalations import open_crisis_escalation
from telehealth.lib.actors import Actor
from telehealth.prescribing import plans
from telehealth.prescribing.models import TrochePlan
from tests.helpers import PASSWORD, csrf_headers
from tests.integration.dosing.helpers import (
    SITTER,
    active_plan,
    confirmed_sitter,
    gate_codes,
    patient_signed_in,
    ready_session,
    scheduled,
    sitter_device,
)
from tests.integration.prescribing.helpers import (
    FILL,
    SHIP,
    consult_with_encounter,
    drafted,
    pay_program_fee,
    pharmacist,
    pharmacy_step,
    ready_to_prescribe,
    signed_plan,
    switch_to,
)


async def _sent(client, path: str, body: dict | None = None, *, browser=None) -> asyncio.Task:
    """The request on its own thread (the test client blocks its caller), as another browser would send it
    (`browser`: whose cookies and headers; the test client's own by default)."""
    browser = browser or client
    request = browser.build_request("POST", path, json=body or {}, headers=await csrf_headers(browser))
    transport = client._transport

    def send():
        response = transport.handle_request(request)
        response.read()
        return response

    return asyncio.create_task(asyncio.to_thread(send))


WAITING_ON_A_LOCK = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"


async def _arrives(second: asyncio.Task, session_factory) -> None:
    """Until the second decision has either finished or is waiting on a lock (never a fixed sleep)."""
    async with session_factory() as watcher:
        for _ in range(500):
            if second.done() or await watcher.scalar(text(WAITING_ON_A_LOCK)):
                return
            await asyncio.sleep(0.01)
    raise AssertionError("the second request neither finished nor waited")


async def _pause_held_open(session_factory, home, clock):
    """A prescriber's pause, as the pause endpoint makes it, left uncommitted: (the open session, its transaction)."""
    first = session_factory()
    transaction = await first.begin()
    plan = await plans.own_plan(first, plan_id=home.plan_id, signed_in=SimpleNamespace(user_id=home.prescriber.user_id), lock=True)
    await plan_changes.pause_plan(first, plan, reason="Reviewing a new medication", actor=Actor.system(), now=clock.now())
    return first, transaction


async def test_an_unlock_racing_a_pause_loses(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, booked, _ = await ready_session(client, mail)
    first, transaction = await _pause_held_open(session_factory, home, clock)
    try:
        second = await _sent(client, f"/api/v1/my/dosing/sessions/{booked['id']}/unlock")
        await _arrives(second, session_factory)
        await transaction.commit()
    finally:
        await first.close()
    assert "gate.plan_paused" in gate_codes(await second)


async def test_an_unlock_racing_a_new_crisis_escalation_loses(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, booked, _ = await ready_session(client, mail)
    first = session_factory()
    try:
        transaction = await first.begin()
        opened = await open_crisis_escalation(
            first,
            patient_id=home.patient.patient_id,
            rule_ids=["reassessment.phq9_9"],
            actor=Actor.system(),
            now=clock.now(),
            settings=settings,
        )
        assert opened
        second = await _sent(client, f"/api/v1/my/dosing/sessions/{booked['id']}/unlock")
        await _arrives(second, session_factory)
        await transaction.commit()
    finally:
        await first.close()
    assert "gate.crisis_open" in gate_codes(await second)


async def test_scheduling_racing_a_pause_is_refused(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    first, transaction = await _pause_held_open(session_factory, home, clock)
    try:
        second = await _sent(
            client, "/api/v1/my/dosing/sessions", {"starts_at": (clock.now() + timedelta(hours=3)).isoformat(), "sitter_id": sitter["id"]}
        )
        await _arrives(second, session_factory)
        await transaction.commit()
    finally:
        await first.close()
    refused = await second
    assert refused.status_code == 422 and refused.json()["code"] == "dosing.plan_paused", refused.text


async def test_signing_racing_the_removal_of_the_license_it_rests_on_is_refused(client, session_factory, settings, clock, stripe_fake):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    await ready_to_prescribe(client, consult, clock)
    plan = await drafted(client, consult)
    first = session_factory()
    try:
        transaction = await first.begin()  # a coordinator removes the NY license, not committed yet
        removed = await first.execute(
            delete(StateLicense).where(StateLicense.clinician_id == consult.prescriber.user_id, StateLicense.state == "NY")
        )
        assert removed.rowcount == 1
        clock.advance(timedelta(seconds=30))  # a fresh code: the sign-in used the current one
        code = current_totp_code(consult.prescriber.totp_secret, at=clock.now())
        second = await _sent(client, f"/api/v1/plans/{plan['id']}/sign", {"password": PASSWORD, "code": code})
        await _arrives(second, session_factory)
        await transaction.commit()
    finally:
        await first.close()
    refused = await second
    assert refused.status_code == 422 and refused.json()["code"] == "plan.location_not_licensed", refused.text


async def test_shipping_racing_a_pause_is_refused(client, session_factory, settings, clock, stripe_fake):
    """The pharmacy's ship step holds the plan FOR SHARE: a pause in flight is waited for, then seen."""
    consult, plan = await signed_plan(client, session_factory, settings, clock, stripe_fake)
    first = plan["batches"][0]["id"]
    await pay_program_fee(client, consult, stripe_fake, clock)
    await switch_to(client, await pharmacist(session_factory, settings, clock, pharmacy_id=consult.pharmacy_id), clock)
    assert (await pharmacy_step(client, first, "accept")).status_code == 200
    assert (await pharmacy_step(client, first, "fill", {**FILL, "units": 9})).status_code == 200
    home = SimpleNamespace(plan_id=uuid.UUID(plan["id"]), prescriber=consult.prescriber)
    held, transaction = await _pause_held_open(session_factory, home, clock)
    try:
        second = await _sent(client, f"/api/v1/pharmacy/batches/{first}/ship", SHIP)
        await _arrives(second, session_factory)
        await transaction.commit()
    finally:
        await held.close()
    refused = await second
    assert refused.status_code == 422 and refused.json()["code"] == "batch.plan_paused", refused.text


async def test_signing_racing_the_prescribers_deactivation_is_refused(client, session_factory, settings, clock, stripe_fake):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    await ready_to_prescribe(client, consult, clock)
    plan = await drafted(client, consult)
    first = session_factory()
    try:
        transaction = await first.begin()  # a coordinator deactivates the prescriber's account, not committed yet
        await first.execute(update(UserAccount).where(UserAccount.id == consult.prescriber.user_id).values(is_active=False))
        clock.advance(timedelta(seconds=30))
        code = current_totp_code(consult.prescriber.totp_secret, at=clock.now())
        second = await _sent(client, f"/api/v1/plans/{plan['id']}/sign", {"password": PASSWORD, "code": code})
        await _arrives(second, session_factory)
        await transaction.commit()
    finally:
        await first.close()
    refused = await second
    assert refused.status_code == 422 and refused.json()["code"] == "plan.location_not_licensed", refused.text
    async with session_factory() as session:
        assert await session.scalar(text("SELECT status FROM troche_plan WHERE id = :id"), {"id": plan["id"]}) == "draft"


async def test_a_sitters_step_takes_its_turn_behind_a_pause_in_flight(client, session_factory, settings, clock, mail):
    """The sitter's link actions keep the lock order too (the patient, then the session): a presence arriving
    while a pause is being made waits for it rather than slipping past, so no sitter step can ever hold the
    session while waiting for the patient (the deadlock the order exists to prevent)."""
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    token = await mail.sitter_link(SITTER["email"])
    first, transaction = await _pause_held_open(session_factory, home, clock)
    try:
        second = await _sent(
            client, f"/api/v1/sitter-links/{token}/presence", {"typed_name": SITTER["full_name"]}, browser=sitter_device(client)
        )
        await _arrives(second, session_factory)
        assert not second.done(), "the presence did not wait for the patient's lock"
        await transaction.commit()
    finally:
        await first.close()
    assert (await second).status_code == 200


async def test_a_signing_that_passed_every_check_still_loses_the_swap_to_one_committed_meanwhile(
    client, session_factory, settings, clock, stripe_fake
):
    """The signature's compare-and-swap on its own, below the two-factor check: a second signing with its own
    fresh code (the next step's, which the drift window accepts) read the plan as a draft before the first one
    committed; it waits for the account, passes every check, then finds the plan signed and is refused."""
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    await ready_to_prescribe(client, consult, clock)
    plan = await drafted(client, consult)
    clock.advance(timedelta(seconds=30))  # a step no sign-in used
    secret = consult.prescriber.totp_secret
    async with session_factory() as session:
        session_id = await session.scalar(
            select(UserSession.id).where(UserSession.user_id == consult.prescriber.user_id).order_by(UserSession.created_at.desc()).limit(1)
        )
    signed_in = SignedIn(
        user_id=consult.prescriber.user_id,
        session_id=session_id,
        role=Role.PRESCRIBER,
        email=consult.prescriber.email,
        full_name="",
        email_verified=True,
        totp_enrolled=True,
        two_factor_verified=True,
        step_up_at=None,
    )
    first = session_factory()
    try:
        transaction = await first.begin()  # the first signing, as the sign endpoint makes it, not committed yet
        draft = await first.get(TrochePlan, uuid.UUID(plan["id"]))
        await plans.sign_plan(
            first,
            draft,
            signed_in=signed_in,
            password=PASSWORD,
            code=current_totp_code(secret, at=clock.now()),
            actor=Actor.system(),
            now=clock.now(),
            settings=settings,
        )
        next_code = current_totp_code(secret, at=clock.now() + timedelta(seconds=30))
        second = await _sent(client, f"/api/v1/plans/{plan['id']}/sign", {"password": PASSWORD, "code": next_code})
        await _arrives(second, session_factory)
        await transaction.commit()
    finally:
        await first.close()
    refused = await second
    assert (refused.status_code, refused.json()["code"]) == (409, "troche_plan.status_changed"), refused.text
    async with session_factory() as session:
        assert await session.scalar(text("SELECT count(*) FROM plan_batch WHERE plan_id = :id"), {"id": uuid.UUID(plan["id"])}) == 2
        assert await session.scalar(text("SELECT count(*) FROM audit_event WHERE action = 'troche_plan.sign'")) == 1
