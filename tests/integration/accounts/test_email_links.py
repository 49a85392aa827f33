"""Password reset (single use, 30 minutes) and email verification, through real mail."""

from __future__ import annotations

from datetime import timedelta

from telehealth.accounts.roles import Role
from tests.helpers import csrf_headers, drain_jobs, link_in, make_person, sign_in, worker_context

NEW_PASSWORD = "a brand new long passphrase"


async def _reset_token(client, session_factory, settings, clock, smtp, email):
    response = await client.post("/api/v1/auth/password-reset", json={"email": email}, headers=await csrf_headers(client))
    assert response.status_code == 202
    await drain_jobs(worker_context(session_factory, settings, clock))
    return link_in(smtp.text_of(smtp.messages[-1]), "/password/reset")


async def test_password_reset_works_once_and_ends_other_sessions(client, session_factory, settings, clock, smtp):
    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    await sign_in(client, patient, clock)
    old_session = client.cookies["th_session"]
    token = await _reset_token(client, session_factory, settings, clock, smtp, patient.email)
    headers = await csrf_headers(client)
    done = await client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD}, headers=headers)
    assert done.status_code == 200
    again = await client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD + "!"}, headers=headers)
    assert again.status_code == 422
    assert again.json()["fields"] == {"token": "is expired, used or unknown"}
    client.cookies.set("th_session", old_session)
    assert (await client.get("/api/v1/auth/me")).status_code == 401
    await sign_in(client, patient, clock, password=NEW_PASSWORD)


async def test_a_reset_link_expires_after_thirty_minutes(client, session_factory, settings, clock, smtp):
    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    token = await _reset_token(client, session_factory, settings, clock, smtp, patient.email)
    clock.advance(timedelta(minutes=30, seconds=1))
    late = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD}, headers=await csrf_headers(client)
    )
    assert late.status_code == 422


async def test_a_weak_new_password_is_refused_and_the_link_still_works(client, session_factory, settings, clock, smtp):
    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    token = await _reset_token(client, session_factory, settings, clock, smtp, patient.email)
    headers = await csrf_headers(client)
    weak = await client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": "short"}, headers=headers)
    assert weak.status_code == 422
    assert weak.json()["fields"]["password"] == "must be at least 12 characters"
    ok = await client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD}, headers=headers)
    assert ok.status_code == 200


async def test_reset_for_an_unknown_email_answers_the_same_and_sends_nothing(client, session_factory, settings, clock, smtp):
    response = await client.post("/api/v1/auth/password-reset", json={"email": "ghost@example.org"}, headers=await csrf_headers(client))
    assert response.status_code == 202
    await drain_jobs(worker_context(session_factory, settings, clock))
    assert smtp.messages == []


async def test_email_verification_link(client, session_factory, settings, clock, smtp):
    from telehealth.accounts.service import create_account
    from telehealth.db.engine import transaction
    from telehealth.lib.actors import Actor

    async with transaction(session_factory) as session:
        await create_account(
            session,
            email="new@example.org",
            full_name="New Person",
            role=Role.PATIENT,
            password="a long enough password",
            actor=Actor.system(),
            now=clock.now(),
            settings=settings,
        )
    await drain_jobs(worker_context(session_factory, settings, clock))
    [mail] = smtp.messages
    assert mail["Subject"] == "Confirm your email address for Evergreen Home Program"
    token = link_in(smtp.text_of(mail), "/account/verify-email")
    headers = await csrf_headers(client)
    assert (await client.post("/api/v1/auth/verify-email", json={"token": token}, headers=headers)).status_code == 200
    assert (await client.post("/api/v1/auth/verify-email", json={"token": token}, headers=headers)).status_code == 422


async def test_resending_the_verification_link(client, session_factory, settings, clock, smtp):
    from telehealth.accounts.service import create_account
    from telehealth.db.engine import transaction
    from telehealth.lib.actors import Actor
    from tests.helpers import Person

    async with transaction(session_factory) as session:
        user = await create_account(
            session,
            email="new@example.org",
            full_name="New Person",
            role=Role.PATIENT,
            password="a long enough password",
            actor=Actor.system(),
            now=clock.now(),
            settings=settings,
        )
    await sign_in(client, Person(user.id, "new@example.org", Role.PATIENT, None), clock, password="a long enough password")
    headers = await csrf_headers(client)
    for _ in range(3):  # the first link is still queued: repeated clicks add nothing
        assert (await client.post("/api/v1/auth/verify-email/resend", headers=headers)).status_code == 202
    await drain_jobs(worker_context(session_factory, settings, clock))
    assert len(smtp.messages) == 1
    assert (await client.post("/api/v1/auth/verify-email/resend", headers=headers)).status_code == 202
    await drain_jobs(worker_context(session_factory, settings, clock))
    token = link_in(smtp.text_of(smtp.messages[-1]), "/account/verify-email")
    assert (await client.post("/api/v1/auth/verify-email", json={"token": token}, headers=headers)).status_code == 200
    again = await client.post("/api/v1/auth/verify-email/resend", headers=headers)
    assert again.status_code == 409
    assert again.json()["code"] == "account.already_verified"
