"""Pure checks of credential details: NPI and DEA check digits, license types by role, states, expiries.

Each check answers the problems by field, so the API and the pages name the field and the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from zoneinfo import available_timezones

from telehealth.accounts.roles import Role
from telehealth.lib.errors import InvalidInput
from telehealth.lib.us_states import US_STATES
from telehealth.lib.validation import has_control_characters

SCHEDULE_III = "III"  # ketamine's schedule
PRACTITIONER_SCHEDULES = ("II", "IIN", "III", "IIIN", "IV", "V")
NO_SCHEDULE_III = "dea.no_schedule_iii"
EXPIRY_WARNING_DAYS = 30  # expiring credentials show on the coordinator's home and are emailed once
PAST_EXPIRY_GRACE = timedelta(days=1)  # an expiry up to a day back is a time-zone slip, further is a typo
# Slots and served states count any unexpired license in a state, so a license of a type that cannot
# prescribe must never reach a prescriber: each role takes only its own types.
LICENSE_TYPES: dict[Role, tuple[str, ...]] = {
    Role.PRESCRIBER: ("MD", "DO", "NP", "APRN", "PA"),
    Role.THERAPIST: ("LCSW", "LICSW", "LMSW", "LPC", "LPCC", "LMHC", "LCPC", "LMFT", "PSY", "PsyD", "PhD"),
}
DEA_NUMBER = re.compile(r"^[A-Z]{2}[0-9]{7}$")


def npi_is_valid(npi: str) -> bool:
    """10 digits whose last is the Luhn check digit of the number prefixed with 80840 (the NPI rule)."""
    if len(npi) != 10 or not (npi.isascii() and npi.isdigit()):
        return False
    total = 0
    for index, char in enumerate(reversed("80840" + npi)):
        digit = int(char) * (2 if index % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def dea_number_is_valid(number: str) -> bool:
    """Two letters and seven digits; the last digit is the last digit of d1+d3+d5 + 2*(d2+d4+d6)."""
    if not DEA_NUMBER.match(number):
        return False
    d = [int(char) for char in number[2:]]
    return (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10 == d[6]


def schedule_list(schedules: str) -> list[str]:
    """The stored comma list ("II,IIN,III") as items; "IIIN" is not "III"."""
    return [item for item in schedules.split(",") if item]


def dea_warnings(*, state: str, schedules: str) -> list[tuple[str, str]]:
    """Allowed but worth saying: without Schedule III a registration does not let its holder prescribe ketamine."""
    if SCHEDULE_III in schedule_list(schedules):
        return []
    return [(NO_SCHEDULE_III, f"Without Schedule III this registration cannot prescribe ketamine in {state}.")]


def expiry_status(expires_on: date, *, today: date) -> str:
    """valid, expiring (within EXPIRY_WARNING_DAYS) or expired. A credential is good through its expiry date."""
    if expires_on < today:
        return "expired"
    return "expiring" if expires_on <= today + timedelta(days=EXPIRY_WARNING_DAYS) else "valid"


@dataclass(frozen=True)
class LicenseDetails:
    state: str
    number: str
    license_type: str
    expires_on: date


@dataclass(frozen=True)
class DeaDetails:
    state: str
    number: str
    schedules: str  # the stored form: known schedules in PRACTITIONER_SCHEDULES order, comma-separated
    expires_on: date


def _refuse_problems(problems: dict[str, str | None], detail: str) -> None:
    if named := {field: reason for field, reason in problems.items() if reason}:
        raise InvalidInput("clinician.invalid", detail, fields=named)


def _state_problem(state: str) -> str | None:
    return None if state in US_STATES else "is not a US state or DC code"


def _expiry_problem(expires_on: date, today: date) -> str | None:
    return "is more than a day in the past" if expires_on < today - PAST_EXPIRY_GRACE else None


def checked_license(role: Role, *, state: str, number: str, license_type: str, expires_on: date, today: date) -> LicenseDetails:
    """The license as stored (state upper-cased, the type as listed), or InvalidInput naming each bad field."""
    state, number = state.strip().upper(), number.strip()
    known = {kind.upper(): kind for kind in LICENSE_TYPES[role]}
    canonical_type = known.get(license_type.strip().upper())
    _refuse_problems(
        {
            "state": _state_problem(state),
            "number": "is required" if not number else "contains control characters" if has_control_characters(number) else None,
            "license_type": None if canonical_type else f"must be one of {', '.join(LICENSE_TYPES[role])} for a {role.value}",
            "expires_on": _expiry_problem(expires_on, today),
        },
        "Some license details need another look.",
    )
    return LicenseDetails(state=state, number=number, license_type=canonical_type or "", expires_on=expires_on)


def checked_dea(*, state: str, number: str, schedules: list[str], expires_on: date, today: date) -> DeaDetails:
    """The registration as stored, or InvalidInput naming each bad field. Lacking Schedule III is allowed
    (see `dea_warnings`)."""
    state, number = state.strip().upper(), number.strip().upper()
    asked = {item.strip().upper() for item in schedules}
    unknown = sorted(asked - set(PRACTITIONER_SCHEDULES))
    if dea_number_is_valid(number):
        number_problem = None
    else:
        number_problem = "must be 2 letters and 7 digits" if not DEA_NUMBER.match(number) else "fails the DEA check digit"
    _refuse_problems(
        {
            "state": _state_problem(state),
            "number": number_problem,
            "schedules": (
                f"must be of {', '.join(PRACTITIONER_SCHEDULES)} (not {', '.join(unknown)})"
                if unknown
                else "must name at least one schedule"
                if not asked
                else None
            ),
            "expires_on": _expiry_problem(expires_on, today),
        },
        "Some DEA registration details need another look.",
    )
    stored = ",".join(item for item in PRACTITIONER_SCHEDULES if item in asked)
    return DeaDetails(state=state, number=number, schedules=stored, expires_on=expires_on)


@dataclass(frozen=True)
class SpecialRegistrationDetails:
    state: str
    number: str
    expires_on: date


def checked_special_registration(*, state: str, number: str, expires_on: date, today: date) -> SpecialRegistrationDetails:
    """A telemedicine special registration as stored, or InvalidInput naming each bad field. The DEA has not
    fixed the number's form yet (the rule is proposed), so any plain text is kept as written."""
    state, number = state.strip().upper(), number.strip().upper()
    _refuse_problems(
        {
            "state": _state_problem(state),
            "number": "is required" if not number else "contains control characters" if has_control_characters(number) else None,
            "expires_on": _expiry_problem(expires_on, today),
        },
        "Some special registration details need another look.",
    )
    return SpecialRegistrationDetails(state=state, number=number, expires_on=expires_on)


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def checked_profile(*, npi: str | None, timezone: str) -> tuple[str | None, str]:
    """(npi or None, timezone), or InvalidInput naming each bad field."""
    npi, timezone = (npi or "").strip() or None, timezone.strip()
    if npi is None or npi_is_valid(npi):
        npi_problem = None
    else:
        npi_problem = "fails the NPI check digit" if len(npi) == 10 and npi.isascii() and npi.isdigit() else "must be 10 digits"
    _refuse_problems(
        {"npi": npi_problem, "timezone": None if timezone in _zones() else "is not an IANA time zone (e.g. America/Chicago)"},
        "Some profile details need another look.",
    )
    return npi, timezone
