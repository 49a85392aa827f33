"""The plan's arithmetic and its signed text: units per shipment computed from the doses and the strength,
the caps of DOMAIN.md "Plans" at their edges, and a canonical content whose SHA-256 is stable and changes
with any field."""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields, replace

import pytest

from telehealth.lib.errors import RuleRefused
from telehealth.prescribing.rules import PRODUCTS, BatchPlan, PlanContent, batches_for, check_plan, default_shipments
from telehealth.settings import ClinicalThresholds

THRESHOLDS = ClinicalThresholds()
STRENGTHS = (50, 100, 150, 200)
CONTENT = PlanContent(
    patient_id="7f6b0c1e-0000-4000-8000-000000000001",
    encounter_id="7f6b0c1e-0000-4000-8000-000000000002",
    prescriber_id="7f6b0c1e-0000-4000-8000-000000000003",
    pharmacy_id="7f6b0c1e-0000-4000-8000-000000000004",
    product=PRODUCTS[0],
    strength_mg=50,
    doses_mg=(100, 150, 200, 200, 200, 200),
    min_hours_between=48,
    directions="Dissolve under the tongue with your sitter present.",
    shipment_sessions=(3, 3),
)


def test_units_per_shipment_are_the_doses_over_the_strength():
    assert batches_for(CONTENT) == [BatchPlan(1, 1, 3, 9), BatchPlan(2, 4, 6, 12)]  # 2+3+4, then 4+4+4 troches of 50 mg


def test_custom_splits_and_other_strengths():
    assert batches_for(replace(CONTENT, shipment_sessions=(2, 2, 2))) == [
        BatchPlan(1, 1, 2, 5),
        BatchPlan(2, 3, 4, 8),
        BatchPlan(3, 5, 6, 8),
    ]
    assert batches_for(replace(CONTENT, shipment_sessions=(6,))) == [BatchPlan(1, 1, 6, 21)]
    hundreds = replace(CONTENT, strength_mg=100, doses_mg=(100, 200, 200, 300), shipment_sessions=(1, 3))
    assert batches_for(hundreds) == [BatchPlan(1, 1, 1, 1), BatchPlan(2, 2, 4, 7)]


def test_the_default_split_ships_three_sessions_first():
    assert [default_shipments(n) for n in (1, 3, 4, 6, 12)] == [(1,), (3,), (3, 1), (3, 3), (3, 9)]


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"doses_mg": (100, 401)}, "plan.dose_above_cap", "doses_mg"),
        ({"doses_mg": (100, 0)}, "plan.dose_above_cap", "doses_mg"),
        ({"doses_mg": (100,) * 13, "shipment_sessions": (3, 10)}, "plan.sessions_above_cap", "doses_mg"),
        ({"doses_mg": ()}, "plan.no_sessions", "doses_mg"),
        ({"min_hours_between": 47}, "plan.interval_below_minimum", "min_hours_between"),
        ({"refills": 1}, "plan.refills_not_allowed", "refills"),
        ({"doses_mg": (100, 175, 200, 200, 200, 200)}, "plan.dose_not_whole_units", "doses_mg"),
        ({"strength_mg": 25, "doses_mg": (100, 150, 200, 200, 200, 200)}, "plan.strength_not_on_list", "strength_mg"),
        ({"product": "Ketamine nasal spray"}, "plan.product_unknown", "product"),
        ({"directions": "  "}, "plan.directions_missing", "directions"),
        ({"shipment_sessions": (3, 2)}, "plan.shipments_do_not_add_up", "shipment_sessions"),
        ({"shipment_sessions": (3, 4)}, "plan.shipments_do_not_add_up", "shipment_sessions"),
        ({"shipment_sessions": (6, 0)}, "plan.shipments_do_not_add_up", "shipment_sessions"),
    ],
)
def test_each_cap_refuses_with_its_code_and_field(changes, code, field):
    with pytest.raises(RuleRefused) as refused:
        check_plan(replace(CONTENT, **changes), thresholds=THRESHOLDS, strengths=STRENGTHS)
    assert (refused.value.code, list(refused.value.fields)) == (code, [field])


def test_the_caps_themselves_pass():
    check_plan(
        replace(CONTENT, doses_mg=(400,) * 12, shipment_sessions=(3, 9), min_hours_between=48), thresholds=THRESHOLDS, strengths=STRENGTHS
    )
    check_plan(replace(CONTENT, strength_mg=200, doses_mg=(200, 400), shipment_sessions=(1, 1)), thresholds=THRESHOLDS, strengths=STRENGTHS)


def test_the_canonical_content_is_sorted_compact_json_and_its_hash_is_stable():
    canonical = CONTENT.canonical()
    assert json.loads(canonical)["doses_mg"] == [100, 150, 200, 200, 200, 200]
    assert list(json.loads(canonical)) == sorted(json.loads(canonical)) and ", " not in canonical and ": " not in canonical
    assert CONTENT.sha256() == hashlib.sha256(canonical.encode()).hexdigest()
    rebuilt = PlanContent(**{f.name: getattr(CONTENT, f.name) for f in reversed(fields(PlanContent))})
    assert rebuilt.sha256() == CONTENT.sha256()  # the same plan, however built, hashes the same


def test_the_hash_changes_with_every_field():
    changed = {
        "patient_id": "7f6b0c1e-0000-4000-8000-000000000009",
        "encounter_id": "7f6b0c1e-0000-4000-8000-000000000008",
        "prescriber_id": "7f6b0c1e-0000-4000-8000-000000000007",
        "pharmacy_id": "7f6b0c1e-0000-4000-8000-000000000006",
        "product": PRODUCTS[1],
        "strength_mg": 100,
        "doses_mg": (100, 150, 200, 200, 200, 250),
        "min_hours_between": 72,
        "directions": "Dissolve under the tongue with your sitter present!",
        "shipment_sessions": (2, 4),
        "refills": 1,
    }
    assert set(changed) == {f.name for f in fields(PlanContent)}  # a new field must be added here (and so be covered)
    hashes = {name: replace(CONTENT, **{name: value}).sha256() for name, value in changed.items()}
    assert CONTENT.sha256() not in hashes.values() and len(set(hashes.values())) == len(hashes)
    assert replace(CONTENT, doses_mg=(150, 100, 200, 200, 200, 200)).sha256() != CONTENT.sha256()  # the titration order matters
