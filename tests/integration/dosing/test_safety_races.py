"""Safety decisions on one patient take turns (the lock order of accounts/locks.py): each race is run with two
real connections, the first decision held open in its transaction while the second arrives through the API.
The second must wait, then act on what the first committed. Without the patient lock each of these answers
200 (the second read the world before the first committed): that is what these tests catch."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy import delete, text

from telehealth.accounts.security import current_totp_code
from telehealth.audit.service import Actor
from telehealth.clinicians.models import StateLicense
from telehealth.intake.escalations import open_crisis_escalation
from telehealth.prescribing import plans
from tests.helpers import PASSWORD, csrf_headers
from tests.integration.dosing.helpers import active_plan, confirmed_sitter, gate_codes, patient_signed_in, ready_session
from tests.integration.prescribing.helpers import consult_with_encounter, drafted, ready_to_prescribe


async def _sent(client, path: str, body: dict | None = None) -> asyncio.Task:
    """The request on its own thread (the test client blocks its caller), as another browser would send it."""
    request = client.build_request("POST", path, json=body or {}, headers=await csrf_headers(client))
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
    await plans.pause_plan(first, plan, reason="Reviewing a new medication", actor=Actor.system(), now=clock.now())
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
        opened = await open_crisis_escalation(first, patient_id=home.patient.patient_id, rule_ids=["reassessment.phq9_9"], actor=Actor.system(),
                                              now=clock.now(), settings=settings)  # fmt: skip
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
        second = await _sent(client, "/api/v1/my/dosing/sessions", {"starts_at": (clock.now() + timedelta(hours=3)).isoformat(), "sitter_id": sitter["id"]})
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
        removed = await first.execute(delete(StateLicense).where(StateLicense.clinician_id == consult.prescriber.user_id, StateLicense.state == "NY"))
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
