"""Scheduling benchmark: the 14-day slot search for one state served by 200 prescribers, and a 50-client
booking race on 10 slots.

    python -m benchmarks scheduling [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

1. Data (scheduling_data.py): a fresh database every run (default telehealth_bench_scheduling), migrated
   by the app's migrations and filled with bulk COPYs: 200 prescribers licensed and DEA-registered
   (Schedule III) in California, Monday-Friday 09:00-17:00 in their own zones (a mix of the US ones), 100
   prescribers licensed elsewhere, 5,000 booked consults in the real next 14 days (the server's clock is
   real), and eligible patients (submitted intake, screening decision `eligible`) living in the state.
   Every account shares one Argon2 hash computed once. Then VACUUM (ANALYZE).
2. Query plans: the SQL find_slots sends (captured in-process) and the lapsed-hold UPDATE of
   take_slot (a whole booking, booking.service's gates and the slot, captured, then rolled back) under EXPLAIN (ANALYZE, BUFFERS), with
   PostgreSQL's custom plan and the generic plan a cached prepared statement may switch to.
3. Where a slot search's time goes, in-process: find_slots timed in its parts (its queries, the Python
   slot engine, the rest), the response the API would build from it, and a cProfile; as the API calls it
   (the first 500 slots).
4. Over HTTP, against `uvicorn app:app` in a subprocess (server.py; LOGIN_ATTEMPTS_PER_IP_PER_15_MIN
   raised, as every client signs in from 127.0.0.1): patients sign in through POST /api/v1/auth/sign-in
   (after GET /sign-in for the csrftoken cookie, sent back as x-csrftoken), then
   GET /api/v1/slots?type=consult&from=<now>&to=<now + 14 days>, one at a time and with 8 in flight.
5. The race: 50 signed-in patients, each its own client and session cookie, all release at once
   POST /api/v1/appointments for one of 10 open slots (5 per slot, 10 prescribers), for several rounds on
   fresh slots. A consult is paid (billing): the winner's 201 holds the slot for 30 minutes and opens a
   Stripe Checkout Session, against the project's fake Stripe API (telehealth/devtools/stripe_stand_in.py) run in a
   subprocess. Afterwards exactly one held or booked appointment per slot must exist, the 201 client's,
   and every other answer must be 409 (anything else is an error and fails the run).
   Then bookings one at a time on free slots, for the uncontended cost.

Progress goes to stderr; the Markdown report (the figures docs/benchmarks.md records) goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import msgspec
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

import telehealth.scheduling.service as scheduling_service
from benchmarks import scheduling_data as data
from benchmarks.cpu import CpuMeter, describe
from benchmarks.machine import machine_facts
from benchmarks.server import Server, environment, fake_stripe, running_server
from benchmarks.stats import Series, percentile
from benchmarks.waitlist import StatementLog, _ms, _plan_lines, csrf_client, log, query_plans, run_phase
from telehealth.accounts.models import Patient, UserAccount
from telehealth.booking.service import may_book
from telehealth.db.engine import make_engine, make_session_factory
from telehealth.lib.actors import Actor
from telehealth.scheduling.roster import ROSTERS
from telehealth.scheduling.schemas import SlotBody
from telehealth.scheduling.service import find_slots, take_slot
from telehealth.scheduling.states import AppointmentType
from telehealth.settings import Settings

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
API_LIMIT = 500  # GET /api/v1/slots answers the first 500 slots unless asked for more
SEARCH_TARGET_P95_MS = 50.0  # slot search over 14 days, p95, on a 2-core machine (the issue)
BOOKING_TARGET_P99_MS = 250.0  # booking requests in the 50-client race, p99 (the issue)
SERVER_EXTRA_ENV = {"LOGIN_ATTEMPTS_PER_IP_PER_15_MIN": "100000"}
OCCUPYING = ("held", "booked")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url", default=DEFAULT_ADMIN_URL, help="admin connection to the PostgreSQL server (default: %(default)s)"
    )
    parser.add_argument(
        "--database-name",
        default="telehealth_bench_scheduling",
        help="the benchmark's own database, dropped and created again on every run (default: %(default)s)",
    )
    parser.add_argument("--state", default="CA", help="the patients' state (default: %(default)s)")
    parser.add_argument(
        "--prescribers", type=int, default=200, help="prescribers licensed and DEA-registered in the state (default: %(default)s)"
    )
    parser.add_argument("--other-prescribers", type=int, default=100, help="prescribers licensed only elsewhere (default: %(default)s)")
    parser.add_argument(
        "--appointments", type=int, default=5000, help="booked consults in the window, over the state's prescribers (default: %(default)s)"
    )
    parser.add_argument("--patients", type=int, default=2000, help="patients holding those appointments (default: %(default)s)")
    parser.add_argument("--days", type=int, default=14, help="the window searched and filled with appointments (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=42, help="random.seed() for the data and the slot choices (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=8, help="slot searches in flight (default: %(default)s)")
    parser.add_argument("--searchers", type=int, default=8, help="patients (own sessions) who search, taking turns (default: %(default)s)")
    parser.add_argument(
        "--searches", type=int, default=64, help="measured slot searches with --concurrency in flight (default: %(default)s)"
    )
    parser.add_argument("--serial-searches", type=int, default=30, help="measured slot searches one at a time (default: %(default)s)")
    parser.add_argument("--search-warmup", type=int, default=8, help="unmeasured searches before each search phase (default: %(default)s)")
    parser.add_argument("--profile-runs", type=int, default=3, help="in-process find_slots runs timed in parts (default: %(default)s)")
    parser.add_argument("--racers", type=int, default=50, help="patients booking at once in each race round (default: %(default)s)")
    parser.add_argument("--race-slots", type=int, default=10, help="open slots they race for (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=5, help="race rounds, each on fresh slots (default: %(default)s)")
    parser.add_argument(
        "--serial-bookings", type=int, default=20, help="uncontended bookings one at a time afterwards (0: skip; default: %(default)s)"
    )
    parser.add_argument("--server-workers", type=int, default=1, help="uvicorn worker processes (default: %(default)s)")
    parser.add_argument("--json", dest="json_path", help="also write every figure to this JSON file")


# ---------------------------------------------------------------------------------------------- helpers


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def signed_in_client(base_url: str, email: str, *, connections: int = 1) -> httpx.AsyncClient:
    """A client of its own (cookie jar, connections) for one patient: GET /sign-in for the csrftoken cookie,
    then POST /api/v1/auth/sign-in with x-csrftoken; the session cookie stays in the jar."""
    client = await csrf_client(base_url, connections)
    client.timeout = httpx.Timeout(120)
    response = await client.post("/api/v1/auth/sign-in", json={"email": email, "password": data.PASSWORD})
    if response.status_code != 200 or "th_session" not in client.cookies:
        await client.aclose()
        raise RuntimeError(f"sign-in of {email} answered {response.status_code}: {response.text[:300]}")
    client.headers["x-csrftoken"] = client.cookies["csrftoken"]  # the token is bound to the session signing in made
    return client


async def sign_in_all(base_url: str, emails: list[str], *, connections: int = 1, in_flight: int = 4) -> list[httpx.AsyncClient]:
    gate = asyncio.Semaphore(in_flight)

    async def one(email: str) -> httpx.AsyncClient:
        async with gate:
            return await signed_in_client(base_url, email, connections=connections)

    return list(await asyncio.gather(*(one(email) for email in emails)))


async def patient_record(factory: Any, email: str) -> Patient:
    async with factory() as session:
        return (
            await session.execute(select(Patient).join(UserAccount, UserAccount.id == Patient.user_id).where(UserAccount.email == email))
        ).scalar_one()


def plan_shape(plan: str) -> list[str]:
    """A plan's nodes and conditions without costs, timings, buffers and parameter spellings."""
    shape = []
    for line in plan.splitlines():
        stripped = line.strip()
        if stripped.startswith(
            ("Buffers:", "Planning", "Execution", "Heap Fetches", "Rows Removed", "Heap Blocks", "Memory Usage", "Batches")
        ):
            continue
        stripped = re.sub(r"\(cost=.*?\)|\(actual .*?\)|\(never executed\)", "", stripped)
        stripped = re.sub(r"\$\d+|'[^']*'::[\w ]+|'[^']*'", "?", stripped)
        shape.append(stripped.strip())
    return shape


