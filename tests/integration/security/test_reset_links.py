"""Finding: older password-reset links stayed valid after a reset, and after a newer link was sent.

A new link retires the older ones; using one link retires every other live link of the account."""

from __future__ import annotations

from datetime import timedelta

from telehealth.accounts.models import UserAccount
from telehealth.accounts.roles import Role
from telehealth.accounts.service import _issue_token
from telehealth.db.engine import transaction
from tests.helpers import csrf_headers, drain_jobs, link_in, make_person, sign_in, worker_context

NEW_PASSWORD = "a brand new long passphrase"


async def _emailed_reset_token(client, session_factory, settings, clock, smtp, email: str) -> str:
    response = await client.post("/api/v1/auth/password-reset", json={"email": email}, headers=await csrf_headers(client))
    assert response.status_code == 202
    await drain_jobs(worker_context(session_factory, settings, clock))
    return link_in(smtp.text_of(smtp.messages[-1]), "/password/reset")


async def _confirm(client, token: str, password: str):
    return await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "password": password}, headers=await csrf_headers(client)
    )


async def test_a_new_reset_link_retires_the_older_one(client, session_factory, settings, clock, smtp):
    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    older = await _emailed_reset_token(client, session_factory, settings, clock, smtp, patient.email)
    clock.advance(timedelta(minutes=1))
    newer = await _emailed_reset_token(client, session_factory, settings, clock, smtp, patient.email)
    assert older != newer

    refused = await _confirm(client, older, NEW_PASSWORD)
    assert refused.status_code == 422
    assert refused.json()["fields"] == {"token": "is expired, used or unknown"}
    assert (await _confirm(client, newer, NEW_PASSWORD)).status_code == 200
    await sign_in(client, patient, clock, password=NEW_PASSWORD)


async def test_using_one_reset_link_retires_every_other_live_link(client, session_factory, settings, clock, smtp):
    """Two live links at once (issued before this fix, or by any future path): a reset with one kills the other,
    so a link sitting in an old email (or someone else's hands) cannot set the password again afterwards."""
    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    async with transaction(session_factory) as session:
        user = await session.get(UserAccount, patient.user_id)
        first = await _issue_token(session, user=user, purpose="reset_password", valid_for=timedelta(minutes=30), now=clock.now())
        second = await _issue_token(session, user=user, purpose="reset_password", valid_for=timedelta(minutes=30), now=clock.now())

    assert (await _confirm(client, second, NEW_PASSWORD)).status_code == 200
    stale = await _confirm(client, first, "an attacker's chosen password")
    assert stale.status_code == 422
    assert stale.json()["code"] == "reset_password.link_invalid"
    await sign_in(client, patient, clock, password=NEW_PASSWORD)


async def test_two_links_racing_one_reset_wins(session_factory, settings, clock):
    """Two links of one account used at the same moment on separate connections: exactly one sets the password."""
    import asyncio

    from telehealth.accounts.service import reset_password
    from telehealth.lib.actors import Actor
    from telehealth.lib.errors import InvalidInput

    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    async with transaction(session_factory) as session:
        user = await session.get(UserAccount, patient.user_id)
        tokens = [
            await _issue_token(session, user=user, purpose="reset_password", valid_for=timedelta(minutes=30), now=clock.now())
            for _ in range(2)
        ]

    async def use(token: str, password: str) -> str:
        try:
            async with transaction(session_factory) as session:
                await reset_password(session, token=token, new_password=password, actor=Actor.system(), now=clock.now())
            return "reset"
        except InvalidInput:
            return "refused"

    outcomes = await asyncio.gather(use(tokens[0], NEW_PASSWORD), use(tokens[1], NEW_PASSWORD + " two"))
    assert sorted(outcomes) == ["refused", "reset"]
