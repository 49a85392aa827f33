"""TOTP two-factor: enrolment, the sign-in check, and the step-up check reused for signing plans.

A code is accepted once: the step it matched is stored, and the same or an older step is refused, so a
code seen over someone's shoulder cannot be replayed. Wrong codes count toward the account lock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.models import UserAccount, UserSession
from telehealth.accounts.service import queue_account_locked_email
from telehealth.accounts.security import matching_totp_step, new_totp_secret, totp_uri, verify_password
from telehealth.accounts.sessions import SignedIn
from telehealth.audit.service import Actor, record_audit_event
from telehealth.lib.errors import Conflict, Forbidden, InvalidInput
from telehealth.settings import Settings

WRONG_CODE = "That code is not right. Use the current 6-digit code from your authenticator app."


async def _load(session: AsyncSession, signed_in: SignedIn) -> tuple[UserAccount, UserSession]:
    user = await session.get(UserAccount, signed_in.user_id, with_for_update=True)
    user_session = await session.get(UserSession, signed_in.session_id)
    assert user is not None and user_session is not None  # the middleware just read both
    return user, user_session


async def begin_enrolment(session: AsyncSession, *, signed_in: SignedIn, settings: Settings) -> str:
    """Create the secret once (reloading the page or a second tab shows the same one); answer the
    otpauth:// URI for the authenticator app."""
    user, _ = await _load(session, signed_in)
    if user.totp_confirmed_at is not None:
        raise Conflict("two_factor.already_enrolled", "Two-factor sign-in is already set up for this account.")
    if not user.totp_secret:
        user.totp_secret = new_totp_secret()
    return totp_uri(user.totp_secret, email=user.email, issuer=settings.clinic_name)


async def _check_code(
    session: AsyncSession, *, signed_in: SignedIn, code: str, actor: Actor, now: datetime, settings: Settings, action: str
) -> tuple[UserAccount, UserSession]:
    user, user_session = await _load(session, signed_in)
    if not user.totp_secret:
        raise Conflict("two_factor.not_enrolled", "Set up two-factor sign-in first.")
    if user.locked_until is not None and user.locked_until > now:
        raise Forbidden("auth.account_locked", "Sign-in is paused for this account after too many failed attempts.")
    step = matching_totp_step(user.totp_secret, code, at=now)
    if step is None or (user.totp_last_used_step is not None and step <= user.totp_last_used_step):
        await _count_failure(session, user, user_session, now=now, settings=settings)
        await record_audit_event(
            session, actor=actor, action=action, resource_type="user_account", resource_id=user.id, now=now,
            outcome="failure", reason="wrong_code" if step is None else "code_reused",
        )  # fmt: skip
        raise InvalidInput("two_factor.wrong_code", WRONG_CODE, fields={"code": "is not the current code"}, keep_evidence=True)
    user.totp_last_used_step = step
    user.failed_login_count = 0
    await record_audit_event(
        session, actor=actor, action=action, resource_type="user_account", resource_id=user.id, now=now
    )
    return user, user_session


async def _count_failure(session: AsyncSession, user: UserAccount, user_session: UserSession, *, now: datetime, settings: Settings) -> None:
    """One more wrong secret: at the limit the account locks, this session ends and the owner hears of it."""
    user.failed_login_count += 1
    if user.failed_login_count >= settings.login_lock_after_failures:
        user.locked_until = now + timedelta(minutes=settings.login_lock_minutes)
        user.failed_login_count = 0
        user_session.revoked_at = now
        await queue_account_locked_email(session, user=user, now=now, settings=settings)


async def confirm_enrolment(
    session: AsyncSession, *, signed_in: SignedIn, code: str, actor: Actor, now: datetime, settings: Settings
) -> None:
    if signed_in.totp_enrolled:
        raise Conflict("two_factor.already_enrolled", "Two-factor sign-in is already set up for this account.")
    user, user_session = await _check_code(
        session, signed_in=signed_in, code=code, actor=actor, now=now, settings=settings, action="auth.two_factor_enrol"
    )
    user.totp_confirmed_at = now
    user_session.two_factor_verified_at = now


async def verify_sign_in_code(
    session: AsyncSession, *, signed_in: SignedIn, code: str, actor: Actor, now: datetime, settings: Settings
) -> None:
    """The second step of signing in."""
    if not signed_in.totp_enrolled:
        raise Conflict("two_factor.not_enrolled", "Set up two-factor sign-in first.")
    _, user_session = await _check_code(
        session, signed_in=signed_in, code=code, actor=actor, now=now, settings=settings, action="auth.two_factor"
    )
    user_session.two_factor_verified_at = now


async def step_up(
    session: AsyncSession, *, signed_in: SignedIn, code: str, actor: Actor, now: datetime, settings: Settings
) -> datetime:
    """Re-prove the second factor just before a sensitive act (signing a controlled-substance plan).
    Answers until when the step-up holds."""
    if not signed_in.totp_enrolled:
        raise Conflict("two_factor.not_enrolled", "Set up two-factor sign-in first.")
    _, user_session = await _check_code(
        session, signed_in=signed_in, code=code, actor=actor, now=now, settings=settings, action="auth.step_up"
    )
    user_session.step_up_at = now
    return now + timedelta(minutes=settings.step_up_valid_minutes)


def require_recent_step_up(signed_in: SignedIn, *, now: datetime, settings: Settings) -> None:
    """Refuse unless the second factor was re-entered in this session within the last few minutes."""
    at = signed_in.step_up_at
    if at is None or now - at > timedelta(minutes=settings.step_up_valid_minutes):
        raise Forbidden(
            "auth.step_up_required",
            f"Enter a fresh two-factor code to continue (valid {settings.step_up_valid_minutes} minutes).",
        )


async def confirm_signature(
    session: AsyncSession, *, signed_in: SignedIn, password: str, code: str, actor: Actor, now: datetime, settings: Settings
) -> None:
    """Signing a controlled-substance prescription: the password and a current, never-used TOTP code,
    re-entered on the signing request itself. Failures count toward the lock and are audited."""
    if not signed_in.totp_enrolled:
        raise Conflict("two_factor.not_enrolled", "Set up two-factor sign-in first.")
    user, user_session = await _load(session, signed_in)
    if user.locked_until is not None and user.locked_until > now:
        raise Forbidden("auth.account_locked", "Sign-in is paused for this account after too many failed attempts.")
    if not verify_password(user.password_hash, password):
        await _count_failure(session, user, user_session, now=now, settings=settings)
        await record_audit_event(
            session, actor=actor, action="auth.signing", resource_type="user_account", resource_id=user.id, now=now,
            outcome="failure", reason="wrong_password",
        )  # fmt: skip
        raise InvalidInput("signing.wrong_password", "That password is not right.", fields={"password": "is not your password"}, keep_evidence=True)
    await _check_code(session, signed_in=signed_in, code=code, actor=actor, now=now, settings=settings, action="auth.signing")
