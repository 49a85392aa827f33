"""Server-side sessions in PostgreSQL: they survive restarts and work across app processes.

The browser holds a random token in an HttpOnly, SameSite=Lax cookie; the table holds its SHA-256.
A session ends after 30 idle minutes or 12 hours in all (settings), on sign-out, or on password reset.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from telehealth.accounts.models import UserAccount, UserSession
from telehealth.accounts.roles import STAFF_ROLES, Role, TwoFactorStep, two_factor_step
from telehealth.accounts.security import hash_token, new_token
from telehealth.db import driver
from telehealth.settings import Settings

SESSION_COOKIE = "th_session"
# last_seen_at is written at most this often, so reading pages does not write on every request.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class SignedIn:
    """Who is signed in, as plain values read once per request by the auth middleware.

    Services that change the account or the session load the rows again in the request's own transaction.
    """

    user_id: uuid.UUID
    session_id: uuid.UUID
    role: Role
    email: str
    full_name: str
    email_verified: bool
    totp_enrolled: bool
    two_factor_verified: bool
    step_up_at: datetime | None

    @property
    def two_factor(self) -> TwoFactorStep:
        return two_factor_step(self.role, enrolled=self.totp_enrolled, verified=self.two_factor_verified)

    @property
    def two_factor_done(self) -> bool:
        return self.two_factor in ("not_needed", "done")

    @property
    def must_enrol_two_factor(self) -> bool:
        return self.two_factor == "enrol"

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES


def session_cookie_name(settings: Settings) -> str:
    """Over https the cookie is `__Host-`-prefixed: the browser then keeps it only if it is Secure, has Path=/
    and no Domain, so neither a sibling subdomain nor a plain-http page can plant or overwrite it."""
    return f"__Host-{SESSION_COOKIE}" if settings.uses_tls else SESSION_COOKIE


async def start_session(
    session: AsyncSession, *, user: UserAccount, ip: str | None, user_agent: str | None, now: datetime, settings: Settings
) -> str:
    """Create a session row; answer the raw token for the cookie (it is never stored)."""
    raw, digest = new_token()
    session.add(
        UserSession(
            token_hash=digest,
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=settings.session_absolute_hours),
            ip=ip,
            user_agent=(user_agent or "")[:400] or None,
        )
    )
    await session.flush()
    return raw


# Every signed-in request runs these: on the driver (db/driver.py), the columns SignedIn needs and no ORM objects.
_LIVE_SESSION = """
SELECT s.id, s.expires_at, s.last_seen_at, s.two_factor_verified_at IS NOT NULL AS two_factor_verified, s.step_up_at,
       u.id AS user_id, u.role, u.email, u.full_name, u.is_active,
       u.email_verified_at IS NOT NULL AS email_verified, u.totp_confirmed_at IS NOT NULL AS totp_enrolled
FROM user_session AS s JOIN user_account AS u ON u.id = s.user_id
WHERE s.token_hash = $1 AND s.revoked_at IS NULL
"""
_TOUCH_SESSION = "UPDATE user_session SET last_seen_at = $1 WHERE id = $2"


async def resolve_session(session: AsyncSession, *, raw_token: str, now: datetime, settings: Settings) -> SignedIn | None:
    """The live session for a cookie token, touched; None if unknown, revoked, idle too long or past 12 h."""
    row = await driver.fetchrow(session, _LIVE_SESSION, hash_token(raw_token))
    if row is None:
        return None
    expires_at, last_seen_at = row["expires_at"].astimezone(UTC), row["last_seen_at"].astimezone(UTC)
    idle_limit = timedelta(minutes=settings.session_idle_minutes)
    if now >= expires_at or now - last_seen_at >= idle_limit or not row["is_active"]:
        return None
    if now - last_seen_at >= TOUCH_EVERY:
        await driver.execute(session, _TOUCH_SESSION, now.astimezone(UTC), row["id"])
    step_up_at = row["step_up_at"]
    return SignedIn(
        user_id=row["user_id"],
        session_id=row["id"],
        role=Role(row["role"]),
        email=row["email"],
        full_name=row["full_name"],
        email_verified=row["email_verified"],
        totp_enrolled=row["totp_enrolled"],
        two_factor_verified=row["two_factor_verified"],
        step_up_at=None if step_up_at is None else step_up_at.astimezone(UTC),
    )


async def rotate_session_token(session: AsyncSession, *, session_id: uuid.UUID) -> str:
    """A new token for a live session (the second factor just completed): the old token stops working at once,
    so a token seen or planted before the session gained its privileges is worth nothing. Answers the raw token."""
    raw, digest = new_token()
    await session.execute(update(UserSession).where(col(UserSession.id) == session_id).values(token_hash=digest))
    return raw


async def end_session(session: AsyncSession, *, session_id: uuid.UUID, now: datetime) -> None:
    await session.execute(
        update(UserSession).where(col(UserSession.id) == session_id, col(UserSession.revoked_at).is_(None)).values(revoked_at=now)
    )


async def revoke_all_sessions(session: AsyncSession, *, user_id: uuid.UUID, now: datetime) -> None:
    await session.execute(
        update(UserSession).where(col(UserSession.user_id) == user_id, col(UserSession.revoked_at).is_(None)).values(revoked_at=now)
    )
