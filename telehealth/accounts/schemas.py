"""Request and response bodies of the accounts API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from telehealth.lib.schema import RequestBody, ResponseBody

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
TotpCode = Annotated[str, msgspec.Meta(pattern=r"^\s*\d{3}\s?\d{3}\s*$", description="6-digit TOTP code")]
Token = Annotated[str, msgspec.Meta(min_length=10, max_length=200)]


class SignInRequest(RequestBody):
    email: Email
    password: Password


class CodeRequest(RequestBody):
    code: TotpCode


class PasswordResetRequest(RequestBody):
    email: Email


class PasswordResetConfirm(RequestBody):
    token: Token
    password: Password


class EmailVerification(RequestBody):
    token: Token


class Me(ResponseBody):
    id: uuid.UUID
    email: str
    full_name: str
    role: str
    email_verified: bool
    two_factor: Literal["not_needed", "enrol", "required", "done"]
    patient_id: uuid.UUID | None = None


class TwoFactorEnrolment(ResponseBody):
    otpauth_uri: str
    secret: str


class StepUpResult(ResponseBody):
    valid_until: datetime


class Accepted(ResponseBody):
    detail: str


class PatientRecord(ResponseBody):
    id: uuid.UUID
    full_name: str
    email: str
    timezone: str
    state_of_residence: str | None
    created_at: datetime
