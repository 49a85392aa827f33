"""The sitter's pages, reached only through their own links (no account, no sign-in): the agreement to
sign or decline, the presence before a session, then the timer and how the session ended, and on each
session page a way to withdraw as a sitter altogether. Plain words, one task per page, readable on a
phone. Opened where the sitter's patient is signed in, every page answers 403 with why."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.models import Patient
from telehealth.accounts.service import patient_contact
from telehealth.dosing import after_dose, before_dose, sessions, sitters
from telehealth.dosing.models import DosingSession
from telehealth.dosing.states import LinkPurpose, SitterStatus
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.errors import DomainError
from telehealth.lib.forms import attempt, form_fields
from telehealth.settings import Settings

PATIENT_SIGNED_IN = "sitter_link.patient_signed_in"


def _refused(error: DomainError) -> Template:
    return Template(
        "dosing/sitter_gone.html", context={"detail": error.detail, "done": None, "refused": True}, status_code=error.status_code
    )


async def _page(
    session: AsyncSession,
    token: str,
    *,
    actor: Actor,
    now: datetime,
    settings: Settings,
    error: DomainError | None = None,
    done: str | None = None,
    values: dict[str, str] | None = None,
    show: str | None = None,
) -> Template:
    """The page of whatever the link is for (or `show`: the withdrawal, reached from a session page)."""
    if error is not None and error.code == PATIENT_SIGNED_IN:
        return _refused(error)  # said and audited once; opening the link again would audit it twice
    opened = await attempt(session, sitters.open_link(session, token=token, purpose=None, actor=actor, now=now))
    if isinstance(opened, DomainError) and opened.code == PATIENT_SIGNED_IN:
        return _refused(opened)
    if isinstance(opened, DomainError):
        return Template(
            "dosing/sitter_gone.html",
            context={"detail": error.detail if error and done else opened.detail, "done": done},
            status_code=200 if done else opened.status_code,
        )
    contact = await patient_contact(session, opened.sitter.patient_id)
    patient = await session.get(Patient, opened.sitter.patient_id)
    context: dict[str, Any] = {
        "token": token,
        "purpose": show or opened.link.purpose,
        "sitter": opened.sitter,
        "patient_name": contact.full_name,
        "zone": patient.timezone if patient else "UTC",
        "agreement": sitters.SITTER_AGREEMENT,
        "error": error.detail if error else None,
        "fields": dict(error.fields) if error else {},
        "values": values or {},
        "done": done,
        "now": now,
        "may_withdraw": opened.link.purpose != LinkPurpose.AGREEMENT and opened.sitter.status == SitterStatus.CONFIRMED,
    }
    if opened.link.dosing_session_id is not None and (row := await session.get(DosingSession, opened.link.dosing_session_id)) is not None:
        window_closes = after_dose.observation_ends_at(row, settings)
        context |= {"row": row, "timer_ends_at": window_closes, "window_open": window_closes is not None and now < window_closes}
    return Template("dosing/sitter.html", context=context, status_code=error.status_code if error else 200)


class SitterPagesController(Controller):
    include_in_schema = False

    @get("/sitter/{token:str}")
    async def show(
        self,
        token: FromPath[str],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template:
        return await _page(db_session, token, actor=actor, now=clock.now(), settings=settings)

    @post("/sitter/{token:str}/agreement")
    async def sign(
        self,
        token: FromPath[str],
        request: Request,
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template:
        fields = await form_fields(request, "typed_name", "adult", "agreed", max_length=200)
        signed = await attempt(
            db_session,
            sitters.sign_agreement(
                db_session,
                token=token,
                typed_name=fields["typed_name"],
                adult=fields["adult"] == "yes",
                agreed=fields["agreed"] == "yes",
                actor=actor,
                now=clock.now(),
            ),
        )
        if isinstance(signed, DomainError):
            return await _page(db_session, token, actor=actor, now=clock.now(), settings=settings, error=signed, values=fields)
        return Template("dosing/sitter_gone.html", context={"done": "signed", "detail": None, "sitter": signed})

    @post("/sitter/{token:str}/decline")
    async def decline(
        self,
        token: FromPath[str],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template:
        declined = await attempt(db_session, sitters.decline(db_session, token=token, actor=actor, now=clock.now(), settings=settings))
        if isinstance(declined, DomainError):
            return await _page(db_session, token, actor=actor, now=clock.now(), settings=settings, error=declined)
        return Template("dosing/sitter_gone.html", context={"done": "declined", "detail": None, "sitter": declined})

    @post("/sitter/{token:str}/excuse")
    async def excuse(
        self,
        token: FromPath[str],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template:
        excused = await attempt(db_session, sessions.excuse_sitter(db_session, token=token, actor=actor, now=clock.now()))
        if isinstance(excused, DomainError):
            return await _page(db_session, token, actor=actor, now=clock.now(), settings=settings, error=excused)
        return Template("dosing/sitter_gone.html", context={"done": "excused", "detail": None})

    @post("/sitter/{token:str}/presence")
    async def presence(
        self,
        token: FromPath[str],
        request: Request,
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        fields = await form_fields(request, "typed_name", max_length=200)
        next_token = await attempt(
            db_session, before_dose.attest_presence(db_session, token=token, typed_name=fields["typed_name"], actor=actor, now=clock.now())
        )
        if isinstance(next_token, DomainError):
            return await _page(db_session, token, actor=actor, now=clock.now(), settings=settings, error=next_token, values=fields)
        return Redirect(path=f"/sitter/{next_token}")

    @post("/sitter/{token:str}/end")
    async def end(
        self,
        token: FromPath[str],
        request: Request,
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template:
        fields = await form_fields(
            request, "typed_name", "outcome", "event_description", "emergency_services_called", "ended_early_reason", max_length=2000
        )
        ended = await attempt(
            db_session,
            after_dose.attest_end(
                db_session,
                token=token,
                typed_name=fields["typed_name"],
                outcome=fields["outcome"],
                event_description=fields["event_description"],
                emergency_services_called=fields["emergency_services_called"] == "yes",
                ended_early_reason=fields["ended_early_reason"],
                actor=actor,
                now=clock.now(),
                settings=settings,
            ),
        )
        if isinstance(ended, DomainError):
            return await _page(db_session, token, actor=actor, now=clock.now(), settings=settings, error=ended, values=fields)
        return Template("dosing/sitter_gone.html", context={"done": "ended", "detail": None, "emergency": ended.emergency_services_called})

    @get("/sitter/{token:str}/withdraw")
    async def withdraw_page(
        self,
        token: FromPath[str],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template:
        """What withdrawing means, and the button; reached by the "withdraw as a sitter" link on a session page."""
        return await _page(db_session, token, actor=actor, now=clock.now(), settings=settings, show="withdraw")

    @post("/sitter/{token:str}/withdraw")
    async def withdraw(
        self,
        token: FromPath[str],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template:
        withdrawn = await attempt(db_session, sitters.withdraw(db_session, token=token, actor=actor, now=clock.now()))
        if isinstance(withdrawn, DomainError):
            return await _page(db_session, token, actor=actor, now=clock.now(), settings=settings, error=withdrawn, show="withdraw")
        return Template("dosing/sitter_gone.html", context={"done": "withdrawn", "detail": None, "sitter": withdrawn})
