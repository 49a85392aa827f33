"""The plan's caps and arithmetic, pure: what a plan may say, how many units each shipment holds (computed
from the doses and the strength, never typed), and the canonical content its signature covers."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from telehealth.lib.errors import RuleRefused
from telehealth.settings import ClinicalThresholds

PRODUCTS = ("Ketamine HCl sublingual troche", "Ketamine HCl rapid-dissolve tablet")


@dataclass(frozen=True)
class PlanContent:
    patient_id: str
    encounter_id: str
    prescriber_id: str
    pharmacy_id: str
    product: str
    strength_mg: int
    doses_mg: tuple[int, ...]
    min_hours_between: int
    directions: str
    shipment_sessions: tuple[int, ...]
    refills: int = 0

    @property
    def sessions(self) -> int:
        return len(self.doses_mg)

    def canonical(self) -> str:
        """The signed text: sorted keys, no whitespace, so the same plan always hashes the same."""
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        fields["doses_mg"], fields["shipment_sessions"] = list(self.doses_mg), list(self.shipment_sessions)
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))

    def sha256(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()


@dataclass(frozen=True)
class BatchPlan:
    sequence: int
    first_session: int
    last_session: int
    units: int


def default_shipments(sessions: int) -> tuple[int, ...]:
    """Sessions 1-3 then the rest (4-6 by default): the second batch waits for the first's reports."""
    return (sessions,) if sessions <= 3 else (3, sessions - 3)


def check_plan(content: PlanContent, *, thresholds: ClinicalThresholds, strengths: tuple[int, ...]) -> None:
    """Refuse a plan that breaks a cap; each refusal names its rule and the field."""
    if content.product not in PRODUCTS:
        raise RuleRefused(
            "plan.product_unknown", "Choose a product from the clinic's list.", fields={"product": f"must be one of: {', '.join(PRODUCTS)}"}
        )
    if content.strength_mg not in strengths:
        raise RuleRefused(
            "plan.strength_not_on_list",
            "Choose a strength from the clinic's list.",
            fields={"strength_mg": f"must be one of {', '.join(str(s) for s in strengths)} mg"},
        )
    if content.refills != 0:
        raise RuleRefused(
            "plan.refills_not_allowed", "Plans carry no refills: a renewal is a new plan, signed again.", fields={"refills": "must be 0"}
        )
    if not content.doses_mg:
        raise RuleRefused("plan.no_sessions", "A plan needs at least one session.", fields={"doses_mg": "must list one dose per session"})
    if content.sessions > thresholds.max_sessions_per_plan:
        raise RuleRefused(
            "plan.sessions_above_cap",
            f"A plan may have at most {thresholds.max_sessions_per_plan} sessions.",
            fields={"doses_mg": f"lists {content.sessions} sessions; at most {thresholds.max_sessions_per_plan}"},
        )
    for index, dose in enumerate(content.doses_mg, start=1):
        if dose <= 0 or dose > thresholds.max_dose_mg_per_session:
            raise RuleRefused(
                "plan.dose_above_cap",
                f"A dose may be at most {thresholds.max_dose_mg_per_session} mg per session.",
                fields={"doses_mg": f"session {index} is {dose} mg; it must be between 1 and {thresholds.max_dose_mg_per_session} mg"},
            )
        if dose % content.strength_mg:
            raise RuleRefused(
                "plan.dose_not_whole_units",
                "Each dose must be a whole number of units of the chosen strength.",
                fields={"doses_mg": f"session {index} is {dose} mg, not a multiple of {content.strength_mg} mg"},
            )
    if content.min_hours_between < thresholds.min_hours_between_sessions:
        raise RuleRefused(
            "plan.interval_below_minimum",
            f"Sessions must be at least {thresholds.min_hours_between_sessions} hours apart.",
            fields={"min_hours_between": f"must be at least {thresholds.min_hours_between_sessions}"},
        )
    if not content.directions.strip():
        raise RuleRefused("plan.directions_missing", "Write the directions (sig).", fields={"directions": "is required"})
    if any(n <= 0 for n in content.shipment_sessions) or sum(content.shipment_sessions) != content.sessions:
        raise RuleRefused(
            "plan.shipments_do_not_add_up",
            "The shipments must cover every session exactly once.",
            fields={"shipment_sessions": f"must be positive and add up to {content.sessions}"},
        )


def batches_for(content: PlanContent) -> list[BatchPlan]:
    """Each shipment's sessions and its units: the sum of dose / strength over its sessions."""
    found, first = [], 1
    for sequence, count in enumerate(content.shipment_sessions, start=1):
        last = first + count - 1
        units = sum(dose // content.strength_mg for dose in content.doses_mg[first - 1 : last])
        found.append(BatchPlan(sequence, first, last, units))
        first = last + 1
    return found
