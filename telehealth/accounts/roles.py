"""The five roles that sign in (sitters are contacts with tokens, not accounts)."""

from enum import StrEnum


class Role(StrEnum):
    PATIENT = "patient"
    PRESCRIBER = "prescriber"
    THERAPIST = "therapist"
    PHARMACIST = "pharmacist"
    COORDINATOR = "coordinator"


STAFF_ROLES = frozenset({Role.PRESCRIBER, Role.THERAPIST, Role.PHARMACIST, Role.COORDINATOR})
# Everyone who can see more than their own record signs in with a second factor.
TWO_FACTOR_REQUIRED_ROLES = STAFF_ROLES
