"""Statuses of sitters and dosing sessions, and the transitions allowed between them.

Sitter:  invited --confirm--> confirmed;  invited | confirmed --decline--> declined
         invited | confirmed --remove--> removed (the patient takes them off)
         confirmed --withdraw--> withdrawn (the sitter steps down from their own page)
Session: scheduled --unlock--> unlocked --report--> reported
         scheduled --hold--> held (a check-in that fails a safety gate: not today)
         scheduled --cancel--> cancelled (the patient cancels, or the plan ends)
"""

from enum import StrEnum

from telehealth.lib.states import TransitionTable


class SitterStatus(StrEnum):
    INVITED = "invited"
    CONFIRMED = "confirmed"
    DECLINED = "declined"
    REMOVED = "removed"
    WITHDRAWN = "withdrawn"


class SessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    UNLOCKED = "unlocked"
    REPORTED = "reported"
    HELD = "held"
    CANCELLED = "cancelled"


class LinkPurpose(StrEnum):
    """What one sitter link may do: exactly one thing, for one sitter (and one session)."""

    AGREEMENT = "agreement"  # read and sign (or decline) the sitter agreement
    PRESENCE = "presence"  # attest being with the patient before this session's dose
    END = "end"  # see the timer, then attest how the session ended
    EXCUSE = "excuse"  # say they cannot come to this session (sent with the invite)


# A session in one of these holds its number in the plan (a partial unique index enforces it).
COUNTED_SESSION = (SessionStatus.SCHEDULED, SessionStatus.UNLOCKED, SessionStatus.REPORTED)
ACTIVE_SITTER = (SitterStatus.INVITED, SitterStatus.CONFIRMED)

SITTER_TRANSITIONS = TransitionTable(
    "sitter",
    {
        (SitterStatus.INVITED, SitterStatus.CONFIRMED): "confirm",
        (SitterStatus.INVITED, SitterStatus.DECLINED): "decline",
        (SitterStatus.CONFIRMED, SitterStatus.DECLINED): "decline",
        (SitterStatus.INVITED, SitterStatus.REMOVED): "remove",
        (SitterStatus.CONFIRMED, SitterStatus.REMOVED): "remove",
        (SitterStatus.CONFIRMED, SitterStatus.WITHDRAWN): "withdraw",
    },
)

SESSION_TRANSITIONS = TransitionTable(
    "dosing_session",
    {
        (SessionStatus.SCHEDULED, SessionStatus.UNLOCKED): "unlock",
        (SessionStatus.UNLOCKED, SessionStatus.REPORTED): "report",
        (SessionStatus.SCHEDULED, SessionStatus.HELD): "hold",
        (SessionStatus.SCHEDULED, SessionStatus.CANCELLED): "cancel",
    },
)
