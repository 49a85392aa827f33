"""Account rules: creating accounts, signing in (rate limits, throttling: throttle.py), email verification, password reset.

Sessions live in `sessions.py`, two-factor in `two_factor.py`, who-may-see-whom in `authz.py`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts import throttle
from telehealth.accounts.models import AccountToken, Patient, UserAccount
from telehealth.accounts.roles import STAFF_ROLES, Role
from telehealth.accounts.security import (
    hash_password_in_thread,
    hash_token,
    new_token,
    password_needs_rehash,
    password_problem,
    verify_password_in_thread,
)
from telehealth.audit.service import record_audit_event
from telehealth.db import driver
from telehealth.lib.actors import Actor
from telehealth.lib.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated, TooManyRequests
from telehealth.notifications.service import queue_email
from telehealth.settings import Settings
from telehealth.system.rate_limit import over_rate_limit

INVALID_CREDENTIALS = "That email and password do not match an account."


def normalize_email(email: str) -> str:
    return email.strip().lower()


def email_problem(email: str) -> str | None:
    if len(email) > 254:
        return "must be at most 254 characters"
    try:
        # The standard's grammar, not a pattern: `<victim@x.com>foo.com` passed a regex and was delivered to
        # victim@x.com. No DNS lookup: a request never waits on the network (and tests run offline).
        validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as why:
        return f"is not a valid email address: {why}"
    return None


async def find_user_by_email(session: AsyncSession, email: str) -> UserAccount | None:
    result = await session.execute(select(UserAccount).where(UserAccount.email == normalize_email(email)))
    return result.scalar_one_or_none()


async def create_account(
    session: AsyncSession,
    *,
    email: str,
    full_name: str,
    role: Role,
    password: str,
    actor: Actor,
    now: datetime,
    settings: Settings,
    email_verified: bool = False,
) -> UserAccount:
    """Create an account (and the patient record for a patient). Queues the verification email unless
    the address is already known to be verified."""
    fields: dict[str, str] = {}
    if problem := email_problem(email):
        fields["email"] = problem
    if not full_name.strip():
        fields["full_name"] = "is required"
    if problem := password_problem(password, email=email):
        fields["password"] = problem
    if fields:
        raise InvalidInput("account.invalid", "Some details need another look.", fields=fields)
    if await find_user_by_email(session, email) is not None:
        raise Conflict("account.email_taken", "An account with this email already exists.", fields={"email": "is taken"})
    user = UserAccount(
        email=normalize_email(email),
        full_name=full_name.strip(),
        role=role.value,
        password_hash=await hash_password_in_thread(password),
        email_verified_at=now if email_verified else None,
        created_at=now,
    )
    session.add(user)
    await session.flush()
    if role is Role.PATIENT:
        session.add(Patient(user_id=user.id, created_at=now))
    await record_audit_event(session, actor=actor, action="account.create", resource_type="user_account", resource_id=user.id, now=now)
    if not email_verified:
        await send_email_verification(session, user=user, now=now, settings=settings)
    return user


# --- signing in ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignInAttempt:
    email: str
    password: str
    ip: str
    user_agent: str | None


async def check_password_sign_in(session: AsyncSession, attempt: SignInAttempt, *, now: datetime, settings: Settings) -> UserAccount:
    """Check an email and password. Answers the user, or raises a refusal that keeps its evidence
    (attempt rows, audit), so the request commits them even though it fails.

    Wrong passwords are throttled per address and per email (throttle.py), never locked for everyone. An
    unknown email is answered exactly as a wrong password is, after the same work: the same counts, and a
    password hash checked (against a dummy)."""
    actor = Actor.anonymous(attempt.ip, attempt.user_agent)
    await _refuse_this_address_when_over(
        session,
        bucket="sign_in",
        key=attempt.ip,
        limit=settings.login_attempts_per_ip_per_15_min,
        window=timedelta(minutes=15),
        actor=actor,
        action="auth.sign_in",
        now=now,
        refusal=TooManyRequests(
            "auth.rate_limited", "Too many sign-in attempts from this network. Wait 15 minutes and try again.", keep_evidence=True
        ),
    )
    email = normalize_email(attempt.email)
    if (refusal := await throttle.sign_in_refusal(session, email=email, ip=attempt.ip, now=now)) is not None:
        await record_audit_event(
            session,
            actor=actor,
            action="auth.sign_in",
            resource_type="user_account",
            now=now,
            outcome="denied",
            reason=f"throttled_{refusal}",
        )
        raise TooManyRequests("auth.rate_limited", throttle.REFUSALS[refusal], keep_evidence=True)
    user = (await session.execute(select(UserAccount).where(UserAccount.email == email))).scalar_one_or_none()
    password_ok = await verify_password_in_thread(user.password_hash if user else None, attempt.password)

    if user is None or not user.is_active or not password_ok:
        reason = "unknown_account" if user is None else "inactive" if not user.is_active else "wrong_password"
        if await throttle.record_wrong_password(session, email=email, ip=attempt.ip, now=now) and user is not None and user.is_active:
            await queue_account_locked_email(session, user=user, now=now, settings=settings)
            reason += "_throttled"
        await record_audit_event(
            session,
            actor=actor if user is None else Actor(user.id, user.role, attempt.ip, attempt.user_agent),
            action="auth.sign_in",
            resource_type="user_account",
            resource_id=user.id if user else None,
            now=now,
            outcome="failure",
            reason=reason,
        )
        raise NotAuthenticated("auth.invalid_credentials", INVALID_CREDENTIALS, keep_evidence=True)

    # Past this point the caller knows the password: the refusals below tell nothing to a guesser.
    actor = Actor(user.id, user.role, attempt.ip, attempt.user_agent)
    if user.locked_until is not None and user.locked_until > now:  # set only by wrong passwords at signing (two_factor.py)
        minutes = max(1, int((user.locked_until - now).total_seconds() // 60) + 1)
        await record_audit_event(
            session,
            actor=actor,
            action="auth.sign_in",
            resource_type="user_account",
            resource_id=user.id,
            now=now,
            outcome="denied",
            reason="locked",
        )
        raise Forbidden(
            "auth.account_locked",
            f"Sign-in is paused for this account after too many failed attempts. Try again in {minutes} minutes, or reset your password.",
            keep_evidence=True,
        )
    if Role(user.role) in STAFF_ROLES and user.email_verified_at is None:
        await record_audit_event(
            session,
            actor=actor,
            action="auth.sign_in",
            resource_type="user_account",
            resource_id=user.id,
            now=now,
            outcome="denied",
            reason="email_unverified",
        )
        raise Forbidden(
            "auth.email_unverified",
            "Confirm your email address first, with the link we emailed you. If it has expired, use "
            '"Forgot your password?": its link confirms the address too.',
            keep_evidence=True,
        )

    user.failed_login_count = 0
    if password_needs_rehash(user.password_hash):
        user.password_hash = await hash_password_in_thread(attempt.password)
    await record_audit_event(session, actor=actor, action="auth.sign_in", resource_type="user_account", resource_id=user.id, now=now)
    return user


async def queue_account_locked_email(session: AsyncSession, *, user: UserAccount, now: datetime, settings: Settings) -> None:
    await queue_email(
        session,
        to=user.email,
        template="account_locked",
        context={
            "recipient_name": user.full_name,
            "locked_minutes": settings.login_lock_minutes,
            "reset_url": f"{settings.public_base_url}/password/forgot",
        },
        now=now,
    )


# --- single-use tokens: email verification and password reset -----------------------------------------


async def _issue_token(session: AsyncSession, *, user: UserAccount, purpose: str, valid_for: timedelta, now: datetime) -> str:
    raw, digest = new_token()
    session.add(AccountToken(user_id=user.id, purpose=purpose, token_hash=digest, created_at=now, expires_at=now + valid_for))
    return raw


async def _spend_token(session: AsyncSession, *, raw: str, purpose: str, now: datetime) -> UserAccount:
    """Spend a token and, in the same statement, every other live token of its account for the same purpose:
    using one reset link retires the older ones. Compare-and-swap: of two requests racing with two links of one
    account, the first to update the rows wins and the other finds them spent."""
    spendable = (
        select(AccountToken.user_id)
        .where(
            AccountToken.token_hash == hash_token(raw),
            AccountToken.purpose == purpose,
            col(AccountToken.used_at).is_(None),
            AccountToken.expires_at > now,
        )
        .scalar_subquery()
    )
    spent = await session.execute(
        update(AccountToken)
        .where(col(AccountToken.user_id) == spendable, col(AccountToken.purpose) == purpose, col(AccountToken.used_at).is_(None))
        .values(used_at=now)
        .returning(col(AccountToken.user_id), col(AccountToken.token_hash))
    )
    rows = spent.all()
    if hash_token(raw) not in {row.token_hash for row in rows}:
        raise InvalidInput(
            f"{purpose}.link_invalid",
            "This link has expired or was already used. Ask for a new one.",
            fields={"token": "is expired, used or unknown"},
        )
    user = await session.get(UserAccount, rows[0].user_id)
    assert user is not None  # the foreign key guarantees it
    return user


async def _retire_tokens(session: AsyncSession, *, user_id: uuid.UUID, purpose: str, now: datetime) -> None:
    """Spend every live token of an account for a purpose (a new reset link replaces the older ones)."""
    await session.execute(
        update(AccountToken)
        .where(col(AccountToken.user_id) == user_id, col(AccountToken.purpose) == purpose, col(AccountToken.used_at).is_(None))
        .values(used_at=now)
    )


async def resend_email_verification(session: AsyncSession, *, user_id: uuid.UUID, now: datetime, settings: Settings) -> None:
    """Send a fresh verification link (a click while one is still queued sends nothing more)."""
    user = await session.get(UserAccount, user_id)
    assert user is not None
    if user.email_verified_at is not None:
        raise Conflict("account.already_verified", "Your email address is already confirmed.")
    await send_email_verification(session, user=user, now=now, settings=settings)


async def send_email_verification(session: AsyncSession, *, user: UserAccount, now: datetime, settings: Settings) -> None:
    raw = await _issue_token(
        session, user=user, purpose="verify_email", valid_for=timedelta(hours=settings.email_verification_valid_hours), now=now
    )
    await queue_email(
        session,
        to=user.email,
        template="verify_email",
        context={"recipient_name": user.full_name, "verify_url": f"{settings.public_base_url}/account/verify-email?token={raw}"},
        now=now,
        dedupe_key=f"verify_email:{user.id}",
    )


async def verify_email(session: AsyncSession, *, token: str, actor: Actor, now: datetime) -> UserAccount:
    user = await _spend_token(session, raw=token, purpose="verify_email", now=now)
    if user.email_verified_at is None:
        user.email_verified_at = now
    await record_audit_event(
        session, actor=actor, action="account.verify_email", resource_type="user_account", resource_id=user.id, now=now
    )
    return user


async def _refuse_this_address_when_over(
    session: AsyncSession,
    *,
    bucket: str,
    key: str,
    limit: int,
    window: timedelta,
    actor: Actor,
    action: str,
    now: datetime,
    refusal: TooManyRequests,
) -> None:
    """Count one request from this address; past `limit` in `window`, audit the refusal (kept: keep_evidence) and
    raise it. Per address only: it says nothing about any account."""
    if await over_rate_limit(session, bucket=bucket, key=key, limit=limit, window=window, now=now):
        await record_audit_event(
            session, actor=actor, action=action, resource_type="user_account", now=now, outcome="denied", reason="rate_limited"
        )
        raise refusal


# Reset emails: per client address, refused openly (429: it says nothing about any account); per email, silently
# (the same neutral answer, nothing more sent), counted for unknown emails too so the answer never differs.
RESET_REQUESTS_PER_ADDRESS, RESET_REQUESTS_PER_EMAIL, RESET_WINDOW = 10, 3, timedelta(hours=1)


async def request_password_reset(session: AsyncSession, *, email: str, actor: Actor, now: datetime, settings: Settings) -> None:
    """Email a reset link if the account exists. Answers the same either way (no way to probe for accounts).
    A new link retires the account's older ones."""
    await _refuse_this_address_when_over(
        session,
        bucket="password_reset_ip",
        key=actor.ip or "unknown",
        limit=RESET_REQUESTS_PER_ADDRESS,
        window=RESET_WINDOW,
        actor=actor,
        action="auth.password_reset_requested",
        now=now,
        refusal=TooManyRequests(
            "password_reset.rate_limited",
            "Too many password reset requests from this network. Wait an hour and try again.",
            keep_evidence=True,
        ),
    )
    over_for_email = await over_rate_limit(
        session,
        bucket="password_reset",
        key=throttle.email_digest(normalize_email(email)),
        limit=RESET_REQUESTS_PER_EMAIL,
        window=RESET_WINDOW,
        now=now,
    )
    user = await find_user_by_email(session, email)
    reason = "unknown_account" if user is None else "rate_limited" if over_for_email else None
    await record_audit_event(
        session,
        actor=actor,
        action="auth.password_reset_requested",
        resource_type="user_account",
        resource_id=user.id if user else None,
        now=now,
        outcome="success" if reason is None else "failure",
        reason=reason,
    )
    if user is None or not user.is_active or over_for_email:
        return
    await _retire_tokens(session, user_id=user.id, purpose="reset_password", now=now)
    raw = await _issue_token(
        session, user=user, purpose="reset_password", valid_for=timedelta(minutes=settings.password_reset_valid_minutes), now=now
    )
    await queue_email(
        session,
        to=user.email,
        template="password_reset",
        context={
            "recipient_name": user.full_name,
            "reset_url": f"{settings.public_base_url}/password/reset?token={raw}",
            "valid_minutes": settings.password_reset_valid_minutes,
        },
        now=now,
    )


