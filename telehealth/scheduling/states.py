"""Appointment statuses and their transitions.

    held --confirm--> booked --complete--> completed
    held --lapse--> expired            booked --mark_no_show--> no_show
    held | booked --cancel--> cancelled
Rescheduling moves the same appointment (its times change, its status does not) and is audited too.
"""

from enum import StrEnum

from telehealth.lib.states import TransitionTable


class AppointmentType(StrEnum):
    CONSULT = "consult"
    REASSESSMENT = "reassessment"
    INTEGRATION = "integration"


class AppointmentStatus(StrEnum):
    HELD = "held"
    BOOKED = "booked"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    EXPIRED = "expired"


# Statuses that occupy the clinician's (and the patient's) time: the exclusion constraints cover these.
OCCUPYING = (AppointmentStatus.HELD, AppointmentStatus.BOOKED)

APPOINTMENT_TRANSITIONS = TransitionTable(
    "appointment",
    {
        (AppointmentStatus.HELD, AppointmentStatus.BOOKED): "confirm",
        (AppointmentStatus.HELD, AppointmentStatus.EXPIRED): "lapse",
        (AppointmentStatus.HELD, AppointmentStatus.CANCELLED): "cancel",
        (AppointmentStatus.BOOKED, AppointmentStatus.CANCELLED): "cancel",
        (AppointmentStatus.BOOKED, AppointmentStatus.COMPLETED): "complete",
        (AppointmentStatus.BOOKED, AppointmentStatus.NO_SHOW): "mark_no_show",
    },
)