def shorten_lists(text: str) -> str:
    """Long IN lists (200 ids) cut to their ends, for the report (the JSON keeps them whole)."""
    text = re.sub(r"\(\$1::UUID, (?:\$\d+::UUID, )+(\$\d+::UUID)\)", r"($1::UUID, $2::UUID, ..., \1)", text)
    text = re.sub(r"ARRAY\[\$1, (?:\$\d+, )+(\$\d+)\]", r"ARRAY[$1, $2, ..., \1]", text)
    return re.sub(r"'\{([0-9a-f-]{36}),(?:[0-9a-f-]{36},)+([0-9a-f-]{36})\}'", r"'{\1, ..., \2}'", text)


# ------------------------------------------------------------------------------------- statements, plans


Statements = dict[str, tuple[str, tuple[Any, ...]]]


async def capture_statements(url: str, dataset: data.Dataset, *, settings: Settings) -> tuple[Statements, dict[str, Any]]:
    """The SQL of one 14-day slot search (find_slots, as the API calls it) and of a booking up to its
    lapsed-hold UPDATE (stopped before the INSERT: nothing is written)."""
    engine = make_engine(url, pool_size=1)
    factory = make_session_factory(engine)
    statements: Statements = {}
    try:
        patient = await patient_record(factory, dataset.search_emails[0])
        now = datetime.now(UTC)
        ROSTERS.clear()  # every statement of a search, the roster's too
        async with factory() as session:
            with StatementLog(engine) as captured:
                found = await find_slots(
                    session,
                    patient=patient,
                    appointment_type=AppointmentType.CONSULT,
                    window_start=now,
                    window_end=now + timedelta(days=14),
                    now=now,
                    limit=API_LIMIT,
                )
            await session.rollback()
        # The table each statement reads (its last FROM: the calendar statement has subqueries in its columns).
        counts = Counter(statement.rsplit("FROM", 1)[1].split()[0] for statement, _ in captured.statements if "FROM" in statement)
        statements["clinicians who may see the patient, with hours, overrides and settings (calendars.credentialed_calendars)"] = (
            captured.find("FROM state_license", "FROM dea_registration")
        )
        # The busy spans of the day that has the slots: the last day the search walked.
        statements["busy spans of the days read, every clinician, aggregated per clinician (calendars.load_busy_spans)"] = [
            (statement, parameters) for statement, parameters in captured.statements if re.search(r"FROM appointment\s+WHERE", statement)
        ][-1]
        # A whole booking (the gates, then the slot, as booking.service calls them) of a slot two days ahead, rolled back:
        # nothing is kept.
        async with factory() as session:
            later = await find_slots(
                session,
                patient=patient,
                appointment_type=AppointmentType.CONSULT,
                window_start=now + timedelta(days=2),
                window_end=now + timedelta(days=5),
                now=now,
                limit=1,
            )
            await session.rollback()
        slot = later[0]
        async with factory() as session:
            with StatementLog(engine) as booking:
                await may_book(session, patient=patient, appointment_type=AppointmentType.CONSULT)
                await take_slot(
                    session,
                    patient=patient,
                    clinician_id=slot.clinician_id,
                    appointment_type=AppointmentType.CONSULT,
                    starts_at=slot.starts_at,
                    hold=False,
                    actor=Actor.system(),
                    now=now,
                    settings=settings,
                )
            await session.rollback()
        statements["the booking's check: one clinician's credentials and calendar (calendars.credentialed_calendars)"] = booking.find(
            "FROM state_license", "FROM dea_registration"
        )
        statements["expire lapsed holds in the way (take_slot)"] = booking.find("UPDATE appointment")
        booking_tables = [
            "SELECT FROM " + statement.rsplit("FROM", 1)[1].split()[0]
            if statement.startswith("SELECT") and "FROM" in statement
            else " ".join(statement.split()[:3]).split("(")[0]
            for statement, _ in booking.statements
        ]
    finally:
        await engine.dispose()
    facts = {
        "statements per search": len(captured.statements),
        "statements by table": dict(counts.most_common()),
        "statements of a booking (may_book and take_slot, winner)": len(booking.statements),
        "a booking's statements in order": booking_tables,
        "slots found": len(found),
    }
    return statements, facts


