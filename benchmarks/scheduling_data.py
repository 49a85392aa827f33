"""The scheduling benchmark's database: created afresh on every run (its appointments sit in the real
next 14 days, because the server's clock is real), migrated with the app's own migrations, then filled
with bulk COPYs of rows generated here.

The data, for one state (default California):
- `prescribers` prescribers licensed there with a Schedule III DEA registration (and, like real
  telehealth prescribers, licensed and registered in 0-4 other states too), each working Monday to Friday
  09:00-17:00 in their own zone, the zones a mix of the US ones (ZONES);
- `other_prescribers` prescribers licensed only in other states, with the same hours (they must not
  appear in the state's slots, and make the license tables more than the one state);
- patients living in the state (zone America/Los_Angeles for California), every one with a submitted
  intake and an `eligible` screening decision: a background population that holds the existing
  appointments, the patients who search, and the patients who race for slots;
- `appointments` booked consults spread at random over the prescribers' working hours in the next
  `days` days (15-minute aligned, 45 minutes plus the clinic's default 10-minute buffer after, the
  defaults of service.type_settings: no appointment_type_settings rows), never overlapping per clinician
  (busy range) or per patient (the exclusion constraints would refuse them).

Every account shares one Argon2 hash, computed once (hashing is slow by design).
"""

from __future__ import annotations

import random
import secrets
import time
import uuid
from bisect import bisect_left, insort
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from benchmarks.waitlist_data import database_url, migrate, plain_dsn, recreate_database
from telehealth.accounts.security import hash_password
from telehealth.lib.us_states import US_STATES

