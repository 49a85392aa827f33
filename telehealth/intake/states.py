"""Statuses of an intake and of an escalation.

Intake:      in_progress --submit--> submitted
Escalation:  open --record_contact--> contact_recorded
"""

from enum import StrEnum

from telehealth.lib.states import TransitionTable


class IntakeStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"


class EscalationStatus(StrEnum):
    OPEN = "open"
    CONTACT_RECORDED = "contact_recorded"


INTAKE_TRANSITIONS = TransitionTable("intake", {(IntakeStatus.IN_PROGRESS, IntakeStatus.SUBMITTED): "submit"})
ESCALATION_TRANSITIONS = TransitionTable("escalation", {(EscalationStatus.OPEN, EscalationStatus.CONTACT_RECORDED): "record_contact"})
