"""Statuses of troche plans and pharmacy batches, and the transitions allowed between them.

Plan:  draft --sign--> signed --send--> sent_to_pharmacy --activate--> active --complete--> completed
       signed | sent_to_pharmacy | active --pause--> paused --resume--> sent_to_pharmacy | active
       draft | signed | sent_to_pharmacy | active | paused --discontinue--> discontinued
Batch: held --release--> queued --accept--> accepted --fill--> filled --ship--> shipped --deliver--> delivered
       queued | accepted --reject--> rejected (the reason goes back to the prescriber)
       held | queued | accepted | filled --cancel--> cancelled (the plan was discontinued)
"""

from enum import StrEnum

from telehealth.lib.states import TransitionTable


class PlanStatus(StrEnum):
    DRAFT = "draft"
    SIGNED = "signed"
    SENT_TO_PHARMACY = "sent_to_pharmacy"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    DISCONTINUED = "discontinued"


class BatchStatus(StrEnum):
    HELD = "held"
    QUEUED = "queued"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    FILLED = "filled"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class Decision(StrEnum):
    START_PLAN = "start_plan"
    DECLINE = "decline"
    REFER_OUT = "refer_out"


# A plan in one of these counts as the patient's one active plan (a partial unique index enforces it).
LIVE_PLAN = (PlanStatus.SIGNED, PlanStatus.SENT_TO_PHARMACY, PlanStatus.ACTIVE, PlanStatus.PAUSED)
UNSHIPPED = (BatchStatus.HELD, BatchStatus.QUEUED, BatchStatus.ACCEPTED, BatchStatus.FILLED)

PLAN_TRANSITIONS = TransitionTable(
    "troche_plan",
    {
        (PlanStatus.DRAFT, PlanStatus.SIGNED): "sign",
        (PlanStatus.SIGNED, PlanStatus.SENT_TO_PHARMACY): "send",
        (PlanStatus.SENT_TO_PHARMACY, PlanStatus.ACTIVE): "activate",
        (PlanStatus.ACTIVE, PlanStatus.COMPLETED): "complete",
        (PlanStatus.SIGNED, PlanStatus.PAUSED): "pause",
        (PlanStatus.SENT_TO_PHARMACY, PlanStatus.PAUSED): "pause",
        (PlanStatus.ACTIVE, PlanStatus.PAUSED): "pause",
        (PlanStatus.PAUSED, PlanStatus.SENT_TO_PHARMACY): "resume",
        (PlanStatus.PAUSED, PlanStatus.ACTIVE): "resume",
        **{(source, PlanStatus.DISCONTINUED): "discontinue" for source in (PlanStatus.DRAFT, *LIVE_PLAN)},
    },
)

BATCH_TRANSITIONS = TransitionTable(
    "plan_batch",
    {
        (BatchStatus.HELD, BatchStatus.QUEUED): "release",
        (BatchStatus.QUEUED, BatchStatus.ACCEPTED): "accept",
        (BatchStatus.QUEUED, BatchStatus.REJECTED): "reject",
        (BatchStatus.ACCEPTED, BatchStatus.REJECTED): "reject",
        (BatchStatus.ACCEPTED, BatchStatus.FILLED): "fill",
        (BatchStatus.FILLED, BatchStatus.SHIPPED): "ship",
        (BatchStatus.SHIPPED, BatchStatus.DELIVERED): "deliver",
        **{(source, BatchStatus.CANCELLED): "cancel" for source in UNSHIPPED},
    },
)
