"""Invitations: next N in order, never twice under concurrency, expiry moving on, account creation."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from telehealth.accounts.roles import Role
from telehealth.db.engine import transaction
from telehealth.lib.actors import Actor
from telehealth.outbox.schedule import enqueue_due_periodic_jobs
from telehealth.waitlist.invitations import invite_next
from telehealth.waitlist.models import WaitlistEntry, WaitlistInvitation
from tests.helpers import csrf_headers, drain_jobs, form_csrf_token, make_person, sign_in, worker_context
from tests.integration.waitlist.helpers import credential_prescriber, join_and_confirm, mail_links, person, status

PASSWORD = "my new long password"


async def _queue(client, session_factory, settings, clock, smtp, count, state="NY"):
    await credential_prescriber(session_factory, settings, clock, states=(state,))  # only served states invite
    tokens = []
    for i in range(count):
        clock.advance(timedelta(seconds=1))
        tokens.append(await join_and_confirm(client, session_factory, settings, clock, smtp, person(i, state=state)))
    return tokens


async def test_a_coordinator_invites_the_next_people_in_queue_order(client, session_factory, settings, clock, smtp):
    tokens = await _queue(client, session_factory, settings, clock, smtp, 4)
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    await sign_in(client, coordinator, clock)
    run = await client.post("/api/v1/waitlist/invitations", json={"state": "ny", "count": 2}, headers=await csrf_headers(client))
    assert run.status_code == 201
    assert (run.json()["state"], run.json()["invited"]) == ("NY", 2)
    assert [(await status(client, t))["status"] for t in tokens] == ["invited", "invited", "waiting", "waiting"]
    assert (await status(client, tokens[2]))["position"] == 1
    invited = await mail_links(session_factory, settings, clock, smtp, "/invitations/accept")
    assert set(invited) == {"robin0@example.org", "robin1@example.org"}
    more = await client.post("/api/v1/waitlist/invitations", json={"state": "NY", "count": 10}, headers=await csrf_headers(client))
    assert more.json()["invited"] == 2  # only two were left


async def test_concurrent_invitation_runs_never_invite_one_person_twice(client, session_factory, settings, clock, smtp):
    await _queue(client, session_factory, settings, clock, smtp, 7)

    async def run() -> list:
        async with transaction(session_factory) as session:
            ids = await invite_next(session, state="NY", count=4, actor=Actor.system(), now=clock.now(), settings=settings)
            await asyncio.sleep(0.05)  # hold the row locks while the other run looks
            return ids

    first, second = await asyncio.gather(run(), run())
    assert sorted([len(first), len(second)]) == [3, 4]
    async with session_factory() as session:
        entry_ids = (await session.execute(select(WaitlistInvitation.entry_id))).scalars().all()
    assert len(entry_ids) == len(set(entry_ids)) == 7


async def test_an_expired_invitation_moves_on_to_the_next_person(client, session_factory, settings, clock, smtp):
    tokens = await _queue(client, session_factory, settings, clock, smtp, 3)
    async with transaction(session_factory) as session:
        await invite_next(session, state="NY", count=1, actor=Actor.system(), now=clock.now(), settings=settings)
    context = worker_context(session_factory, settings, clock)
    clock.advance(timedelta(days=settings.thresholds.invitation_valid_days) - timedelta(minutes=1))
    await enqueue_due_periodic_jobs(context)
    await drain_jobs(context)
    assert (await status(client, tokens[0]))["status"] == "invited"  # not yet
    clock.advance(timedelta(minutes=16))
    await enqueue_due_periodic_jobs(context)
    await drain_jobs(context)
    first = await status(client, tokens[0])
    assert first["status"] == "lapsed"
    assert first["note"].startswith("Invitation expired unused on")
    assert (await status(client, tokens[1]))["status"] == "invited"  # the next person
    assert (await status(client, tokens[2]))["position"] == 1
    subjects = {str(m["To"]): m["Subject"] for m in smtp.messages}
    assert subjects["robin0@example.org"] == "Your Evergreen Home Program invitation has ended"
    assert subjects["robin1@example.org"] == "Your invitation to Evergreen Home Program"
    back = await client.post("/api/v1/waitlist/rejoin", json={"token": tokens[0]}, headers=await csrf_headers(client))
    assert (back.json()["status"], back.json()["position"]) == ("waiting", 2)  # the back of the queue


async def test_an_invitation_creates_the_patient_account_once(client, session_factory, settings, clock, smtp):
    token = (await _queue(client, session_factory, settings, clock, smtp, 1))[0]
    async with transaction(session_factory) as session:
        await invite_next(session, state="NY", count=1, actor=Actor.system(), now=clock.now(), settings=settings)
    accept = (await mail_links(session_factory, settings, clock, smtp, "/invitations/accept"))["robin0@example.org"]
    headers = await csrf_headers(client)
    no_terms = await client.post(
        "/api/v1/invitations/accept", json={"token": accept, "password": PASSWORD, "accept_terms": False}, headers=headers
    )
    assert no_terms.status_code == 422 and no_terms.json()["fields"] == {"accept_terms": "must be accepted"}
    created = await client.post(
        "/api/v1/invitations/accept", json={"token": accept, "password": PASSWORD, "accept_terms": True}, headers=headers
    )
    assert created.status_code == 201
    me = (await client.get("/api/v1/auth/me")).json()
    assert (me["email"], me["role"], me["email_verified"], me["full_name"]) == ("robin0@example.org", "patient", True, "Robin0 Example")
    record = (await client.get(f"/api/v1/patients/{me['patient_id']}")).json()
    assert record["state_of_residence"] == "NY"
    assert (await status(client, token))["status"] == "enrolled"
    reused = await client.post(
        "/api/v1/invitations/accept", json={"token": accept, "password": PASSWORD, "accept_terms": True}, headers=headers
    )
    assert reused.status_code == 422 and reused.json()["code"] == "invitation.link_invalid"
    async with session_factory() as session:
        entry = (await session.execute(select(WaitlistEntry))).scalar_one()
    assert str(entry.patient_id) == me["patient_id"]


async def test_an_expired_invitation_link_creates_nothing(client, session_factory, settings, clock, smtp):
    await _queue(client, session_factory, settings, clock, smtp, 1)
    async with transaction(session_factory) as session:
        await invite_next(session, state="NY", count=1, actor=Actor.system(), now=clock.now(), settings=settings)
    accept = (await mail_links(session_factory, settings, clock, smtp, "/invitations/accept"))["robin0@example.org"]
    clock.advance(timedelta(days=settings.thresholds.invitation_valid_days, seconds=1))
    late = await client.post(
        "/api/v1/invitations/accept", json={"token": accept, "password": PASSWORD, "accept_terms": True}, headers=await csrf_headers(client)
    )
    assert late.status_code == 422
    page = await client.get(f"/invitations/accept?token={accept}", headers={"accept": "text/html"})
    assert page.status_code == 404 and "expired or was already used" in page.text


async def test_nobody_is_invited_in_a_state_no_prescriber_serves(client, session_factory, settings, clock, smtp):
    await join_and_confirm(client, session_factory, settings, clock, smtp, person(0, state="VT"))
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    await sign_in(client, coordinator, clock)
    refused = await client.post("/api/v1/waitlist/invitations", json={"state": "VT", "count": 1}, headers=await csrf_headers(client))
    assert refused.status_code == 422
    assert (refused.json()["code"], refused.json()["fields"]) == ("waitlist.state_not_served", {"state": "is not served yet"})


async def test_leaving_with_an_invitation_passes_the_place_on(client, session_factory, settings, clock, smtp):
    tokens = await _queue(client, session_factory, settings, clock, smtp, 2)
    async with transaction(session_factory) as session:
        await invite_next(session, state="NY", count=1, actor=Actor.system(), now=clock.now(), settings=settings)
    assert (await client.post("/api/v1/waitlist/leave", json={"token": tokens[0]}, headers=await csrf_headers(client))).status_code == 200
    assert (await status(client, tokens[1]))["status"] == "invited"
    async with session_factory() as session:
        statuses = sorted((await session.execute(select(WaitlistInvitation.status))).scalars())
    assert statuses == ["revoked", "sent"]


async def test_the_waiting_list_page_offers_invite_only_for_served_states(client, session_factory, settings, clock, smtp):
    await _queue(client, session_factory, settings, clock, smtp, 1, state="NY")
    await join_and_confirm(client, session_factory, settings, clock, smtp, person(5, state="VT"))
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    await sign_in(client, coordinator, clock)
    page = (await client.get("/coordinator/waitlist")).text

    def row(state_name: str) -> str:
        return page.split(f'<th scope="row" role="rowheader">{state_name}</th>')[1].split("</tr>")[0]

    assert ">Invite</button>" in row("New York") and "Not served yet" not in row("New York")
    assert ">Invite</button>" not in row("Vermont") and "Not served yet" in row("Vermont")
    refused = await client.post(
        "/coordinator/waitlist/invitations", data={"state": "VT", "count": "1", "_csrf_token": form_csrf_token(page)}
    )
    assert refused.status_code == 422 and "Vermont" in refused.text and "nobody there can be invited" in refused.text
