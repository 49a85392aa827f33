"""Server-side sessions in PostgreSQL: they survive restarts and work across app processes.

The browser holds a random token in an HttpOnly, SameSite=Lax cookie; the table holds its SHA-256.
A session ends after 30 idle minutes or 12 hours in all (settings), on sign-out, or on password reset.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from telehealth.accounts.models import UserAccount, UserSession
from telehealth.accounts.roles import STAFF_ROLES, Role, TwoFactorStep, two_factor_step
from telehealth.accounts.security import hash_token, new_token
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


# Built once (every signed-in request runs it): building a statement costs more than the database's answer.
_LIVE_SESSION = (
    select(UserSession, UserAccount)
    .join(UserAccount, col(UserAccount.id) == UserSession.user_id)
    .where(UserSession.token_hash == bindparam("token_hash"), col(UserSession.revoked_at).is_(None))
)


async def resolve_session(session: AsyncSession, *, raw_token: str, now: datetime, settings: Settings) -> SignedIn | None:
    """The live session for a cookie token, touched; None if unknown, revoked, idle too long or past 12 h."""
    row = (await session.execute(_LIVE_SESSION, {"token_hash": hash_token(raw_token)})).one_or_none()
    if row is None:
        return None
    user_session, user = row
    idle_limit = timedelta(minutes=settings.session_idle_minutes)
    if now >= user_session.expires_at or now - user_session.last_seen_at >= idle_limit or not user.is_active:
        return None
    if now - user_session.last_seen_at >= TOUCH_EVERY:
        user_session.last_seen_at = now
    return SignedIn(
        user_id=user.id,
        session_id=user_session.id,
        role=Role(user.role),
        email=user.email,
        full_name=user.full_name,
        email_verified=user.email_verified_at is not None,
        totp_enrolled=user.totp_confirmed_at is not None,
        two_factor_verified=user_session.two_factor_verified_at is not None,
        step_up_at=user_session.step_up_at,
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
