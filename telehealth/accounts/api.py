"""JSON API for signing in and out, two-factor, email verification, password reset, and a patient record."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts import service, two_factor
from telehealth.accounts.authz import Access, load_patient_for, patient_id_for_user
from telehealth.accounts.guards import requires_password_step, requires_sign_in
from telehealth.accounts.middleware import cleared_session_cookie, rotated_session_cookie, sign_in_cookie
from telehealth.accounts.models import UserAccount
from telehealth.accounts.roles import two_factor_step
from telehealth.accounts.schemas import (
    Accepted,
    CodeRequest,
    EmailVerification,
    Me,
    PasswordResetConfirm,
    PasswordResetRequest,
    PatientRecord,
    SignInRequest,
    StepUpResult,
    TwoFactorEnrolment,
)
from telehealth.accounts.sessions import SignedIn, end_session
from telehealth.audit.service import record_audit_event
from telehealth.lib.actors import Actor
from telehealth.lib.clock import Clock
from telehealth.lib.dependencies import client_ip
from telehealth.settings import Settings


class AccountsApiController(Controller):
    path = "/api/v1/auth"
    tags = ["accounts"]

    @post("/sign-in", status_code=200)
    async def sign_in(
        self,
        request: Request,
        data: JSONBody[SignInRequest],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Response[Me]:
        """Check email and password and start a session. Staff then send a two-factor code."""
        now = clock.now()
        attempt = service.SignInAttempt(data.email, data.password, client_ip(request), request.headers.get("user-agent"))
        user = await service.check_password_sign_in(db_session, attempt, now=now, settings=settings)
        cookie = await sign_in_cookie(db_session, user=user, request=request, now=now, settings=settings)
        me = Me(
            id=user.id,
            email=user.email,
            full_name=user.full_name,
            role=user.role,
            email_verified=user.email_verified_at is not None,
            two_factor=two_factor_step(user.role, enrolled=user.totp_confirmed_at is not None, verified=False),
            patient_id=await patient_id_for_user(db_session, user.id),
        )
        return Response(me, cookies=[cookie])

    @post("/sign-out", status_code=200, guards=[requires_password_step])
    async def sign_out(
        self,
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Response[Accepted]:
        now = clock.now()
        await end_session(db_session, session_id=signed_in.session_id, now=now)
        await record_audit_event(
            db_session, actor=actor, action="auth.sign_out", resource_type="user_account", resource_id=signed_in.user_id, now=now
        )
        return Response(Accepted(detail="Signed out."), cookies=[cleared_session_cookie(settings)])

    @get("/me", guards=[requires_password_step])
    async def me(self, signed_in: NamedDependency[SignedIn], db_session: NamedDependency[AsyncSession]) -> Me:
        return Me(
            id=signed_in.user_id,
            email=signed_in.email,
            full_name=signed_in.full_name,
            role=signed_in.role.value,
            email_verified=signed_in.email_verified,
            two_factor=signed_in.two_factor,
            patient_id=await patient_id_for_user(db_session, signed_in.user_id),
        )

    @post("/two-factor/enrol", status_code=200, guards=[requires_password_step])
    async def begin_two_factor(
        self,
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
    ) -> TwoFactorEnrolment:
        """Start enrolment: add the answered secret to an authenticator app, then confirm with a code."""
        uri = await two_factor.begin_enrolment(db_session, signed_in=signed_in, settings=settings)
        return TwoFactorEnrolment(otpauth_uri=uri, secret=parse_qs(urlsplit(uri).query)["secret"][0])

    @post("/two-factor/confirm", status_code=200, guards=[requires_password_step])
    async def confirm_two_factor(
        self,
        data: JSONBody[CodeRequest],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Response[Accepted]:
        await two_factor.confirm_enrolment(db_session, signed_in=signed_in, code=data.code, actor=actor, now=clock.now(), settings=settings)
        cookie = await rotated_session_cookie(db_session, signed_in=signed_in, settings=settings)
        return Response(Accepted(detail="Two-factor sign-in is set up."), cookies=[cookie])

    @post("/two-factor/verify", status_code=200, guards=[requires_password_step])
    async def verify_two_factor(
        self,
        data: JSONBody[CodeRequest],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Response[Accepted]:
        await two_factor.verify_sign_in_code(
            db_session, signed_in=signed_in, code=data.code, actor=actor, now=clock.now(), settings=settings
        )
        cookie = await rotated_session_cookie(db_session, signed_in=signed_in, settings=settings)
        return Response(Accepted(detail="Signed in."), cookies=[cookie])

    @post("/step-up", status_code=200, guards=[requires_sign_in])
    async def step_up(
        self,
        data: JSONBody[CodeRequest],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> StepUpResult:
        """Re-enter a code before a sensitive act (signing a plan); it holds for a few minutes."""
        valid_until = await two_factor.step_up(
            db_session, signed_in=signed_in, code=data.code, actor=actor, now=clock.now(), settings=settings
        )
        return StepUpResult(valid_until=valid_until)

    @post("/password-reset", status_code=202)
    async def request_password_reset(
        self,
        data: JSONBody[PasswordResetRequest],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Accepted:
        await service.request_password_reset(db_session, email=data.email, actor=actor, now=clock.now(), settings=settings)
        return Accepted(
            detail=f"If an account uses this email, a reset link is on its way. It works once, for "
            f"{settings.password_reset_valid_minutes} minutes."
        )

    @post("/password-reset/confirm", status_code=200)
    async def confirm_password_reset(
        self,
        data: JSONBody[PasswordResetConfirm],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Accepted:
        await service.reset_password(db_session, token=data.token, new_password=data.password, actor=actor, now=clock.now())
        return Accepted(detail="Your password is changed. Sign in with the new one.")

    @post("/verify-email/resend", status_code=202, guards=[requires_sign_in])
    async def resend_verification(
        self,
        signed_in: NamedDependency[SignedIn],
        db_session: NamedDependency[AsyncSession],
        settings: NamedDependency[Settings],
        clock: NamedDependency[Clock],
    ) -> Accepted:
        await service.resend_email_verification(db_session, user_id=signed_in.user_id, now=clock.now(), settings=settings)
        return Accepted(detail="A new confirmation link is on its way.")

    @post("/verify-email", status_code=200)
    async def verify_email(
        self,
        data: JSONBody[EmailVerification],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> Accepted:
        await service.verify_email(db_session, token=data.token, actor=actor, now=clock.now())
        return Accepted(detail="Your email address is confirmed.")


class PatientRecordApiController(Controller):
    path = "/api/v1/patients"
    tags = ["patients"]
    guards = [requires_sign_in]

    @get("/{patient_id:uuid}")
    async def get_patient(
        self,
        patient_id: FromPath[uuid.UUID],
        signed_in: NamedDependency[SignedIn],
        actor: NamedDependency[Actor],
        db_session: NamedDependency[AsyncSession],
        clock: NamedDependency[Clock],
    ) -> PatientRecord:
        """A patient's contact record (operational: their own, their care team's, coordinators')."""
        patient = await load_patient_for(
            db_session, viewer=signed_in, patient_id=patient_id, actor=actor, now=clock.now(), access=Access.OPERATIONAL
        )
        user = await db_session.get(UserAccount, patient.user_id)
        assert user is not None
        return PatientRecord(
            id=patient.id,
            full_name=user.full_name,
            email=user.email,
            timezone=patient.timezone,
            state_of_residence=patient.state_of_residence,
            created_at=patient.created_at,
        )


__all__ = ["AccountsApiController", "PatientRecordApiController", "uuid"]