# ------------------------------------------------------------------------------ in-process breakdown


class SearchBreakdown:
    """Times one find_slots in parts: its queries (time inside AsyncSession.execute/get: SQLAlchemy, the
    driver, the round trip and PostgreSQL), of which statement execution (between SQLAlchemy's before and
    after cursor execute: the driver, the round trip and PostgreSQL), the slot engine (open_slots and
    open_slots_sorted), and the
    rest. The methods are wrapped in this process only, for the duration."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine.sync_engine
        self.statements = 0
        self.sql_seconds = 0.0
        self.engine_seconds = 0.0
        self.session_seconds = 0.0
        self._started = 0.0

    def _before(self, *args: Any) -> None:
        self._started = time.perf_counter()

    def _after(self, *args: Any) -> None:
        self.statements += 1
        self.sql_seconds += time.perf_counter() - self._started

    def __enter__(self) -> SearchBreakdown:
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        # The slot engine: open_slots (rows) and open_slots_sorted (spans aggregated by the database).
        self._engines = {name: getattr(scheduling_service, name) for name in ("open_slots", "open_slots_sorted")}
        for name, original in self._engines.items():
            setattr(scheduling_service, name, self._timed_engine(original))
        # Every query find_slots makes goes through AsyncSession.execute or AsyncSession.get.
        self._session_methods = {name: getattr(AsyncSession, name) for name in ("execute", "get")}
        for name, method in self._session_methods.items():
            setattr(AsyncSession, name, self._timed_session_call(method))
        return self

    def _timed_engine(self, original: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.engine_seconds += time.perf_counter() - started

        return timed

    def _timed_session_call(self, method: Any) -> Any:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await method(*args, **kwargs)
            finally:
                self.session_seconds += time.perf_counter() - started

        return timed

    def __exit__(self, *exc: object) -> None:
        for name, method in self._session_methods.items():
            setattr(AsyncSession, name, method)
        for name, original in self._engines.items():
            setattr(scheduling_service, name, original)
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)


def response_body(found: list[Any], zone: ZoneInfo) -> bytes:
    """What GET /api/v1/slots makes of find_slots' answer (api.py), encoded as JSON."""
    return msgspec.json.encode(
        [
            SlotBody(
                clinician_id=s.clinician_id,
                clinician_name=s.clinician_name,
                starts_at=s.starts_at,
                starts_at_local=s.starts_at.astimezone(zone).isoformat(),
            )
            for s in found
        ]
    )


