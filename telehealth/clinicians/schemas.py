"""Request and response bodies of the clinician-credentials API (coordinators only)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

import msgspec

from telehealth.lib.schema import RequestBody, ResponseBody

# Lengths are generous on purpose: the service checks the content and names the field with a reason.
StateCode = Annotated[str, msgspec.Meta(min_length=1, max_length=10, description="US state or DC, two letters")]
Number = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


class ProfileUpdate(RequestBody):
    npi: Annotated[str, msgspec.Meta(max_length=20, description="10 digits with the NPI check digit")] | None
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64, description="IANA zone, e.g. America/Chicago")]


class LicenseRequest(RequestBody):
    state: StateCode
    number: Number
    license_type: Annotated[str, msgspec.Meta(min_length=1, max_length=20, description="e.g. MD, DO, NP, PA; LCSW, LPC, LMFT")]
    expires_on: date


class DeaRequest(RequestBody):
    state: StateCode
    number: Annotated[str, msgspec.Meta(min_length=1, max_length=20, description="2 letters and 7 digits, the last a check digit")]
    schedules: Annotated[list[str], msgspec.Meta(max_length=10, description="of II, IIN, III, IIIN, IV, V")]
    expires_on: date


class SpecialRegistrationRequest(RequestBody):
    state: StateCode
    number: Number
    expires_on: date


class CredentialWarning(ResponseBody):
    code: str
    detail: str


class ProfileBody(ResponseBody):
    clinician_id: uuid.UUID
    npi: str | None
    timezone: str | None  # None until a profile is saved


class LicenseBody(ResponseBody):
    id: uuid.UUID
    state: str
    state_name: str
    number: str
    license_type: str
    expires_on: date
    expiry_status: str  # valid, expiring (within 30 days) or expired


class DeaBody(ResponseBody):
    id: uuid.UUID
    state: str
    state_name: str
    number: str
    schedules: list[str]
    expires_on: date
    expiry_status: str
    covers_schedule_iii: bool
    warnings: list[CredentialWarning]


class SpecialRegistrationBody(ResponseBody):
    """A DEA telemedicine special registration: after the telemedicine flexibilities end, a basis for
    prescribing to patients in its state without an in-person evaluation."""

    id: uuid.UUID
    state: str
    state_name: str
    number: str
    expires_on: date
    expiry_status: str


class ClinicianBody(ResponseBody):
    id: uuid.UUID
    full_name: str
    email: str
    role: str
    is_active: bool
    npi: str | None
    timezone: str | None
    licenses: list[LicenseBody]
    dea_registrations: list[DeaBody]
    special_registrations: list[SpecialRegistrationBody]
