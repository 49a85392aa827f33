"""Wrong passwords are throttled, never a lock a stranger can set on someone else's account.

Each wrong password (for a known account or not: both are counted the same way, keyed by a digest of the
email, so the answers cannot tell whether an account exists) is a row in rate_limit_event, in two buckets:

- per email *and* client address (PASSWORDS_FROM): 10 wrong in 15 minutes, and that address may not try that
  email again until the window rolls. A stranger guessing from their address stops themselves, nobody else.
- per email, from every address (PASSWORDS_FOR): 30 wrong in 15 minutes or 100 in a day (a guesser spread over
  many addresses) and the email is refused from *unfamiliar* addresses until the window rolls; an address the
  account signed in from in the last 30 days still gets through (its own per-address limit still applies).
  The owner is emailed when the 15-minute tier is reached.

On top of these, every sign-in attempt from an address counts toward the address's own limit (service.py,
`login_attempts_per_ip_per_15_min`). A refused attempt checks no password and counts nothing, so waiting always
works. Nothing but time resets the counts, except a password reset: guesses at the old password say nothing
about the new one, so a reset clears the email's counts and the owner signs in at once, from anywhere.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, exists, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.models import UserAccount, UserSession
from telehealth.accounts.security import hash_token
from telehealth.system.models import RateLimitEvent
from telehealth.system.rate_limit import count_recent, record_event

PASSWORDS_FROM = "password_failure_from"  # key: "<email digest>:<address>"
PASSWORDS_FOR = "password_failure"  # key: the email digest
FROM_ADDRESS_LIMIT, FROM_ADDRESS_WINDOW = 10, timedelta(minutes=15)
# (wrong passwords for the email from anywhere, within). The longest must not exceed system/jobs.py's LONGEST_WINDOW.
ACCOUNT_TIERS = ((30, timedelta(minutes=15)), (100, timedelta(hours=24)))
FAMILIAR_FOR = timedelta(days=30)

REFUSALS = {
    "from_address": "Too many wrong passwords for this account from this network. Wait 15 minutes and try again, or reset your password.",
    "unfamiliar_address": (
        "Too many wrong passwords for this account. Try again later from where you usually sign in, or reset your password."
    ),
}


def email_digest(email: str) -> str:
    """The rate-limit key of an email (already normalized): no address sits in the rate-limit table."""
    return hash_token(f"sign-in:{email}")


def _from_key(email: str, ip: str) -> str:
    return f"{email_digest(email)}:{ip}"


async def _familiar_address(session: AsyncSession, *, email: str, ip: str, now: datetime) -> bool:
    """The account behind `email` signed in from `ip` lately (false for an unknown email)."""
    signed_in_here = exists().where(
        col(UserSession.user_id) == UserAccount.id, col(UserSession.ip) == ip, col(UserSession.created_at) >= now - FAMILIAR_FOR
    )
    return bool(await session.scalar(select(signed_in_here.correlate(UserAccount)).where(UserAccount.email == email)))


async def sign_in_refusal(session: AsyncSession, *, email: str, ip: str, now: datetime) -> str | None:
    """Why this email may not be tried from this address now (a key of REFUSALS), or None.

    Takes the rate-limit locks of both buckets (held to commit), so concurrent guesses are counted one by one."""
    if (
        await count_recent(session, bucket=PASSWORDS_FROM, key=_from_key(email, ip), window=FROM_ADDRESS_WINDOW, now=now)
        >= FROM_ADDRESS_LIMIT
    ):
        return "from_address"
    for limit, window in ACCOUNT_TIERS:
        if await count_recent(session, bucket=PASSWORDS_FOR, key=email_digest(email), window=window, now=now) >= limit:
            return None if await _familiar_address(session, email=email, ip=ip, now=now) else "unfamiliar_address"
    return None


async def record_wrong_password(session: AsyncSession, *, email: str, ip: str, now: datetime) -> bool:
    """Count one wrong password; answers whether it just reached the first account-wide tier (tell the owner)."""
    record_event(session, bucket=PASSWORDS_FROM, key=_from_key(email, ip), now=now)
    record_event(session, bucket=PASSWORDS_FOR, key=email_digest(email), now=now)
    await session.flush()
    limit, window = ACCOUNT_TIERS[0]
    return await count_recent(session, bucket=PASSWORDS_FOR, key=email_digest(email), window=window, now=now) == limit


async def forget_wrong_passwords(session: AsyncSession, *, email: str) -> None:
    """After a password reset: the guesses were at the old password."""
    digest = email_digest(email)
    await session.execute(
        delete(RateLimitEvent).where(
            or_(
                (col(RateLimitEvent.bucket) == PASSWORDS_FOR) & (RateLimitEvent.key == digest),
                (col(RateLimitEvent.bucket) == PASSWORDS_FROM) & col(RateLimitEvent.key).startswith(f"{digest}:", autoescape=True),
            )
        )
    )