async def search_breakdown(url: str, dataset: data.Dataset, *, runs: int) -> dict[str, Any]:
    engine = make_engine(url, pool_size=1)
    factory = make_session_factory(engine)
    rows: list[dict[str, float]] = []
    try:
        patient = await patient_record(factory, dataset.search_emails[0])
        zone = ZoneInfo(patient.timezone)

        async def search() -> list[Any]:
            now = datetime.now(UTC)
            ROSTERS.clear()  # cold: the first search after a calendar change, the roster read included
            async with factory() as session:
                found = await find_slots(
                    session,
                    patient=patient,
                    appointment_type=AppointmentType.CONSULT,
                    window_start=now,
                    window_end=now + timedelta(days=14),
                    now=now,
                    limit=API_LIMIT,
                )
                await session.rollback()
            return found

        await search()  # warm: connection, statement caches
        for _ in range(runs):
            with SearchBreakdown(engine) as parts:
                started, cpu = time.perf_counter(), time.process_time()
                found = await search()
                wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            started = time.perf_counter()
            body = response_body(found, zone)
            build = time.perf_counter() - started
            rows.append(
                {
                    "find_slots wall": wall,
                    "find_slots CPU (this process)": cpu,
                    "statements": parts.statements,
                    "queries: inside AsyncSession.execute/get (SQLAlchemy + asyncpg + round trip + PostgreSQL)": parts.session_seconds,
                    "of which statement execution (asyncpg + round trip + PostgreSQL)": parts.sql_seconds,
                    "slot engine (open_slots, open_slots_sorted)": parts.engine_seconds,
                    "the rest of find_slots (Python around them: calendars, merging the clinicians' starts, Slot objects)": wall
                    - parts.session_seconds
                    - parts.engine_seconds,
                    "response: SlotBody + JSON": build,
                    "response bytes": len(body),
                    "slots": len(found),
                }
            )
        profile = cProfile.Profile()
        profile.enable()
        await search()
        profile.disable()
    finally:
        await engine.dispose()
    stats = pstats.Stats(profile)
    top = []
    for (filename, line, function), (calls, _, tottime, cumtime, _) in sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:12]:  # type: ignore[attr-defined]
        where = filename.replace(str(data.__file__).rsplit("/benchmarks/", 1)[0] + "/", "")
        where = re.sub(r".*/site-packages/", "", where)
        top.append(
            {
                "function": f"{where}:{line}({function})",
                "calls": calls,
                "tottime_ms": round(tottime * 1000, 1),
                "cumtime_ms": round(cumtime * 1000, 1),
            }
        )
    summary = {key: median(row[key] for row in rows) for key in rows[0]}
    return {"runs": runs, "median": summary, "cprofile_top_by_own_time": top}


# ------------------------------------------------------------------------------------------ slot search


async def measure_searches(
    server: Server,
    clients: list[httpx.AsyncClient],
    *,
    name: str,
    requests: int,
    warmup: int,
    concurrency: int,
    state: str,
    prescribers: set[str],
) -> Series:
    """GET /api/v1/slots?type=consult&from=<now>&to=<now + 14 days>, the signed-in searchers taking turns.
    The warm-up answers are parsed and checked in full (slots only from the state's prescribers, none
    within 12 h); measured ones are counted without parsing, to keep the load generator's CPU low."""
    checked: dict[str, Any] = {}

    def sender(offset: int, *, full: bool) -> Callable[[int], Awaitable[tuple[bool, Any]]]:
        async def send(i: int) -> tuple[bool, Any]:
            now = datetime.now(UTC)
            client = clients[(offset + i) % len(clients)]
            response = await client.get("/api/v1/slots", params={"type": "consult", "from": iso(now), "to": iso(now + timedelta(days=14))})
            if response.status_code != 200:
                return False, f"{response.status_code} {response.text[:300]}"
            if full:
                slots = response.json()
                clinicians = {s["clinician_id"] for s in slots}
                first = min(parse_time(s["starts_at"]) for s in slots)
                if not slots or not clinicians <= prescribers or first < now + timedelta(hours=12):
                    return False, f"unexpected slots: {len(slots)} from {len(clinicians)} clinicians, first {first}"
                checked.update(slots=len(slots), clinicians=len(clinicians), first=first.isoformat(), bytes=len(response.content))
            return True, (response.content.count(b'"starts_at":'), len(response.content))

        return send

    await run_phase(f"{name} (warm-up)", requests=warmup, concurrency=concurrency, send=sender(0, full=True))
    series, results = await run_phase(
        name, requests=requests, concurrency=concurrency, send=sender(warmup, full=False), meter=CpuMeter(server.pid)
    )
    series.notes["concurrency"] = concurrency
    if results:
        series.notes["slots per answer (median)"] = int(median(count for count, _ in results))
        series.notes["answer size (median)"] = f"{median(size for _, size in results) / 1e6:.1f} MB"
    if checked:
        series.notes["checked answer"] = (
            f"{checked['slots']:,} slots from {checked['clinicians']} prescribers licensed in {state}, the first at {checked['first']}"
        )
    return series


# --------------------------------------------------------------------------------------------- the race


@dataclass(frozen=True)
class OpenSlot:
    clinician_id: str
    starts_at: datetime


async def fresh_slots(client: httpx.AsyncClient, *, days_ahead: int = 0) -> list[OpenSlot]:
    """Up to 2,000 open slots from `days_ahead` days after tomorrow on (three days, so a weekend still finds a
    working day). Not from now: the soonest 2,000 could all fall within the day choose_slots leaves out (the
    suite's race found none to choose at 02:40 UTC).
    Each race round starts on another day: the API answers the soonest slots first, and 50 racers winning
    slots of the same few hours round after round would soon have no slot clear of their own bookings."""
    start = datetime.now(UTC) + timedelta(days=days_ahead + 1)
    response = await client.get(
        "/api/v1/slots", params={"type": "consult", "from": iso(start), "to": iso(start + timedelta(days=3)), "limit": 2000}
    )
    response.raise_for_status()
    return [OpenSlot(s["clinician_id"], parse_time(s["starts_at"])) for s in response.json()]


