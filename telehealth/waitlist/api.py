"""JSON API of the waiting list: join, the private-link actions, and the coordinator's invitations."""

from __future__ import annotations

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.guards import requires_role
from telehealth.accounts.middleware import sign_in_cookie
from telehealth.accounts.roles import Role
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.us_states import US_STATES
from telehealth.settings import Settings
from telehealth.waitlist import invitations, service
from telehealth.waitlist.schemas import (
    Accepted,
    AcceptInvitation,
    EntryToken,
    InvitationRun,
    InviteNext,
    JoinWaitlist,
    StateQueue,
    WaitlistStatus,
)
from telehealth.waitlist.states import EntryStatus

JOINED = "Thank you. Please check your email and use the link to confirm your place."


def status_body(place: service.PlaceInQueue) -> WaitlistStatus:
    entry = place.entry
    return WaitlistStatus(
        status=entry.status,
        state=entry.state,
        state_name=US_STATES[entry.state],
        state_served=place.state_served,
        position=place.position,
        people_waiting_in_state=place.people_waiting,
        estimated_wait_weeks=place.estimated_wait_weeks,
        invitation_expires_at=place.invitation_expires_at,
        note=entry.note,
    )


class WaitlistApiController(Controller):
    path = "/api/v1/waitlist"
    tags = ["waitlist"]

    @post("/", status_code=202)
    async def join(
        self,
        data: JSONBody[JoinWaitlist],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Accepted:
        """Join the waiting list. The same answer whether or not the email was already on it."""
        request = service.JoinRequest(
            first_name=data.first_name,
            last_name=data.last_name,
            email=data.email,
            state=data.state,
            date_of_birth=data.date_of_birth,
            consent_to_contact=data.consent_to_contact,
            phone=data.phone,
            conditions=tuple(data.conditions or ()),
        )
        await service.join_waitlist(db_session, request, actor=actor, now=clock.now(), settings=settings)
        return Accepted(detail=JOINED)

    @post("/status", status_code=200)
    async def status(
        self,
        data: JSONBody[EntryToken],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> WaitlistStatus:
        """Where the holder of an emailed link stands (the token is sent in the body, never in a URL)."""
        entry = await service.entry_at_link(db_session, data.token)
        return status_body(await service.place_in_queue(db_session, entry, now=clock.now(), settings=settings))

    @post("/confirm", status_code=200)
    async def confirm(
        self,
        data: JSONBody[EntryToken],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> WaitlistStatus:
        entry = await service.confirm_place(db_session, token=data.token, actor=actor, now=clock.now())
        return status_body(await service.place_in_queue(db_session, entry, now=clock.now(), settings=settings))

    @post("/rejoin", status_code=200)
    async def rejoin(
        self,
        data: JSONBody[EntryToken],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> WaitlistStatus:
        entry = await service.rejoin(db_session, token=data.token, actor=actor, now=clock.now())
        return status_body(await service.place_in_queue(db_session, entry, now=clock.now(), settings=settings))

    @post("/leave", status_code=200)
    async def leave(
        self,
        data: JSONBody[EntryToken],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Accepted:
        """Leave the list: personal details are erased at once."""
        await service.leave_waitlist(db_session, token=data.token, actor=actor, now=clock.now(), settings=settings)
        return Accepted(detail="You have left the waiting list and your details are erased.")

    @post("/invitations", status_code=201, guards=[requires_role(Role.COORDINATOR)])
    async def invite(
        self,
        data: JSONBody[InviteNext],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> InvitationRun:
        """Invite the next `count` people waiting in `state` (fewer if fewer are waiting)."""
        ids = await invitations.invite_next(db_session, state=data.state, count=data.count, actor=actor, now=clock.now(), settings=settings)
        return InvitationRun(state=data.state.upper(), invited=len(ids), invitation_ids=ids)

    @get("/states", guards=[requires_role(Role.COORDINATOR)])
    async def states(
        self, db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings], clock: NamedDependency[Clock]
    ) -> list[StateQueue]:
        """Every state's queue: counts by status, invitations out, the oldest wait, served or not."""
        return [
            StateQueue(
                state=row.state,
                state_name=US_STATES[row.state],
                served=row.served,
                unconfirmed=row.counts.get(EntryStatus.UNCONFIRMED, 0),
                waiting=row.counts.get(EntryStatus.WAITING, 0),
                invitations_out=row.invitations_out,
                enrolled=row.counts.get(EntryStatus.ENROLLED, 0),
                lapsed=row.counts.get(EntryStatus.LAPSED, 0),
                left=row.counts.get(EntryStatus.LEFT, 0),
                oldest_waiting_since=row.oldest_waiting_since,
            )
            for row in await service.queues_by_state(db_session, now=clock.now(), settings=settings)
        ]


class InvitationApiController(Controller):
    path = "/api/v1/invitations"
    tags = ["waitlist"]

    @post("/accept", status_code=201)
    async def accept(
        self,
        request: Request,
        data: JSONBody[AcceptInvitation],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Response[Accepted]:
        """Create the patient account from an invitation and sign in."""
        now = clock.now()
        user = await invitations.accept_invitation(
            db_session, token=data.token, password=data.password, accept_terms=data.accept_terms, actor=actor, now=now, settings=settings
        )
        cookie = await sign_in_cookie(db_session, user=user, request=request, now=now, settings=settings)
        return Response(Accepted(detail="Your account is ready."), cookies=[cookie], status_code=201)
