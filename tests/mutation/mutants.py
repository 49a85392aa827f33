"""The mutants: one small change each to a safety rule or boundary of DOMAIN.md, and the tests that must
catch it.

A mutant is: an id; the file; an anchor (exact source text that must occur exactly once in that file); its
replacement; the rule it breaks, in one line; and the pytest targets (paths or node ids, the narrowest set
that should fail). To add one, copy a line, make the anchor unique (take a longer snippet if needed), run
`python -m tests.mutation --list` to check the anchor and `--only ID` to see it killed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    anchor: str
    replacement: str
    rule: str
    targets: tuple[str, ...]


def m(id: str, file: str, anchor: str, replacement: str, rule: str, *targets: str) -> Mutant:
    return Mutant(id, file, anchor, replacement, rule, targets)


# The test files aimed at (node ids below are FILE::test_name).
ENVELOPE = "tests/unit/system/test_safety_envelope.py"
GATES = "tests/unit/dosing/test_gates.py"
UNLOCK = "tests/integration/dosing/test_unlock_gates.py"
RACES = "tests/integration/dosing/test_safety_races.py"
REPORTS = "tests/integration/dosing/test_reports_and_safety.py"
INVENTORY = "tests/integration/dosing/test_inventory.py"
SITTER_LINKS = "tests/integration/dosing/test_sitter_links.py"
CRISIS_SCHEDULING = "tests/integration/dosing/test_crisis_blocks_scheduling.py"
DOSING_RULES = "tests/integration/dosing/test_interval_scheduling_and_release.py"
SIGNING = "tests/integration/prescribing/test_signing_checks.py"
SIGNING_RECHECKS = "tests/integration/prescribing/test_signing_rechecks.py"
VISIT_ORDER = "tests/integration/prescribing/test_visit_order.py"
PLAN_CAPS = "tests/integration/prescribing/test_plan_caps.py"
PLAN_DB = "tests/integration/prescribing/test_plan_envelope_in_the_database.py"
PHARMACY = "tests/integration/prescribing/test_pharmacy_batches.py"
NO_SHIPPING = "tests/integration/prescribing/test_no_shipping_while_paused.py"
BASIS = "tests/integration/prescribing/test_prescribing_basis.py"
BASIS_DAY = "tests/unit/prescribing/test_basis_day.py"
RULES = "tests/unit/prescribing/test_rules.py"
SCREENING = "tests/unit/intake/test_screening.py"
INTAKE_CRISIS = "tests/integration/intake/test_screening_and_crisis.py"
CONTACT_RECORDING = "tests/integration/intake/test_crisis_contact_recording.py"
BOOKING = "tests/integration/scheduling/test_booking.py"
BOOKING_GATES = "tests/integration/booking/test_gates.py"

SETTINGS_PY = "telehealth/settings.py"
GATES_PY = "telehealth/dosing/gates.py"
BEFORE_DOSE_PY = "telehealth/dosing/before_dose.py"
SESSIONS_PY = "telehealth/dosing/sessions.py"
LOCKS_PY = "telehealth/accounts/locks.py"
PLANS_PY = "telehealth/prescribing/plans.py"
STATUS_SWAP_PY = "telehealth/db/status_swap.py"
PLAN_CHANGES_PY = "telehealth/dosing/plan_changes.py"
CLINICIANS_PY = "telehealth/clinicians/service.py"
ENCOUNTERS_PY = "telehealth/prescribing/encounters.py"
RULES_PY = "telehealth/prescribing/rules.py"
ENVELOPE_MIGRATION = "migrations/versions/20261206_0021_plan_safety_envelope.py"
DOSING_MIGRATION = "migrations/versions/20261204_0013_dosing.py"
SAFETY_PY = "telehealth/dosing/safety.py"
PHARMACY_PY = "telehealth/prescribing/pharmacy.py"
INVENTORY_PY = "telehealth/dosing/inventory.py"
SCREENING_PY = "telehealth/intake/screening.py"
INTAKE_PY = "telehealth/intake/service.py"
BOOKING_PY = "telehealth/booking/service.py"
ESCALATIONS_PY = "telehealth/intake/escalations.py"
INTAKE_API_PY = "telehealth/intake/api.py"
BASIS_PY = "telehealth/prescribing/basis.py"

OUTSIDE_ENVELOPE = f"{ENVELOPE}::test_a_setting_outside_the_envelope_is_refused_naming_it"
BP_ORDERED = f"{ENVELOPE}::test_blood_pressure_thresholds_must_stay_ordered"
EACH_GATE = f"{GATES}::test_each_bad_fact_alone_fails_exactly_its_gate"
PRESSURE_EDGES = f"{GATES}::test_pressure_level_at_its_boundaries"
UNLOCK_RACING_PAUSE = f"{RACES}::test_an_unlock_racing_a_pause_loses"
ENTRY = "tests/integration/dosing/test_lock_order_entry_points.py::test_each_entry_point_holds_the_patient_first"

MUTANTS: tuple[Mutant, ...] = (
    # --- The safety envelope of the settings (settings.py ClinicalThresholds.check_envelope) -------------
    m(
        "envelope.max_dose_401",
        SETTINGS_PY,
        "self.max_dose_mg_per_session, 1, ENVELOPE_MAX_DOSE_MG)",
        "self.max_dose_mg_per_session, 1, ENVELOPE_MAX_DOSE_MG + 1)",
        "MAX_DOSE_MG_PER_SESSION may not be set above 400 mg",
        OUTSIDE_ENVELOPE,
    ),
    m(
        "envelope.max_sessions_13",
        SETTINGS_PY,
        "self.max_sessions_per_plan, 1, ENVELOPE_MAX_SESSIONS)",
        "self.max_sessions_per_plan, 1, ENVELOPE_MAX_SESSIONS + 1)",
        "MAX_SESSIONS_PER_PLAN may not be set above 12",
        OUTSIDE_ENVELOPE,
    ),
    m(
        "envelope.min_interval_47",
        SETTINGS_PY,
        "self.min_hours_between_sessions, ENVELOPE_MIN_HOURS_BETWEEN, 24 * 365)",
        "self.min_hours_between_sessions, ENVELOPE_MIN_HOURS_BETWEEN - 1, 24 * 365)",
        "MIN_HOURS_BETWEEN_SESSIONS may not be set below 48 h",
        OUTSIDE_ENVELOPE,
    ),
    m(
        "envelope.checkin_61",
        SETTINGS_PY,
        "self.checkin_valid_minutes, 1, ENVELOPE_CHECKIN_VALID_MINUTES)",
        "self.checkin_valid_minutes, 1, ENVELOPE_CHECKIN_VALID_MINUTES + 1)",
        "CHECKIN_VALID_MINUTES may not be set above 60",
        OUTSIDE_ENVELOPE,
    ),
    m(
        "envelope.pdmp_25",
        SETTINGS_PY,
        "self.pdmp_check_valid_hours, 1, ENVELOPE_PDMP_VALID_HOURS)",
        "self.pdmp_check_valid_hours, 1, ENVELOPE_PDMP_VALID_HOURS + 1)",
        "PDMP_CHECK_VALID_HOURS may not be set above 24",
        OUTSIDE_ENVELOPE,
    ),
    m(
        "envelope.no_lower_bounds",
        SETTINGS_PY,
        "if not low <= value <= high:",
        "if not value <= high:",
        "every capped setting has a lower bound (the interval at least 48 h, counts at least 1)",
        OUTSIDE_ENVELOPE,
    ),
    m(
        "envelope.bp_systolic_plus_1",
        SETTINGS_PY,
        "60 <= systolic <= top_systolic and",
        "60 <= systolic <= top_systolic + 1 and",
        "a BP threshold's systolic may not exceed its envelope (141/90 refused)",
        OUTSIDE_ENVELOPE,
    ),
    m(
        "envelope.bp_diastolic_plus_1",
        SETTINGS_PY,
        "40 <= diastolic <= top_diastolic)",
        "40 <= diastolic <= top_diastolic + 1)",
        "a BP threshold's diastolic may not exceed its envelope (140/91 refused)",
        OUTSIDE_ENVELOPE,
    ),
    m(
        "envelope.bp_both_numbers_out",
        SETTINGS_PY,
        "top_systolic and 40 <= diastolic",
        "top_systolic or 40 <= diastolic",
        "a BP threshold with either number outside the envelope is refused",
        OUTSIDE_ENVELOPE,
    ),
    m(
        "envelope.bp_order_systolic_equal",
        SETTINGS_PY,
        "lower[0] < upper[0] and",
        "lower[0] <= upper[0] and",
        "BP thresholds strictly ordered in systolic (equal is not below)",
        BP_ORDERED,
    ),
    m(
        "envelope.bp_order_diastolic_equal",
        SETTINGS_PY,
        "lower[1] < upper[1]",
        "lower[1] <= upper[1]",
        "BP thresholds strictly ordered in diastolic (equal is not below)",
        BP_ORDERED,
    ),
    m(
        "envelope.bp_order_first_pair_only",
        SETTINGS_PY,
        "itertools.pairwise(pressures)",
        "zip(pressures[:1], pressures[1:2])",
        "ineligible-at-intake < urgent is checked too, not only needs-review < ineligible",
        BP_ORDERED,
    ),
    m(
        "envelope.production_only",
        SETTINGS_PY,
        "        self.thresholds.check_envelope()  # development and production alike",
        '        if self.environment == "production":\n            self.thresholds.check_envelope()',
        "the envelope stops the service in development as in production",
        OUTSIDE_ENVELOPE,
    ),
    # --- The gates before a dose (dosing/gates.py) --------------------------------------------------------
    m(
        "gate.bp_urgent_180_strict",
        GATES_PY,
        "if systolic >= urgent_systolic or",
        "if systolic > urgent_systolic or",
        "a systolic of 180 is the urgent path (at or above, not above)",
        PRESSURE_EDGES,
    ),
    m(
        "gate.bp_urgent_needs_both",
        GATES_PY,
        "systolic >= urgent_systolic or diastolic >= urgent_diastolic",
        "systolic >= urgent_systolic and diastolic >= urgent_diastolic",
        "either number at or above 180/120 alone is urgent",
        PRESSURE_EDGES,
    ),
    m(
        "gate.bp_hold_140_strict",
        GATES_PY,
        "if systolic >= hold_systolic or",
        "if systolic > hold_systolic or",
        "a systolic of 140 holds the dose (at or above, not above)",
        PRESSURE_EDGES,
    ),
    m(
        "gate.bp_hold_90_strict",
        GATES_PY,
        "diastolic >= hold_diastolic:",
        "diastolic > hold_diastolic:",
        "a diastolic of 90 holds the dose (at or above, not above)",
        PRESSURE_EDGES,
    ),
    m(
        "gate.bp_hold_needs_both",
        GATES_PY,
        "systolic >= hold_systolic or diastolic >= hold_diastolic",
        "systolic >= hold_systolic and diastolic >= hold_diastolic",
        "either number at or above 140/90 alone holds the dose",
        PRESSURE_EDGES,
    ),
    m(
        "gate.item9_3_not_crisis",
        GATES_PY,
        "if check_in.phq9_item9 >= PHQ9_ITEM9_CRISIS:",
        "if check_in.phq9_item9 > PHQ9_ITEM9_CRISIS:",
        "check-in PHQ-9 item 9 = 3 takes the crisis path",
        EACH_GATE,
        f"{UNLOCK}::test_a_crisis_answer_opens_the_escalation_and_holds_the_session",
    ),
    m(
        "gate.item9_2_is_crisis",
        GATES_PY,
        "PHQ9_ITEM9_CRISIS = 3",
        "PHQ9_ITEM9_CRISIS = 2",
        "check-in PHQ-9 item 9 = 2 asks for care-team contact, not the crisis path (no pause)",
        EACH_GATE,
        f"{UNLOCK}::test_some_days_of_such_thoughts_hold_the_dose_and_ask_the_care_team_to_call_without_pausing",
    ),
    m(
        "gate.item9_1_ignored",
        GATES_PY,
        "elif check_in.phq9_item9 > 0:",
        "elif check_in.phq9_item9 > 1:",
        "check-in PHQ-9 item 9 = 1 holds the dose and asks the care team to call",
        EACH_GATE,
    ),
    m(
        "gate.paused_plan_unlocks",
        GATES_PY,
        '    if facts.plan_status == "paused":\n'
        '        gates.append(Gate("gate.plan_paused", "Your plan is paused until your prescriber reviews it."))\n'
        '    elif facts.plan_status == "discontinued":\n'
        '        gates.append(Gate("gate.plan_discontinued", "Your plan was stopped: no more sessions can be taken."))\n'
        '    elif facts.plan_status != "active":\n'
        '        gates.append(Gate("gate.plan_not_active", "Your plan is not active."))\n',
        '    if facts.plan_status == "discontinued":\n'
        '        gates.append(Gate("gate.plan_discontinued", "Your plan was stopped: no more sessions can be taken."))\n',
        "a dose unlocks only from an active plan (not paused, not signed-but-undelivered)",
        EACH_GATE,
        f"{UNLOCK}::test_a_paused_or_discontinued_plan_unlocks_nothing",
    ),
    m(
        "gate.batch_not_checked",
        GATES_PY,
        "    if not facts.batch_delivered:",
        "    if False:",
        "the dose's batch must be delivered",
        EACH_GATE,
    ),
    m(
        "gate.interval_minus_1_min",
        GATES_PY,
        "facts.now - facts.last_dose_at < interval:",
        "facts.now - facts.last_dose_at < interval - timedelta(minutes=1):",
        "at least the plan's interval (48 h) since the last dose",
        EACH_GATE,
    ),
    m(
        "gate.check_in_61_min_valid",
        GATES_PY,
        "elif facts.now - facts.check_in.checked_in_at > window:",
        "elif facts.now - facts.check_in.checked_in_at > window + timedelta(minutes=1):",
        "a check-in is valid for 60 minutes, not 61",
        EACH_GATE,
    ),
    m(
        "gate.check_in_answers_ignored",
        GATES_PY,
        "        gates.extend(check_in_gates(facts.check_in, thresholds))",
        "        pass",
        "the check-in's answers (BP, PHQ-9 item 9, fasting, alcohol) gate the unlock",
        EACH_GATE,
        f"{UNLOCK}::test_blood_pressure_140_90_holds_the_dose",
    ),
    m(
        "gate.crisis_open_ignored",
        GATES_PY,
        "if facts.crisis_open and not said_already:",
        "if facts.crisis_open and said_already:",
        "no dose while a crisis escalation is open",
        EACH_GATE,
    ),
    m(
        "gate.contact_pending_ignored",
        GATES_PY,
        "elif facts.contact_requested and not said_already:",
        "elif facts.contact_requested and said_already:",
        "no dose while a care-team contact request is open",
        EACH_GATE,
    ),
    m(
        "gate.sitter_confirmation_ignored",
        GATES_PY,
        "    if not facts.sitter_confirmed:",
        "    if False:",
        "the session's sitter must be a confirmed sitter",
        EACH_GATE,
    ),
    m(
        "gate.sitter_verification_ignored",
        GATES_PY,
        "    if not facts.sitter_verified:",
        "    if False:",
        "a coordinator verifies each new sitter before their first session",
        EACH_GATE,
    ),
    m(
        "gate.sitter_presence_ignored",
        GATES_PY,
        "    if not facts.sitter_present:",
        "    if False:",
        "the sitter's presence attestation is required",
        EACH_GATE,
        f"{UNLOCK}::test_without_the_sitters_presence_the_dose_stays_locked",
    ),
    m(
        "gate.alcohol_ignored",
        GATES_PY,
        "    if not check_in.no_alcohol_or_sedatives:",
        "    if False:",
        "no dose on a day with alcohol or sedatives",
        EACH_GATE,
    ),
    # --- The facts the gates are given, and the check-in acted on (dosing/before_dose.py) ----------------
    m(
        "unlock.crisis_unplugged",
        BEFORE_DOSE_PY,
        "crisis_open=await has_open_crisis(session, patient_id=row.patient_id),",
        "crisis_open=False,",
        "unlock reads the open crisis escalations",
        f"{RACES}::test_an_unlock_racing_a_new_crisis_escalation_loses",
    ),
    m(
        "unlock.contact_request_unplugged",
        BEFORE_DOSE_PY,
        "contact_requested=await has_open_contact_request(session, patient_id=row.patient_id),",
        "contact_requested=False,",
        "unlock reads the open care-team contact requests",
        f"{UNLOCK}::test_some_days_of_such_thoughts_hold_the_dose_and_ask_the_care_team_to_call_without_pausing",
    ),
    m(
        "unlock.presence_of_any_sitter",
        BEFORE_DOSE_PY,
        "presence is not None and sitter is not None and presence.sitter_id == sitter.id",
        "presence is not None and sitter is not None",
        "the presence must be attested by this session's sitter",
        f"{SITTER_LINKS}::test_presence_given_by_the_sessions_former_sitter_does_not_open_the_dose",
    ),
    m(
        "check_in.window_two_hours",
        BEFORE_DOSE_PY,
        "not row.scheduled_at - timedelta(minutes=thresholds.checkin_valid_minutes)\n        <= now",
        "not row.scheduled_at - timedelta(minutes=2 * thresholds.checkin_valid_minutes)\n        <= now",
        "a check-in is recorded only in the 60 minutes before the session",
        f"{DOSING_RULES}::test_a_check_in_is_recorded_only_in_the_hour_before_the_session",
    ),
    m(
        "check_in.crisis_no_hold",
        BEFORE_DOSE_PY,
        "    if urgent or crisis:",
        "    if urgent:",
        "a crisis answer at check-in holds the session and pauses the plan",
        f"{UNLOCK}::test_a_crisis_answer_opens_the_escalation_and_holds_the_session",
    ),
    m(
        "check_in.urgent_bp_no_hold",
        BEFORE_DOSE_PY,
        "    if urgent or crisis:",
        "    if crisis:",
        "BP at or above 180/120 at check-in holds the session and pauses the plan (urgent path)",
        f"{UNLOCK}::test_blood_pressure_180_120_takes_the_urgent_path",
    ),
    # --- The interval, scheduling and the unique indexes (dosing/sessions.py) ----------------------------
    m(
        "interval.unreported_not_counted",
        SESSIONS_PY,
        "DosingSession.plan_id == plan_id,\n            col(DosingSession.status).in_([SessionStatus.UNLOCKED, SessionStatus.REPORTED]),",
        "DosingSession.plan_id == plan_id,\n            col(DosingSession.status).in_([SessionStatus.REPORTED]),",
        "the interval counts a dose unlocked but not yet reported",
        f"{DOSING_RULES}::test_the_interval_counts_a_dose_unlocked_but_not_yet_reported",
    ),
    m(
        "interval.no_report_means_no_dose",
        SESSIONS_PY,
        "func.coalesce(DosingReport.troches_used, 1) > 0",
        "func.coalesce(DosingReport.troches_used, 0) > 0",
        "an unlocked session with no report yet counts as a dose taken",
        f"{DOSING_RULES}::test_the_interval_counts_a_dose_unlocked_but_not_yet_reported",
    ),
    m(
        "schedule.crisis_unplugged",
        SESSIONS_PY,
        "    if await has_open_crisis(session, patient_id=patient.id):\n        raise RuleRefused(\n            "
        '"dosing.crisis_contact_pending",',
        '    if False:\n        raise RuleRefused(\n            "dosing.crisis_contact_pending",',
        "an open crisis blocks scheduling a dosing session",
        CRISIS_SCHEDULING,
    ),
    m(
        "schedule.interval_minus_1_h",
        SESSIONS_PY,
        "starts_at < last + timedelta(hours=plan.min_hours_between):",
        "starts_at < last + timedelta(hours=plan.min_hours_between - 1):",
        "a session is scheduled no sooner than the interval after the last dose",
        f"{UNLOCK}::test_the_minimum_interval_at_scheduling_and_at_unlock",
    ),
    m(
        "schedule.no_patient_lock",
        SESSIONS_PY,
        "    await lock_patient(session, patient.id)  # a pause or a crisis committed meanwhile is seen below, not missed\n",
        "",
        "scheduling takes the patient lock: scheduling racing a pause is refused",
        f"{RACES}::test_scheduling_racing_a_pause_is_refused",
    ),
    m(
        "schedule.number_index_unmapped",
        SESSIONS_PY,
        'if "uq_dosing_session" not in str(error.orig):',
        'if "uq_dosing_session_one_scheduled" not in str(error.orig):',
        "a second scheduling of the next session answers 409 dosing.already_scheduled, not 500",
        f"{DOSING_RULES}::test_two_schedulings_sent_at_once_schedule_one_session_and_the_other_is_told_why",
    ),
    m(
        "database.session_number_not_unique",
        DOSING_MIGRATION,
        '"uq_dosing_session_number",\n        "dosing_session",\n        ["plan_id", "number"],\n        unique=True,',
        '"uq_dosing_session_number",\n        "dosing_session",\n        ["plan_id", "number"],\n        unique=False,',
        "the database takes each dose of a plan once (unique plan and number among live sessions)",
        f"{DOSING_RULES}::test_the_database_refuses_what_each_dosing_session_index_forbids",
    ),
    m(
        "database.two_scheduled_sessions",
        DOSING_MIGRATION,
        '"uq_dosing_session_one_scheduled", "dosing_session", ["plan_id"], unique=True,',
        '"uq_dosing_session_one_scheduled", "dosing_session", ["plan_id"], unique=False,',
        "the database holds one scheduled session per plan",
        f"{DOSING_RULES}::test_the_database_refuses_what_each_dosing_session_index_forbids",
    ),
    # --- One lock order per patient (accounts/locks.py, own_session, locked_session, own_plan) ------------
    m(
        "lock.patient_not_locked",
        LOCKS_PY,
        "    await session.execute(select(Patient.id).where(Patient.id == patient_id).with_for_update(key_share=True))",
        "    return None",
        "every safety decision on a patient starts by locking the patient's row",
        UNLOCK_RACING_PAUSE,
        ENTRY,
    ),
    m(
        "lock.patient_shared",
        LOCKS_PY,
        ".with_for_update(key_share=True))",
        ".with_for_update(read=True, key_share=True))",
        "the patient lock is exclusive among safety decisions (FOR NO KEY UPDATE, not FOR KEY SHARE)",
        UNLOCK_RACING_PAUSE,
        ENTRY,
    ),
    m(
        "lock.own_session_skips_patient",
        SESSIONS_PY,
        "    if lock:\n        await lock_patient(session, patient.id)\n    found = ",
        "    found = ",
        "the patient's own session actions (unlock, check-in, report) lock the patient first",
        UNLOCK_RACING_PAUSE,
        f"{ENTRY}[own_session]",
    ),
    m(
        "lock.locked_session_skips_patient",
        SESSIONS_PY,
        "    await lock_patient(session, found.patient_id)\n    return await session.get(",
        "    return await session.get(",
        "sitter-link actions lock the patient before the session (the lock order)",
        f"{RACES}::test_a_sitters_step_takes_its_turn_behind_a_pause_in_flight",
        f"{ENTRY}[locked_session]",
    ),
    m(
        "lock.own_plan_skips_patient",
        PLANS_PY,
        "        await lock_patient(session, plan.patient_id)\n        plan = await session.get(",
        "        plan = await session.get(",
        "pause/resume/discontinue lock the patient before the plan",
        UNLOCK_RACING_PAUSE,
        f"{ENTRY}[own_plan]",
    ),
    m(
        "lock.new_escalation_skips_patient",
        ESCALATIONS_PY,
        "    await lock_patient(session, patient_id)  # an unlock in flight either finished first or sees this one\n",
        "",
        "a new crisis escalation locks the patient: an unlock racing it loses",
        f"{RACES}::test_an_unlock_racing_a_new_crisis_escalation_loses",
    ),
    # --- Signing: credentials held, the blocker's checks, caps again, CAS, one live plan ------------------
    m(
        "credentials.inactive_prescriber_signs",
        CLINICIANS_PY,
        "UserAccount.role == Role.PRESCRIBER.value, col(UserAccount.is_active).is_(True))\n        .with_for_update(read=True)",
        "UserAccount.role == Role.PRESCRIBER.value)\n        .with_for_update(read=True)",
        "a deactivated prescriber cannot sign (an account deactivated while the signature is in flight)",
        f"{RACES}::test_signing_racing_the_prescribers_deactivation_is_refused",
    ),
    m(
        "credentials.license_expiry_ignored",
        CLINICIANS_PY,
        "StateLicense.state == state, StateLicense.expires_on >= on)",
        "StateLicense.state == state)",
        "the license must be unexpired on the signing day",
        f"{SIGNING}::test_license_and_dea_are_checked_again_on_the_signing_day",
    ),
    m(
        "credentials.license_any_state",
        CLINICIANS_PY,
        "StateLicense.clinician_id == prescriber_id, StateLicense.state == state,",
        "StateLicense.clinician_id == prescriber_id,",
        "the license must be for the state the patient is in, at signing",
        f"{SIGNING_RECHECKS}::test_at_signing_the_license_must_be_for_the_state_the_patient_is_in",
    ),
    m(
        "credentials.dea_expiry_ignored",
        CLINICIANS_PY,
        "DeaRegistration.state == state,\n            DeaRegistration.expires_on >= on,",
        "DeaRegistration.state == state,",
        "the DEA registration must be unexpired on the signing day",
        f"{SIGNING}::test_license_and_dea_are_checked_again_on_the_signing_day",
    ),
    m(
        "credentials.dea_any_schedule",
        CLINICIANS_PY,
        "DeaRegistration.expires_on >= on,\n            holds_schedule_iii(col(DeaRegistration.schedules)),\n",
        "DeaRegistration.expires_on >= on,\n",
        "the DEA registration must cover Schedule III",
        f"{SIGNING}::test_license_and_dea_are_checked_again_on_the_signing_day",
    ),
    m(
        "credentials.dea_not_required",
        CLINICIANS_PY,
        "return None not in (holder, license, dea)",
        "return None not in (holder, license)",
        "signing needs the DEA registration as well as the license",
        f"{SIGNING}::test_license_and_dea_are_checked_again_on_the_signing_day",
    ),
    m(
        "credentials.license_not_held",
        CLINICIANS_PY,
        "StateLicense.expires_on >= on)\n        .with_for_update(read=True)",
        "StateLicense.expires_on >= on)",
        "signing holds the license FOR SHARE: a removal racing the signature is seen",
        f"{RACES}::test_signing_racing_the_removal_of_the_license_it_rests_on_is_refused",
    ),
    m(
        "blocker.visit_not_required",
        ENCOUNTERS_PY,
        "    if await visit_of(session, encounter.appointment_id) is None:",
        "    if False:",
        "prescribing follows a started video visit",
        f"{VISIT_ORDER}::test_decision_and_signing_refuse_an_encounter_without_a_visit",
    ),
    m(
        "blocker.identity_not_required",
        ENCOUNTERS_PY,
        "    if not encounter.identity_checked:",
        "    if False:",
        "identity must be checked before prescribing",
        f"{SIGNING}::test_identity_location_and_the_pdmp_state_must_be_right_before_a_plan",
    ),
    m(
        "blocker.location_license_ignored",
        ENCOUNTERS_PY,
        "    if not allowed:",
        "    if False:",
        "the prescriber must be licensed and DEA-registered where the patient is",
        f"{SIGNING}::test_identity_location_and_the_pdmp_state_must_be_right_before_a_plan",
    ),
    m(
        "blocker.pdmp_25_hours",
        ENCOUNTERS_PY,
        "now - encounter.pdmp_checked_at > timedelta(hours=hours)",
        "now - encounter.pdmp_checked_at > timedelta(hours=hours + 1)",
        "the PDMP check is within 24 h before signing",
        f"{SIGNING}::test_the_pdmp_check_must_be_within_24_hours_of_signing",
    ),
    m(
        "blocker.pdmp_without_state_passes",
        ENCOUNTERS_PY,
        "    if encounter.pdmp_state != encounter.location_state:",
        "    if encounter.pdmp_state is not None and encounter.pdmp_state != encounter.location_state:",
        "a PDMP check with no state recorded is no check",
        f"{VISIT_ORDER}::test_a_pdmp_check_without_its_state_is_no_check",
    ),
    m(
        "blocker.pdmp_other_state_passes",
        ENCOUNTERS_PY,
        "    if encounter.pdmp_state != encounter.location_state:",
        "    if encounter.pdmp_state is None:",
        "the PDMP checked must be the patient's location state",
        f"{SIGNING}::test_identity_location_and_the_pdmp_state_must_be_right_before_a_plan",
    ),
    m(
        "blocker.flags_not_required",
        ENCOUNTERS_PY,
        "    if missing:\n        return RuleRefused(",
        "    if False:\n        return RuleRefused(",
        "every needs_review flag carries an acknowledgement note",
        f"{SIGNING}::test_every_needs_review_flag_needs_a_note_before_deciding_and_again_at_signing",
    ),
    m(
        "record.pdmp_in_the_future",
        ENCOUNTERS_PY,
        "elif values.pdmp_checked_at > now + timedelta(minutes=5):",
        "elif values.pdmp_checked_at > now + timedelta(days=5):",
        "a PDMP check time in the future is refused",
        f"{SIGNING_RECHECKS}::test_a_pdmp_check_time_in_the_future_is_refused",
    ),
    m(
        "record.pdmp_before_visit",
        ENCOUNTERS_PY,
        "elif values.pdmp_checked_at < visit.started_at:",
        "elif False:",
        "the PDMP check is not dated before the visit started",
        f"{VISIT_ORDER}::test_the_pdmp_check_is_not_dated_before_the_visit",
    ),
    m(
        "record.facts_not_frozen",
        ENCOUNTERS_PY,
        '    if encounter.decision is not None:\n        raise Conflict("encounter.decided", "This encounter is decided; open '
        'the next one from a new appointment.")',
        '    if False:\n        raise Conflict("encounter.decided", "This encounter is decided; open the next one from a new '
        'appointment.")',
        "an encounter's recorded facts are frozen once it is decided",
        f"{SIGNING_RECHECKS}::test_an_encounters_facts_are_frozen_once_it_is_decided",
    ),
    m(
        "sign.blocker_not_rechecked",
        PLANS_PY,
        "    if (blocker := await encounters.prescribing_blocker(session, encounter, now=now, settings=settings, "
        "hold_credentials=True)) is not None:\n        raise blocker\n",
        "",
        "every prescribing check is made again at signing",
        f"{SIGNING}::test_the_pdmp_check_must_be_within_24_hours_of_signing",
    ),
    m(
        "sign.caps_not_rechecked",
        PLANS_PY,
        "    content = content_of(plan)\n    check_plan(content, thresholds=settings.thresholds, strengths=settings.troche_strengths)\n",
        "    content = content_of(plan)\n",
        "the plan's caps are checked again at signing",
        f"{SIGNING_RECHECKS}::test_the_caps_are_checked_again_at_signing",
    ),
    m(
        "sign.no_compare_and_swap",
        STATUS_SWAP_PY,
        "WHERE id = $1 AND status = $2 RETURNING id",
        "WHERE id = $1 AND $2::text IS NOT NULL RETURNING id",
        "a status changes by compare-and-swap: a signing that read the draft before another committed is refused",
        f"{RACES}::test_a_signing_that_passed_every_check_still_loses_the_swap_to_one_committed_meanwhile",
    ),
    m(
        "sign.one_live_plan_unmapped",
        PLANS_PY,
        'if "uq_troche_plan_one_live_per_patient" in str(error.orig):',
        'if "uq_troche_plan_one_live_per_patient_" in str(error.orig):',
        "a second live plan at signing answers plan.one_active_plan, not 500",
        f"{PLAN_CAPS}::test_one_live_plan_per_patient_when_writing_when_signing_and_in_the_database",
    ),
    m(
        "write.one_live_plan_unchecked",
        PLANS_PY,
        "    if await live_plan(session, patient_id=encounter.patient_id) is not None:",
        "    if False:",
        "no new plan is written while the patient has a live one",
        f"{PLAN_CAPS}::test_one_live_plan_per_patient_when_writing_when_signing_and_in_the_database",
    ),
    # --- The plan's caps (prescribing/rules.py) and the database behind them -----------------------------
    m(
        "caps.dose_450",
        RULES_PY,
        "dose <= 0 or dose > thresholds.max_dose_mg_per_session:",
        "dose <= 0 or dose > thresholds.max_dose_mg_per_session + 50:",
        "a dose is at most 400 mg",
        f"{RULES}::test_each_cap_refuses_with_its_code_and_field",
    ),
    m(
        "caps.sessions_13",
        RULES_PY,
        "content.sessions > thresholds.max_sessions_per_plan:",
        "content.sessions > thresholds.max_sessions_per_plan + 1:",
        "a plan has at most 12 sessions",
        f"{RULES}::test_each_cap_refuses_with_its_code_and_field",
    ),
    m(
        "caps.interval_47",
        RULES_PY,
        "content.min_hours_between < thresholds.min_hours_between_sessions:",
        "content.min_hours_between < thresholds.min_hours_between_sessions - 1:",
        "a plan's interval is at least 48 h",
        f"{RULES}::test_each_cap_refuses_with_its_code_and_field",
    ),
    m(
        "caps.one_refill",
        RULES_PY,
        "if content.refills != 0:",
        "if content.refills > 1:",
        "a plan carries no refills",
        f"{RULES}::test_each_cap_refuses_with_its_code_and_field",
    ),
    m("database.dose_401", ENVELOPE_MIGRATION, "@ > 400 ||", "@ > 401 ||", "the database refuses a dose over 400 mg", PLAN_DB),
    m(
        "database.interval_47",
        ENVELOPE_MIGRATION,
        "min_hours_between >= 48",
        "min_hours_between >= 47",
        "the database refuses an interval under 48 h",
        PLAN_DB,
    ),
    # --- Serious events, resume, shipping and batches -----------------------------------------------------
    m(
        "serious_event.active_plan_not_paused",
        SAFETY_PY,
        "PAUSABLE = (PlanStatus.SIGNED, PlanStatus.SENT_TO_PHARMACY, PlanStatus.ACTIVE)",
        "PAUSABLE = (PlanStatus.SIGNED, PlanStatus.SENT_TO_PHARMACY)",
        "a serious adverse event pauses the (active) plan",
        f"{REPORTS}::test_a_serious_answer_in_the_report_pauses_the_plan",
    ),
    m(
        "resume.unreviewed_event",
        PLAN_CHANGES_PY,
        "    if unreviewed is not None:",
        "    if False:",
        "a plan paused by a serious event resumes only through its review",
        f"{REPORTS}::test_the_prescriber_cannot_resume_without_reviewing_and_a_review_resumes",
    ),
    m(
        "ship.while_paused",
        PHARMACY_PY,
        '    if plan.status == PlanStatus.PAUSED:\n        raise RuleRefused("batch.plan_paused"',
        '    if False:\n        raise RuleRefused("batch.plan_paused"',
        "a paused plan's batch does not ship",
        NO_SHIPPING,
    ),
    m(
        "ship.plan_not_held",
        PHARMACY_PY,
        'plan = await session.get(TrochePlan, batch.plan_id, with_for_update={"read": True}, populate_existing=True)',
        "plan = await session.get(TrochePlan, batch.plan_id, populate_existing=True)",
        "a pharmacy step holds the plan FOR SHARE: a pause committed meanwhile stops the shipment",
        f"{RACES}::test_shipping_racing_a_pause_is_refused",
    ),
    m(
        "release.out_of_order",
        INVENTORY_PY,
        "    if previous is not None and previous.status != BatchStatus.DELIVERED:\n        raise RuleRefused(",
        "    if False:\n        raise RuleRefused(",
        "a batch is released only after the one before it was delivered",
        f"{PHARMACY}::test_batches_go_in_order_ship_only_once_paid_and_every_step_is_audited",
    ),
    m(
        "release.unreported_without_reason",
        INVENTORY_PY,
        'if reported < batch.first_session - 1 and not (override_reason or "").strip():',
        'if reported < batch.first_session - 2 and not (override_reason or "").strip():',
        "releasing before every earlier session is reported needs an override reason",
        f"{PHARMACY}::test_batches_go_in_order_ship_only_once_paid_and_every_step_is_audited",
        f"{DOSING_RULES}::test_a_release_with_one_earlier_session_unreported_still_needs_a_reason",
    ),
    m(
        "inventory.open_flag_ignored",
        INVENTORY_PY,
        " or await open_flags(session, plan_id=plan.id):",
        ":",
        "no batch released by rule while an inventory flag is open",
        f"{INVENTORY}::test_an_open_flag_holds_the_next_batch_until_the_prescriber_resolves_it",
    ),
    m(
        "inventory.release_one_unreported",
        INVENTORY_PY,
        "through_session=batch.first_session - 1) < batch.first_session - 1:",
        "through_session=batch.first_session - 1) < batch.first_session - 2:",
        "the rule releases a batch only when every earlier session is reported",
        f"{INVENTORY}::test_the_next_batch_is_released_once_its_earlier_sessions_are_reported",
    ),
    m(
        "inventory.release_while_paused",
        INVENTORY_PY,
        "plan.status not in (PlanStatus.SENT_TO_PHARMACY, PlanStatus.ACTIVE) or",
        "plan.status not in (PlanStatus.SENT_TO_PHARMACY, PlanStatus.ACTIVE, PlanStatus.PAUSED) or",
        "no batch released by rule while the plan is paused",
        f"{INVENTORY}::test_a_batch_held_back_by_a_pause_is_released_when_the_review_resumes_the_plan",
        f"{INVENTORY}::test_resolving_a_flag_while_the_plan_is_paused_releases_nothing",
    ),
    m(
        "inventory.overuse_by_one",
        INVENTORY_PY,
        "if troches_used > units_prescribed:",
        "if troches_used > units_prescribed + 1:",
        "using more troches than prescribed is flagged",
        f"{INVENTORY}::test_using_more_than_prescribed_is_flagged",
    ),
    m(
        "inventory.below_zero_by_one",
        INVENTORY_PY,
        "if counts.on_hand < 0:",
        "if counts.on_hand < -1:",
        "a count below zero is flagged",
        f"{INVENTORY}::test_a_count_below_zero_is_flagged",
    ),
    m(
        "inventory.flag_not_alerted",
        INVENTORY_PY,
        '    await alert_care_team(session, plan, template="care_team_update", key=f"inventory_flag:{flag.id}", now=now)\n',
        "",
        "an inventory flag (a loss) alerts the care team",
        INVENTORY,
        "tests/integration/dosing/test_pinned_rules.py::test_reporting_lost_troches_emails_the_care_team_once_without_details",
    ),
    m(
        "inventory.early_request_not_flagged",
        INVENTORY_PY,
        "    if reported < batch.first_session - 1:\n        await raise_flag(",
        "    if False:\n        await raise_flag(",
        "asking for the next batch early is flagged",
        f"{INVENTORY}::test_asking_for_the_next_batch_early_is_flagged_and_releases_nothing",
    ),
    # --- Intake screening and crisis (intake/screening.py, intake/service.py, escalations, booking) --------
    m(
        "screening.age_17",
        SCREENING_PY,
        "    if age < 18:",
        "    if age < 17:",
        "under 18 is ineligible",
        f"{SCREENING}::test_the_day_before_the_18th_birthday_is_ineligible",
    ),
    m(
        "screening.age_over_66",
        SCREENING_PY,
        "if age > thresholds.review_age_over:",
        "if age > thresholds.review_age_over + 1:",
        "over 65 needs review",
        f"{SCREENING}::test_age_65_is_eligible_and_66_needs_review",
    ),
    m(
        "screening.bp_systolic_strict",
        SCREENING_PY,
        "return systolic >= limit[0] or diastolic >= limit[1]",
        "return systolic > limit[0] or diastolic >= limit[1]",
        "intake BP counts at or above its limit (160, 140 systolic)",
        f"{SCREENING}::test_blood_pressure_edges",
    ),
    m(
        "screening.bp_needs_both",
        SCREENING_PY,
        "return systolic >= limit[0] or diastolic >= limit[1]",
        "return systolic >= limit[0] and diastolic >= limit[1]",
        "either intake BP number alone reaching its limit counts",
        f"{SCREENING}::test_blood_pressure_edges",
    ),
    m(
        "screening.bp_ineligible_at_180",
        SCREENING_PY,
        "if _at_or_above(data.bp_systolic, data.bp_diastolic, thresholds.intake_bp_ineligible):",
        "if _at_or_above(data.bp_systolic, data.bp_diastolic, thresholds.bp_urgent):",
        "intake BP at or above 160/100 is ineligible",
        f"{SCREENING}::test_blood_pressure_edges",
    ),
    m(
        "screening.bp_review_at_160",
        SCREENING_PY,
        "if _at_or_above(data.bp_systolic, data.bp_diastolic, thresholds.bp_needs_review):",
        "if _at_or_above(data.bp_systolic, data.bp_diastolic, thresholds.intake_bp_ineligible):",
        "intake BP at or above 140/90 needs review",
        f"{SCREENING}::test_blood_pressure_edges",
    ),
    m(
        "screening.item9_1_no_review",
        SCREENING_PY,
        "        if item9 > 0:",
        "        if item9 > 1:",
        "any PHQ-9 item 9 answer above 0 needs review",
        f"{SCREENING}::test_phq9_item9_above_zero_needs_review_without_crisis",
    ),
    m(
        "screening.item9_3_no_crisis",
        SCREENING_PY,
        "        if item9 == 3:",
        "        if item9 > 3:",
        "PHQ-9 item 9 = 3 is a crisis",
        f"{SCREENING}::test_phq9_item9_nearly_every_day_is_a_crisis",
    ),
    m(
        "screening.cssrs_only_first_answer",
        SCREENING_PY,
        "cssrs.items() if value == 1]",
        'cssrs.items() if value == 1 and key == "cssrs_1"]',
        "any positive C-SSRS answer needs review",
        f"{SCREENING}::test_any_positive_cssrs_answer_needs_review",
    ),
    m(
        "screening.cssrs_intent_not_crisis",
        SCREENING_PY,
        'for key in ("cssrs_4", "cssrs_5")',
        'for key in ("cssrs_5",)',
        "C-SSRS ideation with intent is a crisis",
        f"{SCREENING}::test_cssrs_intent_or_plan_is_a_crisis",
    ),
    m(
        "screening.cssrs_recent_behavior_not_crisis",
        SCREENING_PY,
        '        if cssrs["cssrs_6_recent"] == 1:',
        "        if False:",
        "C-SSRS suicidal behaviour in the past 3 months is a crisis",
        f"{SCREENING}::test_suicidal_behavior_in_the_past_3_months_is_a_crisis",
    ),
    m(
        "intake.crisis_not_acted_on_save",
        INTAKE_PY,
        "if crisis_reasons := [reason for reason in risk if reason.crisis]:",
        "if crisis_reasons := [reason for reason in risk if reason.crisis and False]:",
        "a crisis answer opens an escalation the moment it is saved",
        f"{INTAKE_CRISIS}::test_a_crisis_answer_is_acted_on_the_moment_it_is_saved",
    ),
    m(
        "booking.crisis_unplugged",
        BOOKING_PY,
        "    if await has_open_crisis(session, patient_id=patient.id):\n        raise RuleRefused(\n            "
        '"booking.crisis_contact_pending",',
        '    if False:\n        raise RuleRefused(\n            "booking.crisis_contact_pending",',
        "an open crisis blocks every booking: the patient's own (API and page) and a therapist's follow-up",
        f"{BOOKING}::test_booking_needs_screening_and_no_open_crisis",
        f"{BOOKING_GATES}::test_a_crisis_waiting_for_contact_blocks_every_way_to_book",
    ),
    m(
        "contact.coordinator_records_service",
        ESCALATIONS_PY,
        "CONTACT_RECORDING_ROLES = frozenset({Role.PRESCRIBER, Role.THERAPIST})",
        "CONTACT_RECORDING_ROLES = frozenset({Role.PRESCRIBER, Role.THERAPIST, Role.COORDINATOR})",
        "only a prescriber or therapist records crisis contact (the service's own rule)",
        CONTACT_RECORDING,
    ),
    m(
        "contact.coordinator_records_api",
        INTAKE_API_PY,
        "guards=[requires_role(Role.PRESCRIBER, Role.THERAPIST)])\n    async def record_contact(",
        "guards=[requires_role(Role.PRESCRIBER, Role.THERAPIST, Role.COORDINATOR)])\n    async def record_contact(",
        "only a prescriber or therapist records crisis contact (the API's guard)",
        f"{INTAKE_CRISIS}::test_a_crisis_answer_is_acted_on_the_moment_it_is_saved",
    ),
    # --- The prescribing basis after the telemedicine flexibilities (prescribing/basis.py) ----------------
    m(
        "basis.one_day_more",
        BASIS_PY,
        "return day <= settings.telemedicine_flexibilities_until",
        "return day.toordinal() <= settings.telemedicine_flexibilities_until.toordinal() + 1",
        "from the day after the flexibilities' date a visit alone is no basis",
        f"{BASIS_DAY}::test_the_last_day_is_covered_and_the_next_is_not",
        f"{BASIS}::test_the_day_after_the_date_signing_without_a_basis_is_refused_naming_the_date_and_what_is_missing",
    ),
    m(
        "basis.day_in_utc",
        BASIS_PY,
        "    day, zone = day_in_state(now, state=location_state, patient_timezone=patient.timezone)",
        '    day, zone = now.date(), "UTC"',
        "the day is the calendar day where the patient is",
        f"{BASIS}::test_the_last_day_ends_at_midnight_where_the_patient_is",
    ),
    m(
        "basis.evaluation_by_anyone",
        BASIS_PY,
        "InPersonEvaluation.patient_id == patient.id,\n            InPersonEvaluation.prescriber_id == prescriber_id,",
        "InPersonEvaluation.patient_id == patient.id,",
        "the in-person evaluation is by the signing prescriber",
        f"{BASIS}::test_an_in_person_evaluation_by_the_signing_prescriber_is_a_basis",
    ),
    m(
        "basis.registration_any_state",
        BASIS_PY,
        "SpecialRegistration.clinician_id == prescriber_id,\n            SpecialRegistration.state == location_state,",
        "SpecialRegistration.clinician_id == prescriber_id,",
        "the special registration is valid in the patient's state",
        f"{BASIS}::test_a_special_registration_valid_in_the_patients_state_that_day_is_a_basis",
    ),
    m(
        "basis.registration_expired",
        BASIS_PY,
        "SpecialRegistration.state == location_state,\n            SpecialRegistration.expires_on >= day,",
        "SpecialRegistration.state == location_state,",
        "the special registration is unexpired that day",
        f"{BASIS}::test_a_special_registration_valid_in_the_patients_state_that_day_is_a_basis",
    ),
    m(
        "basis.registration_not_held",
        BASIS_PY,
        "SpecialRegistration.expires_on >= day,\n        )\n        .with_for_update(read=True)",
        "SpecialRegistration.expires_on >= day,\n        )",
        "signing holds the special registration it relies on FOR SHARE",
        f"{BASIS}::test_signing_holds_the_special_registration_it_relies_on",
    ),
)