PASSWORD = "benchmark-scheduling-password"
# Where the prescribers live: a mix of the US zones (share of prescribers).
ZONES: dict[str, float] = {
    "America/New_York": 0.30, "America/Chicago": 0.22, "America/Denver": 0.10, "America/Phoenix": 0.05,
    "America/Los_Angeles": 0.28, "America/Anchorage": 0.03, "Pacific/Honolulu": 0.02,
}  # fmt: skip
PATIENT_ZONE = {"CA": "America/Los_Angeles", "NY": "America/New_York", "TX": "America/Chicago", "FL": "America/New_York"}
OPENS, CLOSES = clock_time(9), clock_time(17)
WORKDAYS = range(5)  # Monday to Friday
DURATION = timedelta(minutes=45)  # DEFAULT_DURATIONS[CONSULT]
BUFFER_AFTER = timedelta(minutes=10)  # type_settings(None, ...)
STEP = timedelta(minutes=15)
SCHEDULES = "II,IIN,III,IIIN,IV,V"
FIRST = ["Ava", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Iris", "Jamal", "Kofi", "Lena", "Mei", "Noah"]
LAST = ["Garcia", "Smith", "Nguyen", "Okafor", "Kowalski", "Patel", "Cohen", "Rossi", "Kim", "Lopez", "Haddad", "Berg"]


@dataclass
class Dataset:
    state: str
    prescribers: list[uuid.UUID]
    zone_of: dict[uuid.UUID, str]
    search_emails: list[str]
    race_emails: list[str]
    facts: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def _user(user_id: uuid.UUID, email: str, name: str, role: str, password_hash: str, now: datetime) -> tuple[Any, ...]:
    # id, email, full_name, role, password_hash, is_active, email_verified_at, failed_login_count, created_at
    return (user_id, email, name, role, password_hash, True, now, 0, now)


USER_COLUMNS = ["id", "email", "full_name", "role", "password_hash", "is_active", "email_verified_at", "failed_login_count", "created_at"]


def working_starts(zone: str, *, earliest: datetime, latest: datetime) -> list[datetime]:
    """Every 15-minute aligned start (UTC) of a 45-minute consult inside Monday-Friday 09:00-17:00 local."""
    tz = ZoneInfo(zone)
    starts: list[datetime] = []
    day = earliest.astimezone(tz).date()
    while day <= latest.astimezone(tz).date():
        if day.weekday() in WORKDAYS:
            local = datetime.combine(day, OPENS, tzinfo=tz)
            closes = datetime.combine(day, CLOSES, tzinfo=tz)
            while local + DURATION <= closes:
                start = local.astimezone(UTC)
                if earliest <= start < latest:
                    starts.append(start)
                local += STEP
        day += timedelta(days=1)
    return starts


def _clear(taken: list[datetime], start: datetime, span: timedelta) -> bool:
    """No start in the sorted list `taken` lies within `span` of `start` either way (equal-length ranges)."""
    i = bisect_left(taken, start - span + timedelta(microseconds=1))
    return i == len(taken) or taken[i] >= start + span


def plan_appointments(
    rng: random.Random, *, prescribers: list[uuid.UUID], zone_of: dict[uuid.UUID, str], patients: list[uuid.UUID],
    count: int, earliest: datetime, latest: datetime,
) -> list[tuple[uuid.UUID, uuid.UUID, datetime]]:  # fmt: skip
    """(clinician, patient, start) for `count` booked consults: busy ranges [start, start + 55 min) never
    overlap per clinician, appointments [start, start + 45 min) never overlap per patient."""
    candidates = {cid: working_starts(zone_of[cid], earliest=earliest, latest=latest) for cid in prescribers}
    clinician_taken: dict[uuid.UUID, list[datetime]] = {cid: [] for cid in prescribers}
    patient_taken: dict[uuid.UUID, list[datetime]] = {pid: [] for pid in patients}
    planned: list[tuple[uuid.UUID, uuid.UUID, datetime]] = []
    attempts = 0
    while len(planned) < count:
        attempts += 1
        if attempts > count * 200:
            raise RuntimeError(f"placed only {len(planned)} of {count} appointments; too few hours for that many")
        cid = rng.choice(prescribers)
        start = rng.choice(candidates[cid])
        if not _clear(clinician_taken[cid], start, DURATION + BUFFER_AFTER):
            continue
        for _ in range(20):
            pid = rng.choice(patients)
            if _clear(patient_taken[pid], start, DURATION):
                break
        else:
            continue
        insort(clinician_taken[cid], start)
        insort(patient_taken[pid], start)
        planned.append((cid, pid, start))
    return planned


async def load(
    admin_url: str, name: str, *, state: str, prescribers: int, other_prescribers: int, appointments: int,
    background_patients: int, search_patients: int, race_patients: int, days: int, seed: int, log: Any,
) -> Dataset:  # fmt: skip
    """Create and migrate the database, then fill it (one transaction of COPYs), ANALYZE it and describe it."""
    rng = random.Random(seed)
    timings: dict[str, float] = {}
    url = database_url(admin_url, name)
    step = time.perf_counter()
    await recreate_database(admin_url, name)
    await migrate(url)
    timings["create and migrate"] = time.perf_counter() - step

    step = time.perf_counter()
    password_hash = hash_password(PASSWORD)  # once for every account
    timings["one password hash"] = time.perf_counter() - step

    step = time.perf_counter()
    now = datetime.now(UTC)
    expires = date(now.year + 2, 6, 30)
    other_states = [code for code in US_STATES if code != state]
    patient_zone = PATIENT_ZONE.get(state, "America/New_York")
    zone_names, zone_weights = list(ZONES), list(ZONES.values())

    users: list[tuple[Any, ...]] = []
    profiles: list[tuple[Any, ...]] = []
    licenses: list[tuple[Any, ...]] = []
    deas: list[tuple[Any, ...]] = []
    hours: list[tuple[Any, ...]] = []
    zone_of: dict[uuid.UUID, str] = {}
    serving: list[uuid.UUID] = []
    for number in range(prescribers + other_prescribers):
        cid = uuid.uuid4()
        in_state = number < prescribers
        zone = rng.choices(zone_names, zone_weights)[0]
        zone_of[cid] = zone
        full_name = f"{FIRST[number % len(FIRST)]} {LAST[(number // len(FIRST)) % len(LAST)]} {number:03d}"
        users.append(_user(cid, f"bench-rx-{number:04d}@example.com", full_name, "prescriber", password_hash, now))
        profiles.append((cid, None, zone, now))
        states = ([state] if in_state else []) + rng.sample(other_states, rng.randint(0 if in_state else 1, 4))
        for index, code in enumerate(states):
            licenses.append((uuid.uuid4(), cid, code, f"{code}-MD-{number:04d}", "MD", expires))
            deas.append((uuid.uuid4(), cid, code, f"B{number:04d}{index:03d}"[:9], SCHEDULES, expires))
        for weekday in WORKDAYS:
            hours.append((uuid.uuid4(), cid, weekday, OPENS, CLOSES))
        if in_state:
            serving.append(cid)

    patients: list[tuple[Any, ...]] = []
    intakes: list[tuple[Any, ...]] = []
    decisions: list[tuple[Any, ...]] = []

    def add_patient(email: str, full_name: str) -> uuid.UUID:
        user_id, patient_id, intake_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        users.append(_user(user_id, email, full_name, "patient", password_hash, now))
        patients.append((patient_id, user_id, patient_zone, state, now))
        intakes.append((intake_id, patient_id, "submitted", now - timedelta(days=3), now - timedelta(days=2), "[]"))
        decisions.append((uuid.uuid4(), intake_id, patient_id, "eligible", False, "[]", now - timedelta(days=2)))
        return patient_id

    background = [add_patient(f"bench-patient-{i:05d}@example.com", f"Patient {i:05d}") for i in range(background_patients)]
    search_emails = [f"bench-search-{i:02d}@example.com" for i in range(search_patients)]
    race_emails = [f"bench-race-{i:02d}@example.com" for i in range(race_patients)]
    for i, email in enumerate(search_emails):
        add_patient(email, f"Searcher {i:02d}")
    for i, email in enumerate(race_emails):
        add_patient(email, f"Racer {i:02d}")

    planned = plan_appointments(
        rng, prescribers=serving, zone_of=zone_of, patients=background, count=appointments,
        earliest=now + timedelta(hours=1), latest=now + timedelta(days=days),
    )  # fmt: skip
    booked = [
        (uuid.uuid4(), "consult", cid, pid, "booked", start, start + DURATION, start, start + DURATION + BUFFER_AFTER,
         None, secrets.token_urlsafe(24), 0, now - timedelta(days=rng.randint(1, 20)), None)
        for cid, pid, start in planned
    ]  # fmt: skip
    timings["generate rows"] = time.perf_counter() - step

    step = time.perf_counter()
    connection = await asyncpg.connect(plain_dsn(url))
    try:
        async with connection.transaction():
            await connection.copy_records_to_table("user_account", records=users, columns=USER_COLUMNS)
            await connection.copy_records_to_table("clinician_profile", records=profiles, columns=["user_id", "npi", "timezone", "created_at"])
            await connection.copy_records_to_table(
                "state_license", records=licenses, columns=["id", "clinician_id", "state", "number", "license_type", "expires_on"]
            )
            await connection.copy_records_to_table(
                "dea_registration", records=deas, columns=["id", "clinician_id", "state", "number", "schedules", "expires_on"]
            )
            await connection.copy_records_to_table(
                "weekly_hours", records=hours, columns=["id", "clinician_id", "weekday", "starts_at_local", "ends_at_local"]
            )
            await connection.copy_records_to_table(
                "patient", records=patients, columns=["id", "user_id", "timezone", "state_of_residence", "created_at"]
            )
            await connection.copy_records_to_table(
                "intake", records=intakes, columns=["id", "patient_id", "status", "started_at", "submitted_at", "risk_reasons"]
            )
            await connection.copy_records_to_table(
                "screening_decision", records=decisions,
                columns=["id", "intake_id", "patient_id", "outcome", "crisis", "reasons", "screened_at"],
            )  # fmt: skip
            # Through the exclusion constraints like any insert: an overlap planned by mistake fails here.
            await connection.copy_records_to_table(
                "appointment", records=booked,
                columns=["id", "appointment_type", "clinician_id", "patient_id", "status", "starts_at", "ends_at", "busy_from",
                         "busy_until", "hold_expires_at", "room_token", "ics_sequence", "created_at", "cancelled_at"],
            )  # fmt: skip
        timings["copy"] = time.perf_counter() - step
        step = time.perf_counter()
        await connection.execute("VACUUM (ANALYZE)")
        timings["VACUUM (ANALYZE)"] = time.perf_counter() - step
        await connection.execute(f"COMMENT ON DATABASE \"{name}\" IS 'scheduling benchmark, loaded {now.isoformat()}'")
        facts = await dataset_facts(connection, state=state)
    finally:
        await connection.close()
    per_clinician: dict[uuid.UUID, int] = {cid: 0 for cid in serving}
    for cid, _, _ in planned:
        per_clinician[cid] += 1
    counts = sorted(per_clinician.values())
    zones_used: dict[str, int] = {}
    for cid in serving:
        zones_used[zone_of[cid]] = zones_used.get(zone_of[cid], 0) + 1
    facts |= {
        "state": state,
        "loaded_at": now.strftime("%Y-%m-%d %H:%M UTC"),
        "window_days": days,
        "prescribers_in_state": len(serving),
        "prescribers_elsewhere": other_prescribers,
        "prescriber_zones": dict(sorted(zones_used.items(), key=lambda kv: -kv[1])),
        "appointments_per_prescriber": {"min": counts[0], "median": median(counts), "max": counts[-1]},
        "background_patients": background_patients,
        "search_patients": search_patients,
        "race_patients": race_patients,
        "patient_zone": patient_zone,
    }
    return Dataset(state, serving, zone_of, search_emails, race_emails, facts, timings)


async def dataset_facts(connection: asyncpg.Connection, *, state: str) -> dict[str, Any]:
    tables = ("user_account", "patient", "state_license", "dea_registration", "weekly_hours", "appointment", "intake", "screening_decision")
    rows = {table: await connection.fetchval(f"SELECT count(*) FROM {table}") for table in tables}
    return {
        "rows": rows,
        "licenses_in_state": await connection.fetchval("SELECT count(*) FROM state_license WHERE state = $1", state),
        "booked_appointments": await connection.fetchval("SELECT count(*) FROM appointment WHERE status = 'booked'"),
        "appointment_heap_and_indexes": await connection.fetchval(
            "SELECT pg_size_pretty(pg_table_size('appointment')) || ' + ' || pg_size_pretty(pg_indexes_size('appointment'))"
        ),
    }
