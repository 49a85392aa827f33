"""Prescribing rules pinned one by one (issue 19, item 5): each test names the rule it holds and fails when
the code that enforces the rule is taken out (docs/safety-rules.md lists the break tried for each)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, timedelta

import httpx
from sqlalchemy import text

from telehealth.accounts.security import current_totp_code
from telehealth.dosing.plan_changes import pause_plan
from telehealth.lib.actors import Actor
from telehealth.prescribing.models import TrochePlan
from tests.helpers import PASSWORD, csrf_headers, send_in_thread, until_lock_waiters
from tests.integration.prescribing.helpers import (
    FILL,
    SHIP,
    audit_actions,
    consult_with_encounter,
    drafted,
    pay_program_fee,
    pharmacist,
    pharmacy_step,
    ready_to_prescribe,
    record_encounter,
    refusal,
    request_as,
    sign,
    signed_plan,
    switch_to,
)


async def pdmp_checked_at(session_factory, consult):
    async with session_factory() as session:
        return await session.scalar(text("SELECT pdmp_checked_at FROM encounter WHERE id = :id"), {"id": uuid.UUID(consult.encounter_id)})


async def test_a_pdmp_check_dated_in_the_future_is_refused(client, session_factory, settings, clock, stripe_fake):
    """Rule 3 (the future half; the 24 h half is test_signing_checks): a PDMP check time more than the 5-minute
    clock allowance ahead of now is refused when recorded (encounters.record), so it can never look fresh at
    signing (prescribing_blocker only refuses one older than 24 h)."""
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    ahead = await record_encounter(client, consult, pdmp_checked_at=(clock.now() + timedelta(minutes=6)).isoformat(), pdmp_state="NY")
    assert refusal(ahead) == (422, "request.invalid", ["pdmp_checked_at"])
    assert ahead.json()["fields"]["pdmp_checked_at"] == "is in the future"
    next_day = await record_encounter(client, consult, pdmp_checked_at=(clock.now() + timedelta(hours=23)).isoformat(), pdmp_state="NY")
    assert refusal(next_day) == (422, "request.invalid", ["pdmp_checked_at"])
    assert await pdmp_checked_at(session_factory, consult) is None

    now = await record_encounter(client, consult, pdmp_checked_at=clock.now().isoformat(), pdmp_state="NY")
    assert now.status_code == 200, now.text
    assert await pdmp_checked_at(session_factory, consult) == clock.now()


async def test_a_pause_committed_while_the_ship_step_waits_stops_the_shipment(client, session_factory, settings, clock, stripe_fake):
    """Rule 4 (the race; the plain refusal is test_no_shipping_while_paused): the pharmacy's steps read the plan
    FOR SHARE (pharmacy._batch), so a ship step that starts while a pause is being written waits for it and
    then refuses. Without the lock it read the plan still active and shipped from a paused plan."""
    consult, plan = await signed_plan(client, session_factory, settings, clock, stripe_fake)
    first = plan["batches"][0]["id"]
    await pay_program_fee(client, consult, stripe_fake, clock)
    staff = await pharmacist(session_factory, settings, clock, pharmacy_id=consult.pharmacy_id)
    await switch_to(client, staff, clock)
    assert (await pharmacy_step(client, first, "accept")).status_code == 200
    assert (await pharmacy_step(client, first, "fill", {**FILL, "units": 9})).status_code == 200
    ship = client.build_request("POST", f"/api/v1/pharmacy/batches/{first}/ship", json=SHIP, headers=await csrf_headers(client))

    async with session_factory() as prescriber:  # the prescriber's pause, written and not yet committed
        row = await prescriber.get(TrochePlan, uuid.UUID(plan["id"]), with_for_update=True)
        await pause_plan(prescriber, row, reason="Blood pressure to recheck", actor=Actor.system(), now=clock.now())
        shipping = await send_in_thread(client, ship)
        await until_lock_waiters(session_factory, 1, tasks=[shipping])
        await prescriber.commit()
    answer = await shipping

    assert refusal(answer)[:2] == (422, "batch.plan_paused"), answer.text
    async with session_factory() as session:
        assert await session.scalar(text("SELECT status FROM plan_batch WHERE id = :id"), {"id": uuid.UUID(first)}) == "filled"


async def test_two_signings_with_valid_codes_at_once_sign_once_by_the_compare_and_swap(
    client, session_factory, settings, clock, stripe_fake
):
    """Rule 6: signing is a compare-and-swap (draft -> signed, UPDATE ... WHERE status = 'draft'). Two signing
    requests of one plan, each with its own valid code (this step's and the next's, in that order, so the
    second factor passes for both), give one signature; the second is refused by the swap, not by two-factor.
    (test_concurrent_signing sends one code twice: there the code's single use alone stops the second.)"""
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    await ready_to_prescribe(client, consult, clock)
    plan = await drafted(client, consult)
    await csrf_headers(client)
    browsers = [httpx.Cookies(client.cookies)]
    await switch_to(client, consult.prescriber, clock)
    await csrf_headers(client)
    browsers.append(httpx.Cookies(client.cookies))
    clock.advance(timedelta(seconds=30))  # a step neither sign-in used
    codes = [current_totp_code(consult.prescriber.totp_secret, at=clock.now() + timedelta(seconds=30 * n)) for n in (0, 1)]
    url = f"/api/v1/plans/{plan['id']}/sign"
    requests = [request_as(client, browsers[n], "POST", url, json={"password": PASSWORD, "code": codes[n]}) for n in (0, 1)]

    # Both requests read the plan as a draft, then queue on the prescriber's row (the two-factor check locks it)
    # behind this transaction, in order: the first uses this step's code, the second the next step's.
    async with session_factory() as holder:
        await holder.execute(text("SELECT id FROM user_account WHERE id = :id FOR UPDATE"), {"id": consult.prescriber.user_id})
        first = await send_in_thread(client, requests[0])
        assert await until_lock_waiters(session_factory, 1, tasks=[first])
        second = await send_in_thread(client, requests[1])
        assert await until_lock_waiters(session_factory, 2, tasks=[second])
        await holder.rollback()
    answers = [await first, await second]

    assert [a.status_code for a in answers] == [200, 409], [(a.status_code, a.text) for a in answers]
    assert answers[1].json()["code"] in ("troche_plan.status_changed", "plan.not_draft"), answers[1].text
    async with session_factory() as session:
        signings = list((await session.execute(text("SELECT outcome FROM audit_event WHERE action = 'auth.signing'"))).scalars())
        batches = await session.scalar(text("SELECT count(*) FROM plan_batch WHERE plan_id = :p"), {"p": uuid.UUID(plan["id"])})
    assert "failure" not in signings, signings  # the second factor stopped neither
    actions = await audit_actions(session_factory, plan["id"])
    assert (actions.count("troche_plan.sign"), actions.count("troche_plan.send"), batches) == (1, 1, 2)


async def encounter_facts(session_factory, consult) -> tuple:
    async with session_factory() as session:
        row = (
            await session.execute(
                text(
                    "SELECT identity_checked, identity_method, location_state, location_recorded_at, pdmp_checked_at, "
                    "pdmp_state, pdmp_reference, "
                    "pdmp_summary, vitals_reviewed, vitals_note FROM encounter WHERE id = :id"
                ),
                {"id": uuid.UUID(consult.encounter_id)},
            )
        ).one()
    return tuple(row)


FROZEN_FACTS = [  # each change alone, after the decision
    {"identity_checked": False},
    {"identity_method": "a voice on the phone"},
    {"location_state": "NJ"},
    {"pdmp_checked_at": "LATER", "pdmp_state": "NY"},  # a fresher check, as if to keep a stale one valid for signing
    {"pdmp_state": "NJ"},
    {"pdmp_reference": "PMP-2", "pdmp_summary": "another summary"},
    {"vitals_reviewed": False, "vitals_note": "BP 150/95"},
]


async def test_the_encounters_facts_are_frozen_once_it_is_decided(client, session_factory, settings, clock, stripe_fake):
    """Rule 7: identity, the location now, the PDMP check and the vitals are what the decision rested on; once
    the encounter is decided none of them can be recorded or changed (encounters.record answers 409)."""
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    await ready_to_prescribe(client, consult, clock)  # the facts, then the decision to start a plan
    before = await encounter_facts(session_factory, consult)
    clock.advance(timedelta(hours=1))
    await switch_to(client, consult.prescriber, clock)  # signed in again an hour later

    for change in FROZEN_FACTS:
        change = {**change, "pdmp_checked_at": clock.now().isoformat()} if "pdmp_checked_at" in change else change
        refused = await record_encounter(client, consult, **change)
        assert refusal(refused)[:2] == (409, "encounter.decided"), (change, refused.text)
    assert await encounter_facts(session_factory, consult) == before


TIGHTER = [  # (the clinic's tightened cap, the code it refuses the draft with at signing)
    ({"max_dose_mg_per_session": 300}, "plan.dose_above_cap"),
    ({"max_sessions_per_plan": 4, "default_sessions_per_plan": 4}, "plan.sessions_above_cap"),
    ({"min_hours_between_sessions": 72}, "plan.interval_below_minimum"),
]


async def test_the_caps_are_checked_again_when_the_plan_is_signed(client, session_factory, settings, clock, stripe_fake):
    """Rule 12: the dose, sessions and interval caps are checked when the draft is written and again when it is
    signed (plans.sign_plan -> rules.check_plan). A draft within the caps of the day it was written is refused
    at signing once the clinic has tightened a cap (settings may tighten), and signs under the caps it meets."""
    from litestar.testing import AsyncTestClient

    from telehealth.asgi import create_app
    from tests.conftest import with_settings

    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    await ready_to_prescribe(client, consult, clock)
    plan = await drafted(client, consult, doses_mg=[100, 200, 400, 400, 400, 400])  # six sessions, 400 mg, 48 h: within the defaults
    await csrf_headers(client)

    for caps, code in TIGHTER:
        tightened = with_settings(settings, thresholds=replace(settings.thresholds, **caps))
        async with AsyncTestClient(app=create_app(tightened, clock=clock), base_url="http://testserver.local") as clinic:
            clinic.cookies = httpx.Cookies(client.cookies)  # the prescriber's signed-in browser, on the tightened service
            refused = await sign(clinic, consult, plan["id"], clock)
            assert refusal(refused)[:2] == (422, code), (caps, refused.text)
    assert (await client.get(f"/api/v1/plans/{plan['id']}")).json()["status"] == "draft"
    signed = await sign(client, consult, plan["id"], clock)
    assert signed.status_code == 200, signed.text


async def test_prescribing_needs_a_license_and_a_dea_registration_both_in_the_state_the_patient_is_in_now(
    client, session_factory, settings, clock, stripe_fake
):
    """Rule 15: the state that counts is the patient's location recorded now, in the encounter (not their state
    of residence), and the prescriber needs there both an unexpired license and a DEA registration covering
    Schedule III (encounters.prescribing_blocker -> clinicians.prescriber_may_prescribe_in): a license in one
    state and a registration in another are not enough, whichever of the two is missing where the patient is."""
    from telehealth.clinicians.models import DeaRegistration, StateLicense
    from telehealth.db.engine import transaction
    from tests.integration.prescribing.helpers import decide

    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)  # patient and prescriber in NY
    facts = {
        "identity_checked": True,
        "identity_method": "passport on video",
        "location_state": "NJ",
        "pdmp_state": "NJ",
        "pdmp_checked_at": (clock.now() - timedelta(minutes=5)).isoformat(),
        "vitals_reviewed": True,
    }
    assert (await record_encounter(client, consult, **facts)).status_code == 200  # visiting New Jersey today
    not_licensed = (422, "plan.location_not_licensed", ["location_state"])
    assert refusal(await decide(client, consult)) == not_licensed  # licensed where they live, not where they are

    async def credentials_in_new_jersey(*, license: bool, dea: bool) -> None:
        async with transaction(session_factory) as session:
            await session.execute(text("DELETE FROM state_license WHERE state = 'NJ'"))
            await session.execute(text("DELETE FROM dea_registration WHERE state = 'NJ'"))
            held_by, until = consult.prescriber.user_id, date(2030, 1, 1)
            if license:
                session.add(StateLicense(clinician_id=held_by, state="NJ", number="NJ-1", license_type="MD", expires_on=until))
            if dea:
                session.add(DeaRegistration(clinician_id=held_by, state="NJ", number="BN1", schedules="II,III,IV,V", expires_on=until))

    await credentials_in_new_jersey(license=True, dea=False)  # the DEA registration is New York's only
    assert refusal(await decide(client, consult)) == not_licensed
    await credentials_in_new_jersey(license=False, dea=True)  # the license is New York's only
    assert refusal(await decide(client, consult)) == not_licensed
    await credentials_in_new_jersey(license=True, dea=True)
    decided = await decide(client, consult)
    assert decided.status_code == 200, decided.text
