"""Request and response bodies of the waiting-list API (the field names are a contract for other clients)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import msgspec

from telehealth.lib.schema import RequestBody, ResponseBody

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Token = Annotated[str, msgspec.Meta(min_length=10, max_length=200)]
StateCode = Annotated[str, msgspec.Meta(min_length=2, max_length=2, description="US state or DC, two letters")]


class JoinWaitlist(RequestBody):
    first_name: Name
    last_name: Name
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    state: StateCode
    date_of_birth: date
    consent_to_contact: bool
    phone: Annotated[str, msgspec.Meta(max_length=16, description="E.164, e.g. +12125550123")] | None = None
    conditions: Annotated[list[str], msgspec.Meta(max_length=10)] | None = None


class EntryToken(RequestBody):
    token: Token


class InviteNext(RequestBody):
    state: StateCode
    count: Annotated[int, msgspec.Meta(ge=1, le=500)]


class AcceptInvitation(RequestBody):
    token: Token
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    accept_terms: bool


class Accepted(ResponseBody):
    detail: str


class WaitlistStatus(ResponseBody):
    status: str
    state: str
    state_name: str
    state_served: bool
    position: int | None
    people_waiting_in_state: int
    estimated_wait_weeks: int | None
    invitation_expires_at: datetime | None
    note: str | None


class InvitationRun(ResponseBody):
    state: str
    invited: int
    invitation_ids: list[uuid.UUID]


class StateQueue(ResponseBody):
    state: str
    state_name: str
    served: bool
    unconfirmed: int
    waiting: int
    invitations_out: int
    enrolled: int
    lapsed: int
    left: int
    oldest_waiting_since: datetime | None
