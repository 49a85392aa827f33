"""TOTP two-factor: enrolment, the sign-in check, and the step-up check reused for signing plans.

A code is accepted once: the step it matched is stored, and the same or an older step is refused, so a
code seen over someone's shoulder cannot be replayed.

Wrong codes are counted on their own, apart from wrong passwords, as rows in rate_limit_event (per account
and per client address). Nothing resets them, neither a correct password nor a correct code: the windows
roll. Too many for the account lock the second factor (sign-in codes, step-up and signing alike) and tell
the owner once; too many from one address refuse further codes from it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.models import UserAccount, UserSession
from telehealth.accounts.security import matching_totp_step, new_totp_secret, totp_uri, verify_password_in_thread
from telehealth.accounts.service import queue_account_locked_email
from telehealth.accounts.sessions import SignedIn
from telehealth.accounts.totp_secrets import TotpKeyring, resealed, seal, unseal
from telehealth.audit.service import record_audit_event
from telehealth.lib.actors import Actor
from telehealth.lib.clock import authenticator_time
from telehealth.lib.errors import Conflict, Forbidden, InvalidInput, TooManyRequests
from telehealth.notifications.service import queue_email
from telehealth.settings import Settings
from telehealth.system.rate_limit import count_recent, record_event

WRONG_CODE = "That code is not right. Use the current 6-digit code from your authenticator app."

ACCOUNT_FAILURES = "two_factor_failure"  # rate_limit_event bucket, keyed by account id
ADDRESS_FAILURES = "two_factor_failure_ip"  # keyed by client address
# (wrong codes, within, then locked for). Only someone who knows the password reaches a code, and three codes
# of a million are accepted at a time. 10 in 15 minutes leaves room for a phone with a drifting clock; waiting
# out that lock again and again would still allow ~40 guesses an hour, so 30 in a day lock for a day: at
# most 30 guesses a day (about 1 in 11,000 to hit), and the owner is emailed at the first lock.
# The longest window must not exceed what system/jobs.py keeps (LONGEST_WINDOW, a day).
TWO_FACTOR_LOCKS = (
    (10, timedelta(minutes=15), timedelta(minutes=15)),
    (30, timedelta(hours=24), timedelta(hours=24)),
)
# One address guessing codes for many accounts (each kept under its own lock): 30 wrong codes in 15 minutes
# from it, and it must wait. Only wrong codes count, so a clinic behind one address signing in is not slowed.
ADDRESS_FAILURE_LIMIT, ADDRESS_WINDOW = 30, timedelta(minutes=15)


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
    keyring = TotpKeyring.from_settings(settings)
    if not user.totp_secret:
        user.totp_secret = seal(new_totp_secret(), user_id=user.id, keyring=keyring)
    return totp_uri(unseal(user.totp_secret, user_id=user.id, keyring=keyring), email=user.email, issuer=settings.clinic_name)


def _two_factor_locked(user: UserAccount, now: datetime) -> Forbidden | None:
    if user.two_factor_locked_until is None or user.two_factor_locked_until <= now:
        return None
    minutes = max(1, int((user.two_factor_locked_until - now).total_seconds() // 60) + 1)
    return Forbidden(
        "two_factor.locked",
        f"Two-factor codes are paused for this account after too many wrong codes. Try again in {minutes} minutes.",
        fields={"code": "is paused after too many wrong codes"},
        keep_evidence=True,  # the audit row of the refusal
    )


async def _refuse_if_two_factor_locked(session: AsyncSession, user: UserAccount, *, actor: Actor, now: datetime, action: str) -> None:
    if (refusal := _two_factor_locked(user, now)) is not None:
        await record_audit_event(
            session,
            actor=actor,
            action=action,
            resource_type="user_account",
            resource_id=user.id,
            now=now,
            outcome="denied",
            reason="two_factor_locked",
        )
        raise refusal


async def _check_code(
    session: AsyncSession, *, signed_in: SignedIn, code: str, actor: Actor, now: datetime, settings: Settings, action: str
) -> tuple[UserAccount, UserSession]:
    user, user_session = await _load(session, signed_in)
    if not user.totp_secret:
        raise Conflict("two_factor.not_enrolled", "Set up two-factor sign-in first.")
    if user.locked_until is not None and user.locked_until > now:
        raise Forbidden("auth.account_locked", "Sign-in is paused for this account after too many failed attempts.")
    await _refuse_if_two_factor_locked(session, user, actor=actor, now=now, action=action)
    address = actor.ip or "unknown"
    if await count_recent(session, bucket=ADDRESS_FAILURES, key=address, window=ADDRESS_WINDOW, now=now) >= ADDRESS_FAILURE_LIMIT:
        await record_audit_event(
            session,
            actor=actor,
            action=action,
            resource_type="user_account",
            resource_id=user.id,
            now=now,
            outcome="denied",
            reason="address_rate_limited",
        )
        raise TooManyRequests(
            "two_factor.rate_limited",
            "Too many wrong codes from this network. Wait 15 minutes and try again.",
            fields={"code": "too many wrong codes from this network"},
            keep_evidence=True,
        )
    keyring = TotpKeyring.from_settings(settings)
    step = matching_totp_step(unseal(user.totp_secret, user_id=user.id, keyring=keyring), code, at=authenticator_time(now))
    if step is None or (user.totp_last_used_step is not None and step <= user.totp_last_used_step):
        reason = "wrong_code" if step is None else "code_reused"
        record_event(session, bucket=ADDRESS_FAILURES, key=address, now=now)
        if await _count_code_failure(session, user, user_session, now=now, settings=settings):
            reason += "_locked"
        await record_audit_event(
            session,
            actor=actor,
            action=action,
            resource_type="user_account",
            resource_id=user.id,
            now=now,
            outcome="failure",
            reason=reason,
        )
        raise InvalidInput("two_factor.wrong_code", WRONG_CODE, fields={"code": "is not the current code"}, keep_evidence=True)
    # A correct code resets no count: only time does, so guesses cannot be spread between right answers.
    user.totp_last_used_step = step
    if (fresh := resealed(user.totp_secret, user_id=user.id, keyring=keyring)) is not None:
        user.totp_secret = fresh  # stored in clear, or under an old key: now under the current one
    await record_audit_event(session, actor=actor, action=action, resource_type="user_account", resource_id=user.id, now=now)
    return user, user_session


async def _count_code_failure(
    session: AsyncSession, user: UserAccount, user_session: UserSession, *, now: datetime, settings: Settings
) -> bool:
    """One more wrong code for the account (its row is locked, so concurrent guesses count one by one). At a
    limit of TWO_FACTOR_LOCKS the second factor locks, this session ends and the owner hears of it; answers
    whether it locked."""
    key = str(user.id)
    record_event(session, bucket=ACCOUNT_FAILURES, key=key, now=now)
    await session.flush()  # this failure counts toward the limits below
    lock_for = timedelta(0)
    for limit, window, locked_for in TWO_FACTOR_LOCKS:
        if await count_recent(session, bucket=ACCOUNT_FAILURES, key=key, window=window, now=now) >= limit:
            lock_for = max(lock_for, locked_for)
    if not lock_for:
        return False
    user.two_factor_locked_until = now + lock_for
    user_session.revoked_at = now
    await queue_email(
        session,
        to=user.email,
        template="two_factor_locked",
        context={
            "recipient_name": user.full_name,
            "paused_for": _duration(lock_for),
            "reset_url": f"{settings.public_base_url}/password/forgot",
        },
        now=now,
    )
    return True


def _duration(span: timedelta) -> str:
    minutes = int(span.total_seconds()) // 60
    return f"{minutes // 60} hours" if minutes % 60 == 0 else f"{minutes} minutes"


async def _count_password_failure(
    session: AsyncSession, user: UserAccount, user_session: UserSession, *, now: datetime, settings: Settings
) -> None:
    """A wrong password at signing (only a signed-in, two-factor session gets here, never a stranger) counts
    on the account: at the limit the account locks, this session ends and the owner hears of it. Wrong passwords
    at sign-in are throttled apart (throttle.py) and lock nothing."""
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


async def step_up(session: AsyncSession, *, signed_in: SignedIn, code: str, actor: Actor, now: datetime, settings: Settings) -> datetime:
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
    re-entered on the signing request itself. A wrong password counts toward the account lock, a wrong code
    toward the second factor's; a locked second factor refuses signing outright. All audited."""
    if not signed_in.totp_enrolled:
        raise Conflict("two_factor.not_enrolled", "Set up two-factor sign-in first.")
    user, user_session = await _load(session, signed_in)
    if user.locked_until is not None and user.locked_until > now:
        raise Forbidden("auth.account_locked", "Sign-in is paused for this account after too many failed attempts.")
    await _refuse_if_two_factor_locked(session, user, actor=actor, now=now, action="auth.signing")
    if not await verify_password_in_thread(user.password_hash, password):
        await _count_password_failure(session, user, user_session, now=now, settings=settings)
        await record_audit_event(
            session,
            actor=actor,
            action="auth.signing",
            resource_type="user_account",
            resource_id=user.id,
            now=now,
            outcome="failure",
            reason="wrong_password",
        )
        raise InvalidInput(
            "signing.wrong_password", "That password is not right.", fields={"password": "is not your password"}, keep_evidence=True
        )
    await _check_code(session, signed_in=signed_in, code=code, actor=actor, now=now, settings=settings, action="auth.signing")
