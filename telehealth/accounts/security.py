"""Password hashing (Argon2id), random tokens stored hashed, TOTP codes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

import anyio.to_thread
import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2-cffi's defaults are Argon2id with RFC 9106's low-memory profile
# Verified against when the email is unknown, so a wrong email costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password-" + secrets.token_hex(8))

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


# Argon2 takes tens to hundreds of milliseconds of CPU by design. On the event loop that stalls every other
# request of the process for as long; in a worker thread (argon2-cffi releases the GIL) the loop keeps serving.
# Async code calls these two, never the blocking ones above.


async def hash_password_in_thread(password: str) -> str:
    return await anyio.to_thread.run_sync(hash_password, password)


async def verify_password_in_thread(password_hash: str | None, password: str) -> bool:
    return await anyio.to_thread.run_sync(verify_password, password_hash, password)


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problem(password: str, *, email: str) -> str | None:
    """A sentence saying why a password is refused, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"must be at most {MAX_PASSWORD_LENGTH} characters"
    if password.strip().lower() == email.strip().lower():
        return "must not be your email address"
    if len(set(password)) < 5:
        return "is too repetitive"
    return None


def new_token() -> tuple[str, str]:
    """A random token for a link or cookie, and the SHA-256 we store instead of it."""
    raw = secrets.token_urlsafe(32)
    return raw, hash_token(raw)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, *, email: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def matching_totp_step(secret: str, code: str, *, at: datetime) -> int | None:
    """The 30-second step the code belongs to (one step of clock drift either way), or None."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    step = int(at.timestamp()) // totp.interval
    for candidate in (step, step - 1, step + 1):
        if secrets.compare_digest(totp.at(candidate * totp.interval), code):
            return candidate
    return None


def current_totp_code(secret: str, *, at: datetime) -> str:
    return pyotp.TOTP(secret).at(at)
