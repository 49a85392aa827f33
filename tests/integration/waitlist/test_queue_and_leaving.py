"""Queues per state in confirmation order, served states, estimates, leaving with erasure, the coordinator view."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select, text

from telehealth.accounts.roles import Role
from telehealth.waitlist.models import WaitlistEntry
from tests.helpers import csrf_headers, make_person, sign_in
from tests.integration.waitlist.helpers import credential_prescriber, join, join_and_confirm, mail_links, person, status


async def test_each_state_is_its_own_queue_in_confirmation_order(client, session_factory, settings, clock, smtp):
    await join(client, person(0))  # joins first, confirms last
    early = await join_and_confirm(client, session_factory, settings, clock, smtp, person(1))
    clock.advance(timedelta(minutes=5))
    other_state = await join_and_confirm(client, session_factory, settings, clock, smtp, person(2, state="CA"))
    clock.advance(timedelta(minutes=5))
    links = await mail_links(session_factory, settings, clock, smtp, "/waitlist/entry")
    late = links["robin0@example.org"]
    await client.post("/api/v1/waitlist/confirm", json={"token": late}, headers=await csrf_headers(client))
    assert [(await status(client, t))["position"] for t in (early, late, other_state)] == [1, 2, 1]
    assert (await status(client, late))["people_waiting_in_state"] == 2


async def test_a_state_is_served_only_with_an_unexpired_license_and_dea_registration(client, session_factory, settings, clock, smtp):
    token = await join_and_confirm(client, session_factory, settings, clock, smtp, person())
    assert (await status(client, token))["state_served"] is False
    await credential_prescriber(session_factory, settings, clock, dea_expires=None)  # license only
    assert (await status(client, token))["state_served"] is False
    yesterday = clock.now().date() - timedelta(days=1)
    await credential_prescriber(session_factory, settings, clock, license_expires=date(2030, 1, 1), dea_expires=yesterday)
    assert (await status(client, token))["state_served"] is False
    await credential_prescriber(session_factory, settings, clock, license_expires=clock.now().date(), dea_expires=date(2030, 1, 1))
    assert (await status(client, token))["state_served"] is True  # valid through today


async def test_the_estimate_comes_from_the_recent_invitation_rate(client, session_factory, settings, clock, smtp):
    from telehealth.db.engine import transaction
    from telehealth.lib.actors import Actor
    from telehealth.waitlist.invitations import invite_next

    await credential_prescriber(session_factory, settings, clock)
    tokens = []
    for i in range(13):
        clock.advance(timedelta(seconds=1))  # distinct confirmation times: a clear queue order
        tokens.append(await join_and_confirm(client, session_factory, settings, clock, smtp, person(i)))
    assert (await status(client, tokens[-1]))["estimated_wait_weeks"] is None  # no invitations yet
    async with transaction(session_factory) as session:
        await invite_next(session, state="NY", count=8, actor=Actor.system(), now=clock.now(), settings=settings)
    mine = await status(client, tokens[-1])
    assert mine["position"] == 5
    assert mine["estimated_wait_weeks"] == 3  # 8 invitations in 4 weeks = 2 a week; 5 ahead of me -> 3 weeks


async def test_leaving_erases_personal_data_and_keeps_counts(client, session_factory, settings, clock, smtp):
    token = await join_and_confirm(client, session_factory, settings, clock, smtp, person(0, phone="+12125550123", conditions=["ptsd"]))
    other = await join_and_confirm(client, session_factory, settings, clock, smtp, person(1))
    left = await client.post("/api/v1/waitlist/leave", json={"token": token}, headers=await csrf_headers(client))
    assert left.status_code == 200
    async with session_factory() as session:
        erased = (await session.execute(select(WaitlistEntry).where(WaitlistEntry.status == "left"))).scalar_one()
        links = await session.scalar(text("SELECT count(*) FROM waitlist_link WHERE entry_id = :id"), {"id": erased.id})
    assert (erased.first_name, erased.last_name, erased.email, erased.date_of_birth, erased.phone, erased.conditions) == (None,) * 6
    assert (erased.state, erased.left_at) == ("NY", clock.now())
    assert links == 0
    gone = await client.post("/api/v1/waitlist/status", json={"token": token}, headers=await csrf_headers(client))
    assert gone.status_code == 404
    assert (await status(client, other))["position"] == 1  # the person behind moved up
    assert (await join(client, person(0))).status_code == 202  # and they may join again


async def test_leaving_drops_mail_still_queued_to_the_address(client, session_factory, settings, clock, smtp):
    assert (await join(client, person())).status_code == 202
    async with session_factory() as session:
        entry = (await session.execute(select(WaitlistEntry))).scalar_one()
    from telehealth.db.engine import transaction
    from telehealth.waitlist.service import _issue_link

    async with transaction(session_factory) as session:
        url = await _issue_link(session, entry_id=entry.id, now=clock.now(), settings=settings)
    await client.post("/api/v1/waitlist/leave", json={"token": url.split("token=")[1]}, headers=await csrf_headers(client))
    assert await mail_links(session_factory, settings, clock, smtp, "/waitlist/entry") == {}
    assert smtp.messages == []


async def test_the_coordinator_sees_every_state(client, session_factory, settings, clock, smtp):
    await join_and_confirm(client, session_factory, settings, clock, smtp, person(0))
    await join(client, person(1, state="CA"))
    await credential_prescriber(session_factory, settings, clock, states=("NY", "NJ"))
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    await sign_in(client, coordinator, clock)
    rows = {row["state"]: row for row in (await client.get("/api/v1/waitlist/states")).json()}
    assert set(rows) == {"CA", "NJ", "NY"}
    assert (rows["NY"]["waiting"], rows["NY"]["served"], rows["CA"]["unconfirmed"], rows["CA"]["served"]) == (1, True, 1, False)
    assert rows["NY"]["oldest_waiting_since"] is not None
    page = await client.get("/coordinator/waitlist")
    assert page.status_code == 200 and "New York" in page.text


async def test_only_coordinators_invite_or_see_queues(client, session_factory, settings, clock):
    prescriber = await make_person(session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=settings)
    await sign_in(client, prescriber, clock)
    assert (await client.get("/api/v1/waitlist/states")).status_code == 403
    refused = await client.post("/api/v1/waitlist/invitations", json={"state": "NY", "count": 1}, headers=await csrf_headers(client))
    assert refused.status_code == 403
