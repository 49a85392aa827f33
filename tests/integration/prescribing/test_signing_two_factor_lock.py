"""A locked second factor blocks signing (issue 20, item 1): wrong codes entered elsewhere (another browser
that knows the password) lock it, and the prescriber's own verified session cannot sign or step up until the
lock runs out; it answers 403 `two_factor.locked` before any password or code is checked."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select

from telehealth.accounts.security import current_totp_code
from telehealth.audit.models import AuditEvent
from tests.helpers import PASSWORD, csrf_headers
from tests.integration.prescribing.helpers import consult_with_encounter, drafted, not_a_current_code, ready_to_prescribe, refusal, sign

LOCKED = (403, "two_factor.locked", ["code"])


async def test_signing_is_refused_while_the_second_factor_is_locked(client, session_factory, settings, clock, stripe_fake):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    await ready_to_prescribe(client, consult, clock)
    plan = await drafted(client, consult)
    prescribers_browser = httpx.Cookies(client.cookies)

    # Someone with the password, in another browser, guesses codes until the second factor locks.
    client.cookies.clear()
    headers = await csrf_headers(client)
    assert (
        await client.post("/api/v1/auth/sign-in", json={"email": consult.prescriber.email, "password": PASSWORD}, headers=headers)
    ).status_code == 200
    for _ in range(10):
        guess = not_a_current_code(consult.prescriber.totp_secret, clock.now())
        assert (await client.post("/api/v1/auth/two-factor/verify", json={"code": guess}, headers=headers)).status_code == 422

    client.cookies = prescribers_browser  # the prescriber's own session, two-factor verified, still open
    assert refusal(await sign(client, consult, plan["id"], clock)) == LOCKED
    assert refusal(await sign(client, consult, plan["id"], clock, password="not the password")) == LOCKED  # no password check either
    step_up = await client.post(
        "/api/v1/auth/step-up",
        json={"code": current_totp_code(consult.prescriber.totp_secret, at=clock.now())},
        headers=await csrf_headers(client),
    )
    assert refusal(step_up) == LOCKED
    assert (await client.get(f"/api/v1/plans/{plan['id']}")).json()["status"] == "draft"
    async with session_factory() as session:
        denied = (
            (
                await session.execute(
                    select(AuditEvent.reason).where(
                        AuditEvent.action == "auth.signing", AuditEvent.actor_user_id == consult.prescriber.user_id
                    )
                )
            )
            .scalars()
            .all()
        )
    assert denied == ["two_factor_locked", "two_factor_locked"]

    clock.advance(timedelta(minutes=15))  # the lock runs out (sign moves on another 30 s)
    signed = await sign(client, consult, plan["id"], clock)
    assert signed.status_code == 200, signed.text