def choose_slots(offered: list[OpenSlot], count: int, *, rng: random.Random) -> list[OpenSlot]:
    """`count` open slots of different prescribers, at random, at least a day away (well clear of the
    12-hour notice, so none closes while the round runs)."""
    soonest = datetime.now(UTC) + timedelta(days=1)
    candidates = [slot for slot in offered if slot.starts_at >= soonest]
    rng.shuffle(candidates)
    chosen: list[OpenSlot] = []
    clinicians: set[str] = set()
    for slot in candidates:
        if slot.clinician_id not in clinicians:
            chosen.append(slot)
            clinicians.add(slot.clinician_id)
            if len(chosen) == count:
                return chosen
    raise RuntimeError(f"only {len(chosen)} open slots to race for")


def clear_of(start: datetime, booked: list[datetime]) -> bool:
    """A consult at `start` does not overlap the patient's own booked consults (same length)."""
    return all(abs(start - other) >= data.DURATION for other in booked)


def assign(slots: list[OpenSlot], wins: list[list[datetime]], *, rng: random.Random) -> dict[int, int]:
    """Client k -> the slot it tries: the clients shuffled, the same number per slot, and never a slot that
    overlaps an appointment the client won before (that would be refused as the patient's own overlap)."""
    per_slot = -(-len(wins) // len(slots))
    for _ in range(100):
        order = list(range(len(wins)))
        rng.shuffle(order)
        load = [0] * len(slots)
        plan: dict[int, int] = {}
        for k in order:
            options = [j for j, slot in enumerate(slots) if load[j] < per_slot and clear_of(slot.starts_at, wins[k])]
            if not options:
                break
            j = min(options, key=lambda j: (load[j], rng.random()))
            plan[k] = j
            load[j] += 1
        else:
            return plan
    raise RuntimeError("could not give every client a slot clear of its own appointments")


async def refreshed(client: httpx.AsyncClient) -> httpx.Response:
    """GET /api/v1/appointments, once more if the server closed the idle keep-alive connection just as it was
    reused (uvicorn closes idle ones after 5 s; the racers wait that long while the searches run)."""
    try:
        return await client.get("/api/v1/appointments")
    except httpx.TransportError:
        return await client.get("/api/v1/appointments")


class LockProbe:
    """Samples, every 5 ms, the lock waits and the app's busy connections (pg_stat_activity)."""

    SAMPLE = """
        SELECT (SELECT count(*) FROM pg_locks WHERE NOT granted) AS waiting,
               (SELECT count(*) FROM pg_stat_activity WHERE application_name = 'telehealth' AND state <> 'idle') AS busy,
               (SELECT count(*) FROM pg_stat_activity WHERE application_name = 'telehealth') AS open
    """

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.samples: list[tuple[int, int, int]] = []
        self._stop = asyncio.Event()

    async def _run(self) -> None:
        connection = await asyncpg.connect(self.dsn)
        try:
            while not self._stop.is_set():
                row = await connection.fetchrow(self.SAMPLE)
                self.samples.append((row["waiting"], row["busy"], row["open"]))
                await asyncio.sleep(0.005)
        finally:
            await connection.close()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0.02)

    async def stop(self) -> dict[str, Any]:
        self._stop.set()
        await self._task
        if not self.samples:
            return {}
        return {
            "samples": len(self.samples),
            "with lock waits": f"{sum(1 for w, _, _ in self.samples if w) / len(self.samples):.0%}",
            "max lock waits": max(w for w, _, _ in self.samples),
            "max busy app connections": max(b for _, b, _ in self.samples),
            "max open app connections": max(o for _, _, o in self.samples),
        }


async def appointments_at(dsn: str, slots: list[OpenSlot]) -> list[asyncpg.Record]:
    """Every appointment (any status) at these slots: clinician_id, starts_at, status and the patient's email."""
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetch(
            "SELECT a.clinician_id::text AS clinician_id, a.starts_at, a.status, u.email FROM appointment a"
            " JOIN patient p ON p.id = a.patient_id JOIN user_account u ON u.id = p.user_id"
            " WHERE (a.clinician_id::text, a.starts_at) IN (SELECT * FROM unnest($1::text[], $2::timestamptz[]))",
            [s.clinician_id for s in slots],
            [s.starts_at for s in slots],
        )
    finally:
        await connection.close()


