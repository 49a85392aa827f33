"""Guessing the second factor (issue 20, item 1): wrong codes count on their own, in rolling windows that a
correct password or a correct code does not reset; too many lock the second factor and tell the owner once;
one address guessing codes for many accounts is throttled."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from telehealth.accounts.roles import Role
from telehealth.accounts.security import current_totp_code
from telehealth.audit.models import AuditEvent
from telehealth.system.models import RateLimitEvent
from tests.helpers import PASSWORD, csrf_headers, drain_jobs, make_person, worker_context


def wrong_code(secret: str, clock) -> str:
    """Six digits that are not a code the check accepts now (one step of drift either way)."""
    accepted = {current_totp_code(secret, at=clock.now() + timedelta(seconds=30 * n)) for n in (-1, 0, 1)}
    return next(code for code in (f"{d}" * 6 for d in range(10)) if code not in accepted)


async def password_step(client, person) -> dict[str, str]:
    """A fresh browser signs in with the right password (the first step only)."""
    client.cookies.clear()
    headers = await csrf_headers(client)
    response = await client.post("/api/v1/auth/sign-in", json={"email": person.email, "password": PASSWORD}, headers=headers)
    assert response.status_code == 200, response.text
    return headers


async def send_code(client, headers, code: str):
    return await client.post("/api/v1/auth/two-factor/verify", json={"code": code}, headers=headers)


async def test_wrong_codes_spread_over_password_sign_ins_still_lock_the_second_factor(client, session_factory, settings, clock, smtp):
    prescriber = await make_person(session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=settings)
    wrong = wrong_code(prescriber.totp_secret, clock)
    for _ in range(3):  # the attack: nine wrong codes, then the right password again to "reset" the count
        headers = await password_step(client, prescriber)
        for _ in range(9):
            await send_code(client, headers, wrong)

    headers = await password_step(client, prescriber)
    right = await send_code(client, headers, current_totp_code(prescriber.totp_secret, at=clock.now()))
    assert right.status_code == 403, right.text
    assert right.json()["code"] == "two_factor.locked"

    # The owner hears once, with nothing but what to do.
    await drain_jobs(worker_context(session_factory, settings, clock))
    assert [m["Subject"] for m in smtp.messages] == ["Two-factor codes paused on your Evergreen Home Program account"]
    body = smtp.messages[0].get_body(("plain",)).get_content()
    assert "several wrong codes" in body.lower() and "if it was not you" in body.lower()
    assert "prescri" not in body.lower() and "plan" not in body.lower()


async def test_a_correct_code_resets_nothing_and_the_window_rolls(client, session_factory, settings, clock):
    prescriber = await make_person(session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=settings)
    headers = await password_step(client, prescriber)
    for _ in range(9):
        assert (await send_code(client, headers, wrong_code(prescriber.totp_secret, clock))).status_code == 422
    assert (await send_code(client, headers, current_totp_code(prescriber.totp_secret, at=clock.now()))).status_code == 200
    clock.advance(timedelta(seconds=30))
    step_up = await client.post("/api/v1/auth/step-up", json={"code": wrong_code(prescriber.totp_secret, clock)}, headers=headers)
    assert step_up.status_code == 422  # the tenth wrong code in 15 minutes: the second factor locks now
    headers = await password_step(client, prescriber)
    locked = await send_code(client, headers, current_totp_code(prescriber.totp_secret, at=clock.now()))
    assert (locked.status_code, locked.json()["code"]) == (403, "two_factor.locked")

    clock.advance(timedelta(minutes=15, seconds=1))  # the lock has run out and the ten failures have left the window
    headers = await password_step(client, prescriber)
    assert (await send_code(client, headers, wrong_code(prescriber.totp_secret, clock))).status_code == 422
    assert (await send_code(client, headers, current_totp_code(prescriber.totp_secret, at=clock.now()))).status_code == 200


async def test_thirty_wrong_codes_in_a_day_lock_the_second_factor_for_a_day(client, session_factory, settings, clock):
    prescriber = await make_person(session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=settings)
    for _ in range(3):  # ten wrong codes, wait out the short lock, again
        headers = await password_step(client, prescriber)
        for _ in range(10):
            await send_code(client, headers, wrong_code(prescriber.totp_secret, clock))
        clock.advance(timedelta(minutes=15, seconds=1))
    headers = await password_step(client, prescriber)
    still = await send_code(client, headers, current_totp_code(prescriber.totp_secret, at=clock.now()))
    assert (still.status_code, still.json()["code"]) == (403, "two_factor.locked")
    clock.advance(timedelta(hours=24))
    headers = await password_step(client, prescriber)
    assert (await send_code(client, headers, current_totp_code(prescriber.totp_secret, at=clock.now()))).status_code == 200


async def test_one_address_guessing_codes_for_many_accounts_is_throttled(client, session_factory, settings, clock):
    people = [
        await make_person(session_factory, role=Role.PRESCRIBER, email=f"rx{n}@example.org", now=clock.now(), settings=settings)
        for n in range(4)
    ]
    for person in people[:3]:  # nine wrong codes each: no account reaches its own lock
        headers = await password_step(client, person)
        for _ in range(9):
            assert (await send_code(client, headers, wrong_code(person.totp_secret, clock))).status_code == 422
    last = people[3]
    headers = await password_step(client, last)
    for _ in range(3):  # the address's thirtieth wrong code in 15 minutes
        assert (await send_code(client, headers, wrong_code(last.totp_secret, clock))).status_code == 422
    throttled = await send_code(client, headers, current_totp_code(last.totp_secret, at=clock.now()))
    assert (throttled.status_code, throttled.json()["code"]) == (429, "two_factor.rate_limited")
    async with session_factory() as session:
        denied = (
            (await session.execute(select(AuditEvent.reason).where(AuditEvent.action == "auth.two_factor", AuditEvent.outcome == "denied")))
            .scalars()
            .all()
        )
    assert denied == ["address_rate_limited"]

    clock.advance(timedelta(minutes=15, seconds=1))
    headers = await password_step(client, last)
    assert (await send_code(client, headers, current_totp_code(last.totp_secret, at=clock.now()))).status_code == 200


async def test_concurrent_wrong_codes_count_one_by_one_and_lock_once(client, session_factory, settings, clock, smtp):
    from tests.integration.prescribing.helpers import at_once, request_as

    prescriber = await make_person(session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=settings)
    await password_step(client, prescriber)
    wrong = wrong_code(prescriber.totp_secret, clock)
    guesses = [request_as(client, client.cookies, "POST", "/api/v1/auth/two-factor/verify", json={"code": wrong}) for _ in range(14)]
    statuses = sorted(answer.status_code for answer in await at_once(client, guesses))
    assert statuses.count(422) == 10 and set(statuses) <= {401, 403, 422}, statuses  # the rest: locked, or the session ended
    async with session_factory() as session:
        counted = await session.scalar(
            select(func.count()).select_from(RateLimitEvent).where(RateLimitEvent.bucket == "two_factor_failure")
        )
    assert counted == 10
    await drain_jobs(worker_context(session_factory, settings, clock))
    assert len(smtp.messages) == 1
