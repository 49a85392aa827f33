"""Approval is a compare-and-swap (DOMAIN.md "Plans"): concurrent signings of one plan give exactly one
success. Two different fresh codes cannot exist in one 30-second step, so the same valid code is sent at
once from two signed-in browsers of the prescriber: one signs, every other is refused."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from sqlalchemy import func, select

from telehealth.accounts.security import current_totp_code
from telehealth.audit.models import AuditEvent
from telehealth.prescribing.models import PlanBatch
from tests.helpers import PASSWORD, csrf_headers
from tests.integration.prescribing.helpers import (
    at_once,
    audit_actions,
    consult_with_encounter,
    drafted,
    ready_to_prescribe,
    request_as,
    sign,
    switch_to,
)


async def test_five_simultaneous_signings_with_the_same_code_from_two_sessions_sign_once(
    client, session_factory, settings, clock, stripe_fake
):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    await ready_to_prescribe(client, consult, clock)
    plan = await drafted(client, consult)
    await csrf_headers(client)
    browsers = [httpx.Cookies(client.cookies)]
    await switch_to(client, consult.prescriber, clock)  # a second session (signed in with the next step's code)
    await csrf_headers(client)
    browsers.append(httpx.Cookies(client.cookies))
    assert dict(browsers[0]) != dict(browsers[1])

    clock.advance(timedelta(seconds=30))  # a step neither sign-in used
    body = {"password": PASSWORD, "code": current_totp_code(consult.prescriber.totp_secret, at=clock.now())}
    url = f"/api/v1/plans/{plan['id']}/sign"
    answers = await at_once(client, [request_as(client, browsers[i % 2], "POST", url, json=body) for i in range(5)])

    assert sorted(a.status_code for a in answers)[-1] < 500, [(a.status_code, a.text) for a in answers]
    assert [a.status_code for a in answers].count(200) == 1, [(a.status_code, a.text) for a in answers]
    refused = {(a.status_code, a.json()["code"]) for a in answers if a.status_code != 200}
    assert refused <= {(422, "two_factor.wrong_code"), (409, "plan.not_draft"), (409, "troche_plan.status_changed")}, refused

    again = await sign(client, consult, plan["id"], clock)  # a fresh code later: the plan is no longer a draft
    assert (again.status_code, again.json()["code"]) == (409, "plan.not_draft")

    actions = await audit_actions(session_factory, plan["id"])
    assert (actions.count("troche_plan.sign"), actions.count("troche_plan.send")) == (1, 1)
    async with session_factory() as session:
        batches = await session.scalar(select(func.count()).select_from(PlanBatch).where(PlanBatch.plan_id == uuid.UUID(plan["id"])))
        signings = list((await session.execute(select(AuditEvent.outcome).where(AuditEvent.action == "auth.signing"))).scalars())
    assert batches == 2  # one set: batch 1 queued, batch 2 held
    assert signings.count("success") == 1, signings