async def race_round(
    server: Server, clients: list[httpx.AsyncClient], emails: list[str], slots: list[OpenSlot], plan: dict[int, int], *, number: int
) -> dict[str, Any]:
    """Every client books its slot of the plan, all released at the same moment; then the database is checked."""
    # Fresh keep-alive connections (uvicorn and httpx close idle ones after 5 s), and live sessions.
    warm = await asyncio.gather(*(refreshed(client) for client in clients))
    if any(response.status_code != 200 for response in warm):
        raise RuntimeError(f"a racer's session is not usable: {[r.status_code for r in warm if r.status_code != 200][:3]}")
    go = asyncio.Event()

    async def attempt(k: int) -> dict[str, Any]:
        slot = slots[plan[k]]
        body = {"type": "consult", "clinician_id": slot.clinician_id, "starts_at": iso(slot.starts_at)}
        await go.wait()
        started = time.perf_counter()
        try:
            response = await clients[k].post("/api/v1/appointments", json=body)
            status, text = response.status_code, response.text
        except httpx.HTTPError as exc:
            status, text = 0, f"{type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - started
        code = None
        try:
            code = json.loads(text).get("code")
        except ValueError:
            pass
        return {"client": k, "racer": emails[k], "slot": slot, "status": status, "code": code, "seconds": elapsed, "text": text[:300]}

    tasks = [asyncio.create_task(attempt(k)) for k in plan]
    await asyncio.sleep(0.05)  # every task is waiting at the gate
    meter = CpuMeter(server.pid)
    probe = LockProbe(server.dsn)
    await probe.start()
    meter.start()
    released = time.perf_counter()
    go.set()
    outcomes = await asyncio.gather(*tasks)
    wall = time.perf_counter() - released
    cpu = meter.stop()
    locks = await probe.stop()

    rows = await appointments_at(server.dsn, slots)
    statuses = Counter(o["status"] for o in outcomes)
    codes = Counter(f"{o['status']} {o['code']}" for o in outcomes if o["status"] != 201)
    winners = {(o["slot"].clinician_id, o["slot"].starts_at): o["racer"] for o in outcomes if o["status"] == 201}
    # A consult is paid: the winner holds the slot while it pays (billing), so held rows count as taken.
    booked = {(r["clinician_id"], r["starts_at"]): r["email"] for r in rows if r["status"] in OCCUPYING}
    problems = []
    if len(rows) != len(slots) or len(booked) != len(slots):
        problems.append(f"{len(rows)} appointments ({len(booked)} held or booked) for {len(slots)} slots")
    if booked != winners:
        problems.append("the 201 answers do not match the held or booked rows")
    if statuses.get(201, 0) != len(slots) or statuses.get(409, 0) != len(clients) - len(slots):
        problems.append(f"answers {dict(statuses)}")
    unexpected = [o for o in outcomes if o["status"] not in (201, 409)]
    if unexpected:
        problems.append(f"e.g. {unexpected[0]['status']}: {unexpected[0]['text']}")
    return {
        "round": number,
        "slots": [(s.clinician_id, s.starts_at.isoformat()) for s in slots],
        "seconds": [o["seconds"] for o in outcomes if o["status"] in (201, 409)],
        "error_answers": [
            f"{o['status']} {o['code']} after {o['seconds'] * 1000:.0f} ms" for o in outcomes if o["status"] not in (201, 409)
        ],
        "won": [(o["client"], o["slot"].starts_at) for o in outcomes if o["status"] == 201],
        "won_seconds": [o["seconds"] for o in outcomes if o["status"] == 201],
        "lost_seconds": [o["seconds"] for o in outcomes if o["status"] == 409],
        "statuses": dict(statuses),
        "refusals": dict(codes),
        "booked_rows": len(booked),
        "wall": wall,
        "cpu": cpu,
        "locks": locks,
        "problems": problems,
    }


async def measure_race(
    server: Server,
    clients: list[httpx.AsyncClient],
    emails: list[str],
    args: argparse.Namespace,
    *,
    rng: random.Random,
    wins: list[list[datetime]],
) -> tuple[list[Series], list[dict[str, Any]]]:
    rounds = []
    for number in range(1, args.rounds + 1):
        slots = choose_slots(await fresh_slots(clients[0], days_ahead=number), args.race_slots, rng=rng)
        result = await race_round(server, clients, emails, slots, assign(slots, wins, rng=rng), number=number)
        for k, start in result["won"]:
            wins[k].append(start)
        log(
            f"  round {number}: {result['statuses']} in {result['wall'] * 1000:.0f} ms; booked rows {result['booked_rows']}"
            + (f"; PROBLEMS: {result['problems']}" if result["problems"] else "")
        )
        rounds.append(result)
    every = Series(f"booking, {len(clients)} clients racing for {args.race_slots} slots ({args.rounds} rounds)")
    won = Series("  of which won (201)")
    lost = Series("  of which lost (409)")
    for result in rounds:
        every.seconds += result["seconds"]
        won.seconds += result["won_seconds"]
        lost.seconds += result["lost_seconds"]
        every.errors += sum(n for status, n in result["statuses"].items() if status not in (201, 409))
    every.wall_seconds = sum(result["wall"] for result in rounds)
    cpu = {key: sum(result["cpu"][key] for result in rounds) for key in rounds[0]["cpu"]}
    every.notes["concurrency"] = len(clients)
    every.notes["cpu"] = describe(cpu, len(every.seconds))
    every.notes["answers"] = dict(sum((Counter(r["statuses"]) for r in rounds), Counter()))
    every.notes["refusals"] = dict(sum((Counter(r["refusals"]) for r in rounds), Counter()))
    if errors := [answer for r in rounds for answer in r["error_answers"]]:
        every.notes["error answers (not in the latencies)"] = ", ".join(errors)
    return [every, won, lost], rounds


async def measure_serial_bookings(
    server: Server, clients: list[httpx.AsyncClient], *, count: int, days_ahead: int, rng: random.Random, wins: list[list[datetime]]
) -> Series:
    """Uncontended bookings one at a time: `count` free slots of different prescribers, each booked by
    another client for whom it overlaps nothing already won."""
    slots = choose_slots(await fresh_slots(clients[0], days_ahead=days_ahead), count, rng=rng)
    who: list[int] = []
    for slot in slots:
        who.append(next(k for k in range(len(clients)) if k not in who and clear_of(slot.starts_at, wins[k])))

    async def send(i: int) -> tuple[bool, Any]:
        body = {"type": "consult", "clinician_id": slots[i].clinician_id, "starts_at": iso(slots[i].starts_at)}
        response = await clients[who[i]].post("/api/v1/appointments", json=body)
        return response.status_code == 201, response.status_code if response.status_code == 201 else response.text

    await asyncio.gather(*(refreshed(clients[k]) for k in who))  # fresh connections
    series, _ = await run_phase("booking, one at a time, uncontended", requests=count, concurrency=1, send=send, meter=CpuMeter(server.pid))
    series.notes["concurrency"] = 1
    return series


