"""The five roles that sign in (sitters are contacts with tokens, not accounts)."""

from enum import StrEnum
from typing import Literal


class Role(StrEnum):
    PATIENT = "patient"
    PRESCRIBER = "prescriber"
    THERAPIST = "therapist"
    PHARMACIST = "pharmacist"
    COORDINATOR = "coordinator"


STAFF_ROLES = frozenset({Role.PRESCRIBER, Role.THERAPIST, Role.PHARMACIST, Role.COORDINATOR})
# Everyone who can see more than their own record signs in with a second factor.
TWO_FACTOR_REQUIRED_ROLES = STAFF_ROLES
TwoFactorStep = Literal["not_needed", "enrol", "required", "done"]


def two_factor_step(role: str, *, enrolled: bool, verified: bool) -> TwoFactorStep:
    """Where an account stands with the second factor at sign-in: "not_needed", "enrol" (required but not
    set up), "required" (set up, code not yet given in this session) or "done". Staff always need it; a
    patient who chose to enrol needs it too."""
    if Role(role) not in TWO_FACTOR_REQUIRED_ROLES and not enrolled:
        return "not_needed"
    if not enrolled:
        return "enrol"
    return "done" if verified else "required"
