"""HTML pages: sign in (password, then two-factor), sign out, two-factor setup, password reset, email check."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import segno
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts import service, two_factor
from telehealth.accounts.guards import current_user, requires_password_step, requires_sign_in
from telehealth.accounts.middleware import cleared_session_cookie, rotated_session_cookie, sign_in_cookie
from telehealth.accounts.roles import two_factor_step
from telehealth.accounts.sessions import SignedIn, end_session
from telehealth.audit.service import record_audit_event
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.dependencies import client_ip
from telehealth.lib.errors import DomainError
from telehealth.lib.forms import attempt, form_fields, safe_next
from telehealth.settings import Settings


def qr_data_uri(otpauth_uri: str) -> str:
    """The setup link as a QR code, drawn here (no third-party service ever sees the secret)."""
    return segno.make(otpauth_uri, error="m").svg_data_uri(scale=5, border=2)


def _secret_of(otpauth_uri: str) -> str:
    return parse_qs(urlsplit(otpauth_uri).query)["secret"][0]


def _after_sign_in(two_factor: str, next_path: str) -> Redirect:
    if two_factor == "enrol":
        return Redirect(path="/account/two-factor")
    if two_factor == "required":
        return Redirect(path=f"/sign-in/two-factor?next={quote(next_path)}")
    return Redirect(path=next_path)


class AccountPagesController(Controller):
    include_in_schema = False

    @get("/sign-in")
    async def sign_in_form(self, request: Request, next: FromQuery[str | None] = None) -> Template | Redirect:
        if (user := current_user(request)) is not None and user.two_factor_done:
            return Redirect(path=safe_next(next))
        return Template("accounts/sign_in.html", context={"next": safe_next(next), "email": ""})

    @post("/sign-in")
    async def sign_in(
        self,
        request: Request,
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        fields = await form_fields(request, "email", "password", "next")
        next_path = safe_next(fields["next"])
        now = clock.now()
        sign_in = service.SignInAttempt(fields["email"], fields["password"], client_ip(request), request.headers.get("user-agent"))
        user = await attempt(db_session, service.check_password_sign_in(db_session, sign_in, now=now, settings=settings))
        if isinstance(user, DomainError):
            return Template(
                "accounts/sign_in.html",
                context={"next": next_path, "email": fields["email"], "error": user.detail},
                status_code=user.status_code,
            )
        cookie = await sign_in_cookie(db_session, user=user, request=request, now=now, settings=settings)
        step = two_factor_step(user.role, enrolled=user.totp_confirmed_at is not None, verified=False)
        response = _after_sign_in(step, next_path)
        response.set_cookie(cookie)
        return response

    @get("/sign-in/two-factor", guards=[requires_password_step])
    async def two_factor_form(self, next: FromQuery[str | None] = None) -> Template:
        return Template("accounts/two_factor_code.html", context={"next": safe_next(next)})

    @post("/sign-in/two-factor", guards=[requires_password_step])
    async def two_factor_check(
        self,
        request: Request,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        fields = await form_fields(request, "code", "next")
        result = await attempt(
            db_session,
            two_factor.verify_sign_in_code(
                db_session, signed_in=signed_in, code=fields["code"], actor=actor, now=clock.now(), settings=settings
            ),
        )
        if isinstance(result, DomainError):
            return Template(
                "accounts/two_factor_code.html",
                context={"next": safe_next(fields["next"]), "error": result.detail},
                status_code=result.status_code,
            )
        response = Redirect(path=safe_next(fields["next"]))
        response.set_cookie(await rotated_session_cookie(db_session, signed_in=signed_in, settings=settings))
        return response

    @get("/account/two-factor", guards=[requires_password_step])
    async def two_factor_setup(
        self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession], settings: NamedDependency[Settings]
    ) -> Template:
        if signed_in.totp_enrolled:
            return Template(
                "accounts/message.html",
                context={"title": "Two-factor sign-in", "message": "Two-factor sign-in is already set up for this account."},
            )
        uri = await two_factor.begin_enrolment(db_session, signed_in=signed_in, settings=settings)
        return Template("accounts/two_factor_enrol.html", context={"otpauth_uri": uri, "secret": _secret_of(uri), "qr": qr_data_uri(uri)})

    @post("/account/two-factor", guards=[requires_password_step])
    async def two_factor_confirm(
        self,
        request: Request,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template | Redirect:
        fields = await form_fields(request, "code")
        result = await attempt(
            db_session,
            two_factor.confirm_enrolment(
                db_session, signed_in=signed_in, code=fields["code"], actor=actor, now=clock.now(), settings=settings
            ),
        )
        if isinstance(result, DomainError):
            uri = await two_factor.begin_enrolment(db_session, signed_in=signed_in, settings=settings)
            return Template(
                "accounts/two_factor_enrol.html",
                context={"otpauth_uri": uri, "secret": _secret_of(uri), "qr": qr_data_uri(uri), "error": result.detail},
                status_code=result.status_code,
            )
        response = Redirect(path="/")
        response.set_cookie(await rotated_session_cookie(db_session, signed_in=signed_in, settings=settings))
        return response

    @post("/sign-out")
    async def sign_out(
        self,
        request: Request,
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Redirect:
        if (user := current_user(request)) is not None:
            now = clock.now()
            await end_session(db_session, session_id=user.session_id, now=now)
            await record_audit_event(
                db_session, actor=actor, action="auth.sign_out", resource_type="user_account", resource_id=user.user_id, now=now
            )
        response = Redirect(path="/sign-in")
        response.set_cookie(cleared_session_cookie(settings))
        return response

    @get("/password/forgot")
    async def forgot_form(self) -> Template:
        return Template("accounts/forgot_password.html", context={})

    @post("/password/forgot")
    async def forgot(
        self,
        request: Request,
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template:
        fields = await form_fields(request, "email", max_length=254)
        result = await attempt(
            db_session, service.request_password_reset(db_session, email=fields["email"], actor=actor, now=clock.now(), settings=settings)
        )
        if isinstance(result, DomainError):
            return Template(
                "accounts/message.html", context={"title": "Please wait", "message": result.detail}, status_code=result.status_code
            )
        return Template(
            "accounts/message.html",
            context={
                "title": "Check your email",
                "message": (
                    "If an account uses this email, a reset link is on its way. "
                    f"It works once, for {settings.password_reset_valid_minutes} minutes."
                ),
            },
        )

    @get("/password/reset")
    async def reset_form(self, token: FromQuery[str] = "") -> Template:
        return Template("accounts/reset_password.html", context={"token": token})

    @post("/password/reset")
    async def reset(
        self,
        request: Request,
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Template:
        fields = await form_fields(request, "token", "password", "password_again")
        if fields["password"] != fields["password_again"]:
            return Template(
                "accounts/reset_password.html",
                context={"token": fields["token"], "error": "The two passwords are not the same."},
                status_code=422,
            )
        result = await attempt(
            db_session,
            service.reset_password(db_session, token=fields["token"], new_password=fields["password"], actor=actor, now=clock.now()),
        )
        if isinstance(result, DomainError):
            return Template(
                "accounts/reset_password.html",
                context={"token": fields["token"], "error": result.detail, "fields": result.fields},
                status_code=result.status_code,
            )
        return Template(
            "accounts/message.html",
            context={
                "title": "Password changed",
                "message": "Your password is changed. Sign in with the new one.",
                "link": "/sign-in",
                "link_text": "Sign in",
            },
        )

    @post("/account/verify-email/resend", guards=[requires_sign_in])
    async def resend_verification(
        self,
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Template:
        result = await attempt(
            db_session, service.resend_email_verification(db_session, user_id=signed_in.user_id, now=clock.now(), settings=settings)
        )
        message = result.detail if isinstance(result, DomainError) else "A new confirmation link is on its way to your inbox."
        return Template(
            "accounts/message.html",
            context={"title": "Confirm your email", "message": message, "link": "/", "link_text": "Back to my portal"},
        )

    @get("/account/verify-email")
    async def verify_email_form(self, token: FromQuery[str] = "") -> Template:
        # A GET only shows a button: link scanners in mail systems must not spend the token.
        return Template("accounts/verify_email.html", context={"token": token})

    @post("/account/verify-email")
    async def verify_email(
        self,
        request: Request,
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Template:
        fields = await form_fields(request, "token")
        result = await attempt(db_session, service.verify_email(db_session, token=fields["token"], actor=actor, now=clock.now()))
        if isinstance(result, DomainError):
            return Template(
                "accounts/message.html", context={"title": "Link not valid", "message": result.detail}, status_code=result.status_code
            )
        return Template(
            "accounts/message.html",
            context={
                "title": "Email confirmed",
                "message": "Thank you: your email address is confirmed.",
                "link": "/",
                "link_text": "Go to my portal",
            },
        )


__all__ = ["AccountPagesController", "Any"]