# ------------------------------------------------------------------------------------------------ report


def markdown_report(report: dict[str, Any]) -> str:
    lines = [f"## Scheduling benchmark, {report['finished_at']}", "", f"`{report['command']}`", ""]
    lines += ["### Machine", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in report["machine"].items()]
    facts = report["dataset"]
    lines += ["", "### Data", ""]
    lines.append(
        f"State {facts['state']}: {facts['prescribers_in_state']} prescribers licensed with Schedule III DEA "
        f"registrations there (zones: " + ", ".join(f"{zone} {n}" for zone, n in facts["prescriber_zones"].items()) + "), "
        f"{facts['prescribers_elsewhere']} licensed only elsewhere; Monday-Friday 09:00-17:00 local. "
        f"{facts['booked_appointments']:,} booked consults in the {facts['window_days']} days from {facts['loaded_at']} "
        f"(per prescriber min {facts['appointments_per_prescriber']['min']}, median {facts['appointments_per_prescriber']['median']}, "
        f"max {facts['appointments_per_prescriber']['max']}); appointment heap + indexes {facts['appointment_heap_and_indexes']}. "
        f"Rows: " + ", ".join(f"{table} {n:,}" for table, n in facts["rows"].items()) + "."
    )
    lines += [
        "",
        "Load: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in report["load_timings"].items())
        + f". Whole run: {report['total_seconds']:.0f} s.",
    ]
    lines += ["", "### Results (milliseconds)", ""]
    lines.append("| operation | count | errors | mean | p50 | p95 | p99 | max | per second | notes |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    standard = {"operation", "count", "errors", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms", "per_second"}
    for row in report["results"]:
        notes = "; ".join(f"{k}: {v}" for k, v in row.items() if k not in standard)
        lines.append(
            f"| {row['operation']} | {row['count']} | {row['errors']} | {_ms(row['mean_ms'])} | {_ms(row['p50_ms'])} | "
            f"{_ms(row['p95_ms'])} | {_ms(row['p99_ms'])} | {_ms(row['max_ms'])} | {_ms(row['per_second'])} | {notes} |"
        )
    lines += [
        "",
        "### Race rounds",
        "",
        "| round | answers | booked rows | wall ms | p50 | p99 | max | lock waits | app connections busy (max) | problems |",
    ]
    lines.append("|---:|---|---:|---:|---:|---:|---:|---|---:|---|")
    for r in report["rounds"]:
        ms = sorted(s * 1000 for s in r["seconds"])
        lines.append(
            f"| {r['round']} | {r['statuses']} | {r['booked_rows']} | {r['wall'] * 1000:.0f} | {percentile(ms, 50):.1f} | "
            f"{percentile(ms, 99):.1f} | {ms[-1]:.1f} | {r['locks'].get('with lock waits')} of samples, max "
            f"{r['locks'].get('max lock waits')} | "
            f"{r['locks'].get('max busy app connections')} | {'; '.join(r['problems']) or 'none'} |"
        )
    lines += ["", "### Targets", ""]
    for target in report["targets"]:
        verdict = "met" if target["met"] else "NOT met"
        lines.append(f"- {target['what']}: {target['value_ms']:.1f} ms, target under {target['target_ms']:.0f} ms: **{verdict}**")
    lines += ["", "### Where a slot search's time goes (in-process, median of runs)", ""]
    breakdown = report["breakdown"]
    lines += ["| part | value |", "|---|---:|"]
    for key, value in breakdown["median"].items():
        counts = key in {"statements", "response bytes", "slots"}
        lines.append(f"| {key} | {value:,.0f} |" if counts else f"| {key} | {value * 1000:.1f} ms |")
    lines += [
        "",
        "cProfile, top functions by own time (one run):",
        "",
        "| function | calls | own ms | cumulative ms |",
        "|---|---:|---:|---:|",
    ]
    for row in breakdown["cprofile_top_by_own_time"]:
        lines.append(f"| `{row['function']}` | {row['calls']:,} | {row['tottime_ms']} | {row['cumtime_ms']} |")
    lines += ["", "Statements of one search: " + json.dumps(report["statement_facts"]), ""]
    lines += ["### Query plans (EXPLAIN (ANALYZE, BUFFERS), second of two runs)", ""]
    for name, plan in report["plans"].items():
        generic = plan.get("generic_plan")
        shown = dict(plan)
        if generic and plan_shape(generic) == plan_shape(plan["plan"]):
            shown.pop("generic_plan")
            shown["note"] = "the generic plan has the same shape"
        if len(shown["parameters"]) > 8:
            shown["parameters"] = [*shown["parameters"][:3], f"... {len(plan['parameters'])} in all"]
            for key in ("sql", "plan", "generic_plan"):
                if key in shown:
                    shown[key] = shorten_lists(shown[key])
        lines += _plan_lines(name, shown)
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    began = time.perf_counter()
    admin_url = args.database_url
    url = data.database_url(admin_url, args.database_name)
    dsn = data.plain_dsn(url)
    settings = Settings(environment="development", database_url=url, auto_migrate=False, seed_demo=False, run_worker_in_process=False)
    log(f"creating {args.database_name} and loading {args.prescribers} prescribers, {args.appointments:,} appointments ...")
    dataset = await data.load(
        admin_url,
        args.database_name,
        state=args.state,
        prescribers=args.prescribers,
        other_prescribers=args.other_prescribers,
        appointments=args.appointments,
        background_patients=args.patients,
        search_patients=args.searchers,
        race_patients=args.racers,
        days=args.days,
        seed=args.seed,
        log=log,
    )
    log("query plans ...")
    statements, statement_facts = await capture_statements(url, dataset, settings=settings)
    plans = await query_plans(dsn, statements)
    log(f"in-process breakdown of find_slots ({args.profile_runs} runs) ...")
    breakdown = await search_breakdown(url, dataset, runs=args.profile_runs)
    prescribers = {str(cid) for cid in dataset.prescribers}
    series: list[Series] = []
    rounds: list[dict[str, Any]] = []
    wins: list[list[datetime]] = [[] for _ in dataset.race_emails]  # what each racer has booked so far
    log("starting the fake Stripe API and uvicorn ...")
    with (
        fake_stripe() as (stripe_base, _),
        environment(SERVER_EXTRA_ENV | {"STRIPE_API_BASE": stripe_base, "STRIPE_API_KEY": "sk_test_benchmark"}),
    ):
        async with running_server(url, workers=args.server_workers) as server:
            log(f"signing in {len(dataset.search_emails)} searchers and {len(dataset.race_emails)} racers ...")
            searchers = await sign_in_all(server.base_url, dataset.search_emails, connections=2)
            racers = await sign_in_all(server.base_url, dataset.race_emails)
            try:
                log(f"slot search, one at a time ({args.serial_searches}) ...")
                series.append(
                    await measure_searches(
                        server,
                        searchers,
                        name="slot search, 14 days",
                        requests=args.serial_searches,
                        warmup=args.search_warmup,
                        concurrency=1,
                        state=args.state,
                        prescribers=prescribers,
                    )
                )
                log(f"slot search, {args.concurrency} in flight ({args.searches}) ...")
                series.append(
                    await measure_searches(
                        server,
                        searchers,
                        name="slot search, 14 days",
                        requests=args.searches,
                        warmup=args.search_warmup,
                        concurrency=args.concurrency,
                        state=args.state,
                        prescribers=prescribers,
                    )
                )
                log(f"booking race: {args.rounds} rounds of {len(racers)} clients on {args.race_slots} slots ...")
                race_series, rounds = await measure_race(server, racers, dataset.race_emails, args, rng=rng, wins=wins)
                series += race_series
                if args.serial_bookings:
                    log(f"bookings one at a time ({args.serial_bookings}) ...")
                    series.append(
                        await measure_serial_bookings(
                            server, racers, count=args.serial_bookings, days_ahead=args.rounds + 1, rng=rng, wins=wins
                        )
                    )
            finally:
                for client in searchers + racers:
                    await client.aclose()
    connection = await asyncpg.connect(dsn)
    try:
        booked_total = await connection.fetchval("SELECT count(*) FROM appointment WHERE status IN ('held', 'booked')")
    finally:
        await connection.close()
    expected_total = args.appointments + args.rounds * args.race_slots + args.serial_bookings
    results = [one.summary() for one in series]
    search_rows = [row for row in results if row["operation"].startswith("slot search")]
    race_row = next(row for row in results if row["operation"].startswith("booking,") and "racing" in row["operation"])
    race_ok = all(not r["problems"] for r in rounds) and booked_total == expected_total
    targets = [
        {
            "what": f"slot search p95, {row['concurrency']} in flight",
            "value_ms": row["p95_ms"],
            "target_ms": SEARCH_TARGET_P95_MS,
            "met": row["p95_ms"] < SEARCH_TARGET_P95_MS and not row["errors"],
        }
        for row in search_rows
    ] + [
        {
            "what": f"booking p99 in the race ({race_row['count']} requests)",
            "value_ms": race_row["p99_ms"],
            "target_ms": BOOKING_TARGET_P99_MS,
            "met": race_row["p99_ms"] < BOOKING_TARGET_P99_MS and race_ok,
        },
    ]
    report = {
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m benchmarks " + " ".join(sys.argv[1:]),
        "arguments": vars(args),
        "machine": await machine_facts(dsn),
        "dataset": dataset.facts,
        "load_timings": dataset.timings,
        "results": results,
        "rounds": [{k: v for k, v in r.items() if k not in {"won", "won_seconds", "lost_seconds"}} for r in rounds],
        "race_verified": {
            "every round one booking per slot and only 409s otherwise": all(not r["problems"] for r in rounds),
            "held or booked appointments at the end": booked_total,
            "expected": expected_total,
        },
        "targets": targets,
        "breakdown": breakdown,
        "statement_facts": statement_facts,
        "plans": plans,
        "total_seconds": time.perf_counter() - began,
    }
    print(markdown_report(report))
    print(f"\nHeld or booked appointments at the end: {booked_total:,} (expected {expected_total:,}).")
    if args.json_path:
        with open(args.json_path, "w") as out:
            json.dump(report, out, indent=2, default=str)
    log(f"done in {report['total_seconds']:.0f} s")
    return 0 if race_ok and all(not row["errors"] for row in results) else 1
