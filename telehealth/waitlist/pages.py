"""HTML pages of the waiting list: join, the private status page (confirm, rejoin, leave), accepting an
invitation, and the coordinator's queues with the invite form."""

from __future__ import annotations

from datetime import date

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.guards import requires_role
from telehealth.accounts.middleware import sign_in_cookie
from telehealth.accounts.roles import Role
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.errors import DomainError
from telehealth.lib.forms import attempt, form_fields, form_list
from telehealth.lib.validation import parse_whole_number
from telehealth.settings import Settings
from telehealth.waitlist import invitations, service
from telehealth.waitlist.api import JOINED

JOIN_FIELDS = ("first_name", "last_name", "email", "state", "date_of_birth", "phone", "consent_to_contact", "website")


def _join_form(values: dict[str, str], conditions: list[str], error: DomainError | None = None) -> Template:
    return Template(
        "waitlist/join.html",
        context={
            "values": values,
            "chosen": conditions,
            "conditions": service.CONDITIONS_OF_INTEREST,
            "error": error.detail if error else None,
            "fields": error.fields if error else {},
        },
        status_code=error.status_code if error else 200,
    )


async def _entry_page(db_session: AsyncSession, token: str, *, clock: Clock, settings: Settings, message: str | None = None) -> Template:
    entry = await service.entry_at_link(db_session, token)
    place = await service.place_in_queue(db_session, entry, now=clock.now(), settings=settings)
    return Template("waitlist/entry.html", context={"place": place, "token": token, "message": message})


class WaitlistPagesController(Controller):
    include_in_schema = False

    @get("/waitlist")
    async def join_form(self) -> Template:
        return _join_form({}, [])

    @post("/waitlist")
    async def join(
        self,
        request: Request,
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template:
        values = await form_fields(request, *JOIN_FIELDS, max_length=254)
        conditions = await form_list(request, "conditions", max_items=10)
        if values["website"]:  # the honeypot: people never see this field, form-filling bots do
            return Template("accounts/message.html", context={"title": "Check your email", "message": JOINED})
        try:
            born = date.fromisoformat(values["date_of_birth"])
        except ValueError:
            return _join_form(
                values,
                conditions,
                DomainError("waitlist.invalid", "Some details need another look.", fields={"date_of_birth": "must be a date"}),
            )
        join = service.JoinRequest(
            first_name=values["first_name"],
            last_name=values["last_name"],
            email=values["email"],
            state=values["state"],
            date_of_birth=born,
            consent_to_contact=values["consent_to_contact"] == "yes",
            phone=values["phone"] or None,
            conditions=tuple(conditions),
        )
        result = await attempt(db_session, service.join_waitlist(db_session, join, actor=actor, now=clock.now(), settings=settings))
        if isinstance(result, DomainError):
            return _join_form(values, conditions, result)
        return Template("accounts/message.html", context={"title": "Check your email", "message": JOINED})

    @get("/waitlist/entry")
    async def entry(
        self,
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        token: FromQuery[str] = "",
    ) -> Template:
        # A GET never changes anything: confirming is a button, so mail scanners cannot confirm for people.
        return await _entry_page(db_session, token, clock=clock, settings=settings)

    @post("/waitlist/entry/confirm")
    async def confirm(
        self,
        request: Request,
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template:
        token = (await form_fields(request, "token"))["token"]
        await service.confirm_place(db_session, token=token, actor=actor, now=clock.now())
        return await _entry_page(db_session, token, clock=clock, settings=settings, message="Your place is confirmed.")

    @post("/waitlist/entry/rejoin")
    async def rejoin(
        self,
        request: Request,
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template:
        token = (await form_fields(request, "token"))["token"]
        await service.rejoin(db_session, token=token, actor=actor, now=clock.now())
        return await _entry_page(db_session, token, clock=clock, settings=settings, message="You are back on the list.")

    @post("/waitlist/entry/leave")
    async def leave(
        self,
        request: Request,
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template:
        token = (await form_fields(request, "token"))["token"]
        await service.leave_waitlist(db_session, token=token, actor=actor, now=clock.now(), settings=settings)
        return Template(
            "accounts/message.html",
            context={
                "title": "You have left the list",
                "message": "Your details are erased. You are welcome to join again at any time.",
                "link": "/waitlist",
                "link_text": "Join again",
            },
        )

    @get("/invitations/accept")
    async def accept_form(
        self, db_session: NamedDependency[AsyncSession], clock: NamedDependency[Clock], token: FromQuery[str] = ""
    ) -> Template:
        invitation = await invitations.invitation_for_token(db_session, token, now=clock.now())
        if invitation is None:
            return Template(
                "accounts/message.html",
                context={"title": "Invitation not valid", "message": invitations.INVITATION_INVALID},
                status_code=404,
            )
        return Template("waitlist/accept_invitation.html", context={"token": token, "expires_at": invitation.expires_at})

    @post("/invitations/accept")
    async def accept(
        self,
        request: Request,
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        fields = await form_fields(request, "token", "password", "password_again", "accept_terms")
        now = clock.now()
        if fields["password"] != fields["password_again"]:
            return Template(
                "waitlist/accept_invitation.html",
                context={"token": fields["token"], "error": "The two passwords are not the same."},
                status_code=422,
            )
        user = await attempt(
            db_session,
            invitations.accept_invitation(
                db_session,
                token=fields["token"],
                password=fields["password"],
                accept_terms=fields["accept_terms"] == "yes",
                actor=actor,
                now=now,
                settings=settings,
            ),
        )
        if isinstance(user, DomainError):
            return Template(
                "waitlist/accept_invitation.html",
                context={"token": fields["token"], "error": user.detail, "fields": user.fields},
                status_code=user.status_code,
            )
        response = Redirect(path="/patient")
        response.set_cookie(await sign_in_cookie(db_session, user=user, request=request, now=now, settings=settings))
        return response

    @get("/terms")
    async def terms(self) -> Template:
        return Template("waitlist/terms.html", context={"version": invitations.TERMS_VERSION})

    @get("/coordinator/waitlist", guards=[requires_role(Role.COORDINATOR)])
    async def queues(
        self,
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
        invited: FromQuery[int | None] = None,
        invited_from: FromQuery[str | None] = None,
    ) -> Template:
        rows = await service.queues_by_state(db_session, now=clock.now(), settings=settings)
        message = f"Invited {invited} from {invited_from}." if invited is not None and invited_from else None
        return Template("waitlist/coordinator.html", context={"rows": rows, "message": message})

    @post("/coordinator/waitlist/invitations", guards=[requires_role(Role.COORDINATOR)])
    async def invite(
        self,
        request: Request,
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Redirect | Template:
        fields = await form_fields(request, "state", "count")
        count = parse_whole_number(fields["count"]) or 0
        ids = await attempt(
            db_session,
            invitations.invite_next(db_session, state=fields["state"], count=count, actor=actor, now=clock.now(), settings=settings),
        )
        if isinstance(ids, DomainError):
            rows = await service.queues_by_state(db_session, now=clock.now(), settings=settings)
            return Template("waitlist/coordinator.html", context={"rows": rows, "error": ids.detail}, status_code=ids.status_code)
        return Redirect(path=f"/coordinator/waitlist?invited={len(ids)}&invited_from={fields['state'].upper()}")
