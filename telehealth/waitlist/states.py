"""Statuses of waiting-list entries and invitations, and the transitions allowed between them.

Entry:  unconfirmed --confirm--> waiting --invite--> invited --enrol--> enrolled
                                  waiting <--rejoin-- lapsed <--lapse-- invited   (invitation expired)
        unconfirmed | waiting | invited | lapsed --leave--> left   (personal data erased)
Invitation: sent --accept--> accepted; sent --expire--> expired; sent --revoke--> revoked
"""

from enum import StrEnum

from telehealth.lib.states import TransitionTable


class EntryStatus(StrEnum):
    UNCONFIRMED = "unconfirmed"
    WAITING = "waiting"
    INVITED = "invited"
    ENROLLED = "enrolled"
    LAPSED = "lapsed"
    LEFT = "left"


class InvitationStatus(StrEnum):
    SENT = "sent"
    ACCEPTED = "accepted"
    EXPIRED = "expired"
    REVOKED = "revoked"


ENTRY_TRANSITIONS = TransitionTable(
    "waitlist_entry",
    {
        (EntryStatus.UNCONFIRMED, EntryStatus.WAITING): "confirm",
        (EntryStatus.WAITING, EntryStatus.INVITED): "invite",
        (EntryStatus.INVITED, EntryStatus.ENROLLED): "enrol",
        (EntryStatus.INVITED, EntryStatus.LAPSED): "lapse",
        (EntryStatus.LAPSED, EntryStatus.WAITING): "rejoin",
        (EntryStatus.UNCONFIRMED, EntryStatus.LEFT): "leave",
        (EntryStatus.WAITING, EntryStatus.LEFT): "leave",
        (EntryStatus.INVITED, EntryStatus.LEFT): "leave",
        (EntryStatus.LAPSED, EntryStatus.LEFT): "leave",
    },
)

INVITATION_TRANSITIONS = TransitionTable(
    "waitlist_invitation",
    {
        (InvitationStatus.SENT, InvitationStatus.ACCEPTED): "accept",
        (InvitationStatus.SENT, InvitationStatus.EXPIRED): "expire",
        (InvitationStatus.SENT, InvitationStatus.REVOKED): "revoke",
    },
)