async def reset_password(session: AsyncSession, *, token: str, new_password: str, actor: Actor, now: datetime) -> UserAccount:
    """Spend a reset token (and the account's other reset links), set the new password, end every session of
    the account, lift any lock and forget wrong passwords (they were guesses at the old one)."""
    from telehealth.accounts.sessions import revoke_all_sessions

    user = await _spend_token(session, raw=token, purpose="reset_password", now=now)
    if problem := password_problem(new_password, email=user.email):
        raise InvalidInput("account.invalid", "Choose another password.", fields={"password": problem})
    user.password_hash = await hash_password_in_thread(new_password)
    user.failed_login_count = 0
    user.locked_until = None
    await throttle.forget_wrong_passwords(session, email=user.email)
    if user.email_verified_at is None:
        user.email_verified_at = now  # the reset link reached the inbox: the address works
    await revoke_all_sessions(session, user_id=user.id, now=now)
    await record_audit_event(
        session,
        actor=Actor(user.id, user.role, actor.ip, actor.user_agent),
        action="auth.password_reset",
        resource_type="user_account",
        resource_id=user.id,
        now=now,
    )
    return user


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> UserAccount | None:
    return await session.get(UserAccount, user_id)


class Contact(NamedTuple):
    email: str
    full_name: str
    timezone: str  # the patient's: the zone their emails give times in


# On the driver (db/driver.py): every email to a patient (a booking's, a payment's, a refund's) reads it.
_PATIENT_CONTACT = "SELECT u.email, u.full_name, p.timezone FROM patient p JOIN user_account u ON u.id = p.user_id WHERE p.id = $1"


async def patient_contact(session: AsyncSession, patient_id: uuid.UUID) -> Contact:
    """The email and name of a patient's account, and their zone: whom to write to, how to greet them, and when."""
    row = await driver.fetchrow(session, _PATIENT_CONTACT, patient_id)
    if row is None:
        raise LookupError(f"no patient {patient_id}")
    return Contact(*row)
