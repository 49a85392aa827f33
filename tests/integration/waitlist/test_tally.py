"""waitlist_tally: after any mix of changes, concurrent ones included, it holds exactly the people waiting per
state and day, and positions read from it are those the plain count over the queue gives."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, text, tuple_
from sqlalchemy.exc import DBAPIError

from telehealth.db.engine import transaction
from telehealth.lib.actors import Actor
from telehealth.waitlist.invitations import accept_invitation, expire_due_invitations, invite_next
from telehealth.waitlist.models import IS_WAITING, WaitlistEntry, WaitlistTally, tally_bucket
from telehealth.waitlist.service import _issue_link, confirm_place, leave_waitlist, place_in_queue, rejoin
from tests.integration.waitlist.helpers import credential_prescriber, mail_links

VISITOR = Actor.anonymous(ip="192.0.2.1")


async def add_entries(session_factory, *, count: int, state: str = "NY", status: str = "unconfirmed", confirmed_at=None, joined_at) -> list:
    """Rows written directly (as the demo seed does): the triggers count waiting ones like any other change."""
    rows = [
        {
            "id": uuid.uuid4(),
            "status": status,
            "state": state,
            "first_name": "Tally",
            "last_name": f"Person {n}",
            "email": f"tally-{uuid.uuid4().hex[:12]}@example.org",
            "consent_to_contact": True,
            "joined_at": joined_at,
            "confirmed_at": confirmed_at,
        }
        for n in range(count)
    ]
    async with transaction(session_factory) as session:
        await session.execute(insert(WaitlistEntry), rows)
    return [row["id"] for row in rows]


async def link_token(session_factory, entry_id, clock, settings) -> str:
    async with transaction(session_factory) as session:
        return (await _issue_link(session, entry_id=entry_id, now=clock.now(), settings=settings)).split("token=", 1)[1]


async def assert_tally_is_the_count(session_factory) -> None:
    async with session_factory() as session:
        day = tally_bucket(WaitlistEntry.confirmed_at)
        counted = (
            await session.execute(select(WaitlistEntry.state, day, func.count()).where(IS_WAITING).group_by(WaitlistEntry.state, day))
        ).all()
        tally = (await session.execute(select(WaitlistTally.state, WaitlistTally.bucket_start, WaitlistTally.waiting))).all()
    assert sorted(tally) == sorted(counted)


async def assert_positions_as_counted(session_factory, settings, now) -> int:
    """place_in_queue against the plain counts it replaced, for every entry; answers how many waited."""
    async with session_factory() as session:
        entries = (await session.execute(select(WaitlistEntry))).scalars().all()
        for entry in entries:
            place = await place_in_queue(session, entry, now=now, settings=settings)
            in_state = (WaitlistEntry.state == entry.state, IS_WAITING)
            waiting = await session.scalar(select(func.count()).select_from(WaitlistEntry).where(*in_state))
            position = None
            if entry.status == "waiting":
                before = tuple_(WaitlistEntry.confirmed_at, WaitlistEntry.id) < tuple_(entry.confirmed_at, entry.id)
                position = await session.scalar(select(func.count()).select_from(WaitlistEntry).where(*in_state, before)) + 1
            assert (place.position, place.people_waiting) == (position, waiting), (entry.status, entry.confirmed_at)
    return sum(1 for entry in entries if entry.status == "waiting")


async def test_every_change_of_status_keeps_the_tally_and_the_positions(session_factory, settings, clock, smtp):
    await credential_prescriber(session_factory, settings, clock, states=("NY", "CA"))
    ids = await add_entries(session_factory, count=12, joined_at=clock.now()) + await add_entries(
        session_factory, count=4, state="CA", joined_at=clock.now()
    )
    tokens = {entry_id: await link_token(session_factory, entry_id, clock, settings) for entry_id in ids}
    # Confirmations over four days, from the last microsecond of one (two in one microsecond: the id breaks the tie).
    clock.advance(timedelta(days=1, microseconds=-1) - (clock.now() - clock.now().replace(hour=0, minute=0, second=0, microsecond=0)))
    for index, entry_id in enumerate(ids):
        if index not in (0, 3, 9):
            clock.advance(timedelta(hours=7))
        async with transaction(session_factory) as session:
            await confirm_place(session, token=tokens[entry_id], actor=VISITOR, now=clock.now())
        if index == 5:
            async with transaction(session_factory) as session:  # using the link again changes nothing
                await confirm_place(session, token=tokens[entry_id], actor=VISITOR, now=clock.now())
    await assert_tally_is_the_count(session_factory)
    assert await assert_positions_as_counted(session_factory, settings, clock.now()) == 16

    async with transaction(session_factory) as session:  # waiting -> left, from the middle of the queue
        await leave_waitlist(session, token=tokens[ids[6]], actor=VISITOR, now=clock.now(), settings=settings)
    async with transaction(session_factory) as session:  # waiting -> invited, from the front
        await invite_next(session, state="NY", count=3, actor=Actor.system(), now=clock.now(), settings=settings)
    async with transaction(session_factory) as session:  # invited -> left: the place goes to the next person
        await leave_waitlist(session, token=tokens[ids[0]], actor=VISITOR, now=clock.now(), settings=settings)
    await assert_tally_is_the_count(session_factory)
    assert await assert_positions_as_counted(session_factory, settings, clock.now()) == 11

    accept = await mail_links(session_factory, settings, clock, smtp, "/invitations/accept")
    async with transaction(session_factory) as session:  # invited -> enrolled
        await accept_invitation(
            session,
            token=next(iter(accept.values())),
            password="my new long password",
            accept_terms=True,
            actor=VISITOR,
            now=clock.now(),
            settings=settings,
        )
    clock.advance(timedelta(days=settings.thresholds.invitation_valid_days, minutes=1))
    async with transaction(session_factory) as session:  # invited -> lapsed, and the next people invited in their place
        assert await expire_due_invitations(session, now=clock.now(), settings=settings) == 2
    lapsed = (await _entries(session_factory, "lapsed"))[0]
    async with transaction(session_factory) as session:  # lapsed -> waiting, at the back
        await rejoin(session, token=tokens[lapsed], actor=VISITOR, now=clock.now())
    await assert_tally_is_the_count(session_factory)
    assert await assert_positions_as_counted(session_factory, settings, clock.now()) == 10


async def _entries(session_factory, status: str) -> list:
    async with session_factory() as session:
        return list(
            (
                await session.execute(select(WaitlistEntry.id).where(WaitlistEntry.status == status).order_by(WaitlistEntry.confirmed_at))
            ).scalars()
        )


async def test_concurrent_confirmations_leaves_and_invitations_in_one_day_keep_the_tally_exact(session_factory, settings, clock):
    await credential_prescriber(session_factory, settings, clock)
    # Everyone in the same state and day: every transaction below updates the same tally row.
    # The first ten are the front of the queue (invited below), the other ten leave.
    waiting = await add_entries(session_factory, count=10, status="waiting", confirmed_at=clock.now(), joined_at=clock.now())
    waiting += await add_entries(
        session_factory, count=10, status="waiting", confirmed_at=clock.now() + timedelta(seconds=1), joined_at=clock.now()
    )
    newcomers = await add_entries(session_factory, count=30, joined_at=clock.now())
    tokens = {entry_id: await link_token(session_factory, entry_id, clock, settings) for entry_id in waiting[10:] + newcomers}
    await assert_tally_is_the_count(session_factory)
    clock.advance(timedelta(minutes=20))

    async def hold_then_commit(change) -> None:
        async with transaction(session_factory) as session:
            await change(session)
            await asyncio.sleep(0.02)  # hold the tally row's lock while the others try

    changes = [lambda s, t=tokens[e]: confirm_place(s, token=t, actor=VISITOR, now=clock.now()) for e in newcomers]
    changes += [lambda s, t=tokens[e]: leave_waitlist(s, token=t, actor=VISITOR, now=clock.now(), settings=settings) for e in waiting[10:]]
    changes += [lambda s: invite_next(s, state="NY", count=3, actor=Actor.system(), now=clock.now(), settings=settings)] * 3
    await asyncio.gather(*(hold_then_commit(change) for change in changes))

    await assert_tally_is_the_count(session_factory)
    async with session_factory() as session:
        assert await session.scalar(select(WaitlistTally.waiting)) == 20 - 10 - 9 + 30
    assert await assert_positions_as_counted(session_factory, settings, clock.now()) == 31


async def test_direct_writes_day_boundaries_and_ties(session_factory, settings, clock):
    day = datetime(2026, 11, 23, tzinfo=UTC)
    times = [day - timedelta(microseconds=1), day, day, day + timedelta(days=1, microseconds=-1), day + timedelta(days=1)]
    for moment in times:
        await add_entries(session_factory, count=2, status="waiting", confirmed_at=moment, joined_at=moment)
    await assert_tally_is_the_count(session_factory)
    async with session_factory() as session:
        assert sorted((await session.execute(select(WaitlistTally.bucket_start, WaitlistTally.waiting))).all()) == [
            (day - timedelta(days=1), 2),
            (day, 6),
            (day + timedelta(days=1), 2),
        ]
    assert await assert_positions_as_counted(session_factory, settings, clock.now()) == 10
    async with transaction(session_factory) as session:  # moved to another state, to another day, deleted
        await session.execute(text("UPDATE waitlist_entry SET state = 'CA' WHERE confirmed_at = :at"), {"at": times[0]})
        await session.execute(
            text("UPDATE waitlist_entry SET confirmed_at = :to WHERE confirmed_at = :at"), {"at": times[4], "to": times[1]}
        )
        await session.execute(text("DELETE FROM waitlist_entry WHERE confirmed_at = :at"), {"at": times[3]})
        await session.execute(text("UPDATE waitlist_entry SET note = 'no effect on the tally'"))
    await assert_tally_is_the_count(session_factory)
    assert await assert_positions_as_counted(session_factory, settings, clock.now()) == 8


async def test_a_tally_out_of_step_is_an_error_not_a_wrong_position(session_factory, settings, clock):
    await add_entries(session_factory, count=1, status="waiting", confirmed_at=clock.now(), joined_at=clock.now())
    async with transaction(session_factory) as session:
        await session.execute(text("DELETE FROM waitlist_tally"))
    with pytest.raises(DBAPIError, match="waitlist_tally has no row for waiting entry"):
        async with transaction(session_factory) as session:
            await session.execute(text("UPDATE waitlist_entry SET status = 'left'"))
