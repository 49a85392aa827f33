"""Growth benchmark: waiting-list position and the 14-day slot search at 1x, 10x and 100x data, in-process.

    python -m benchmarks growth [--scales 1,10,100] [--only waitlist|scheduling] [--json out.json]

Waiting list (waitlist_data.py with base x scale entries; databases <prefix>_waitlist_<N>x, reused on
later runs unless --reload, migrated to the newest schema first): place_in_queue, as the status page
calls it, for the entries at the front, the middle and the back of the largest queue (California).

Slot search (scheduling_data.py; a fresh database per scale and variant, <prefix>_scheduling_<N>x<a|b>,
dropped after measuring unless --keep): find_slots over 14 days as GET /api/v1/slots calls it (the first
500 slots) for a patient of the searched state. "10x data" is a clinic ten times larger: ten times the
prescribers licensed elsewhere and their booked appointments, the patients, and the past appointments
(history accumulates; it no longer occupies time), and
  (a) the searched state keeps its prescribers (and their booked appointments), or
  (b) the searched state's prescribers and their booked appointments grow ten times too: every search
      has to look at all of them for the first day with slots, so report the cost per prescriber.
At 1x both are the same data, measured once.

Every measurement: a few warm-up calls, then up to --calls calls one at a time (fewer once they have
taken --budget seconds, never fewer than --min-calls), each in its own session whose connection is
checked out before the clock starts, timed from the service call to its answer. The statements one call
sends are captured (StatementLog) and run again under EXPLAIN (ANALYZE, BUFFERS), the second of two runs.

Progress goes to stderr; the Markdown report goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from benchmarks import scheduling_data, waitlist_data
from benchmarks.machine import machine_facts
from benchmarks.scheduling import API_LIMIT, patient_record, shorten_lists
from benchmarks.stats import Series
from benchmarks.waitlist import StatementLog, log, query_plans
from telehealth.db.engine import make_engine, make_session_factory
from telehealth.scheduling.roster import ROSTERS
from telehealth.scheduling.service import find_slots
from telehealth.scheduling.states import AppointmentType
from telehealth.settings import Settings
from telehealth.waitlist.models import WaitlistEntry
from telehealth.waitlist.service import place_in_queue

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
QUEUE_STATE = "CA"  # the largest queue


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url", default=DEFAULT_ADMIN_URL, help="admin connection to the PostgreSQL server (default: %(default)s)"
    )
    parser.add_argument(
        "--prefix", default="telehealth_growth", help="the benchmark's databases are named <prefix>_... (default: %(default)s)"
    )
    parser.add_argument("--scales", default="1,10,100", help="comma-separated scale factors (default: %(default)s)")
    parser.add_argument("--only", choices=("waitlist", "scheduling"), help="measure one of the two")
    parser.add_argument("--reload", action="store_true", help="load the waiting lists again even when they are there")
    parser.add_argument("--waitlist-base", type=int, default=100_000, help="waiting-list entries at 1x (default: %(default)s)")
    parser.add_argument("--waitlist-seed", type=float, default=0.42, help="setseed() of the waiting-list data (default: %(default)s)")
    parser.add_argument("--state", default="CA", help="the searched state (default: %(default)s)")
    parser.add_argument("--prescribers", type=int, default=200, help="prescribers in the searched state at 1x (default: %(default)s)")
    parser.add_argument(
        "--other-prescribers", type=int, default=100, help="prescribers licensed only elsewhere at 1x (default: %(default)s)"
    )
    parser.add_argument(
        "--appointments",
        type=int,
        default=5000,
        help="booked consults of the state's prescribers at 1x, next 14 days (default: %(default)s)",
    )
    parser.add_argument(
        "--other-appointments", type=int, default=2500, help="booked consults of the others at 1x, next 14 days (default: %(default)s)"
    )
    parser.add_argument("--past-appointments", type=int, default=60_000, help="past appointments at 1x (default: %(default)s)")
    parser.add_argument("--patients", type=int, default=2000, help="patients at 1x (default: %(default)s)")
    parser.add_argument("--variants", default="a,b", help="slot-search variants, a and/or b (default: %(default)s)")
    parser.add_argument("--calls", type=int, default=300, help="measured calls per operation at most (default: %(default)s)")
    parser.add_argument("--min-calls", type=int, default=30, help="measured calls per operation at least (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured calls first (default: %(default)s)")
    parser.add_argument(
        "--budget", type=float, default=60.0, help="seconds after which an operation stops at --min-calls or more (default: %(default)s)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the slot-search databases")
    parser.add_argument("--json", dest="json_path", help="also write every figure and plan to this JSON file")


def settings_for(url: str) -> Settings:
    return Settings(environment="development", database_url=url, auto_migrate=False, seed_demo=False, run_worker_in_process=False)


async def timed_calls(name: str, call: Callable[[], Awaitable[float]], args: argparse.Namespace) -> Series:
    """call() answers the seconds it measured; warm-up first, then as many as --calls / --budget allow."""
    for _ in range(args.warmup):
        await call()
    series = Series(name)
    started = time.perf_counter()
    while len(series.seconds) < args.calls:
        series.seconds.append(await call())
        if len(series.seconds) >= args.min_calls and time.perf_counter() - started > args.budget:
            break
    series.wall_seconds = time.perf_counter() - started
    series.notes["load average after (1 min)"] = round(os.getloadavg()[0], 1)  # the machine is shared
    return series


def statement_label(number: int, sql: str) -> str:
    verb = sql.split(None, 1)[0].upper()
    tables = list(dict.fromkeys(re.findall(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+(\w+)", sql)))
    return f"{number}. {verb} ... {', '.join(tables)}"


async def plans_of(dsn: str, captured: StatementLog) -> dict[str, dict[str, Any]]:
    """Each statement's custom plan and its generic plan (the one PostgreSQL may switch a prepared statement
    to after five runs, which is what the app's cached statements then run)."""
    statements = {statement_label(i, sql): (sql, parameters) for i, (sql, parameters) in enumerate(captured.statements, 1)}
    return await query_plans(dsn, statements, generic=True)


async def database_size(dsn: str) -> str:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
    finally:
        await connection.close()


# ------------------------------------------------------------------------------------------ waiting list


async def waitlist_facts(dsn: str) -> dict[str, Any]:
    connection = await asyncpg.connect(dsn)
    try:
        facts = {
            "entries": await connection.fetchval("SELECT count(*) FROM waitlist_entry"),
            "waiting": await connection.fetchval("SELECT count(*) FROM waitlist_entry WHERE status = 'waiting'"),
            "waiting_in_queue": await connection.fetchval(
                "SELECT count(*) FROM waitlist_entry WHERE status = 'waiting' AND state = $1", QUEUE_STATE
            ),
            "invitations_last_28_days_in_queue": await connection.fetchval(
                "SELECT count(*) FROM waitlist_invitation WHERE state = $1 AND created_at >= now() - interval '28 days'", QUEUE_STATE
            ),
            "waitlist_entry heap + indexes": await connection.fetchval(
                "SELECT pg_size_pretty(pg_table_size('waitlist_entry')) || ' + ' || pg_size_pretty(pg_indexes_size('waitlist_entry'))"
            ),
        }
        if await connection.fetchval("SELECT to_regclass('waitlist_tally') IS NOT NULL"):
            facts["waitlist_tally rows (all states / the queue's state)"] = (
                f"{await connection.fetchval('SELECT count(*) FROM waitlist_tally'):,} / "
                f"{await connection.fetchval('SELECT count(*) FROM waitlist_tally WHERE state = $1', QUEUE_STATE):,}"
            )
        return facts
    finally:
        await connection.close()


async def queue_entry_id(dsn: str, offset: int) -> Any:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval(
            "SELECT id FROM waitlist_entry WHERE state = $1 AND status = 'waiting' ORDER BY confirmed_at, id OFFSET $2 LIMIT 1",
            QUEUE_STATE,
            offset,
        )
    finally:
        await connection.close()


async def measure_waitlist(args: argparse.Namespace, scale: int) -> dict[str, Any]:
    admin_url, name = args.database_url, f"{args.prefix}_waitlist_{scale}x"
    entries = args.waitlist_base * scale
    url = waitlist_data.database_url(admin_url, name)
    dsn, settings = waitlist_data.plain_dsn(url), settings_for(url)
    started = time.perf_counter()
    if args.reload or await waitlist_data.loaded_marker(admin_url, name) != waitlist_data.load_marker(entries, args.waitlist_seed):
        log(f"waiting list {scale}x: loading {entries:,} entries into {name} ...")
        timings = await waitlist_data.load(admin_url, name, entries=entries, seed=args.waitlist_seed, settings=settings, log=log)
        source = "loaded by this run"
    else:
        log(f"waiting list {scale}x: reusing {name}, migrating it to the newest schema ...")
        await waitlist_data.migrate(url)
        timings, source = {"migrate": time.perf_counter() - started}, "reused from an earlier run (the migrations brought up to date)"
    step = time.perf_counter()
    await waitlist_data.vacuum_analyze(dsn)
    timings["VACUUM (ANALYZE)"] = time.perf_counter() - step
    facts = await waitlist_facts(dsn) | {"database size": await database_size(dsn), "data": source}
    queue = facts["waiting_in_queue"]
    engine = make_engine(url, pool_size=2)
    factory = make_session_factory(engine)
    results: dict[str, Any] = {}
    try:
        for where, offset in (("front", 0), ("middle", queue // 2), ("back", queue - 1)):
            async with factory() as session:
                entry = await session.get(WaitlistEntry, await queue_entry_id(dsn, offset))
                assert entry is not None
                session.expunge(entry)

            async def call(entry: WaitlistEntry = entry, expected: int = offset + 1) -> float:
                async with factory() as session:
                    await session.connection()  # checkout and pre-ping are not the lookup
                    began = time.perf_counter()
                    place = await place_in_queue(session, entry, now=datetime.now(UTC), settings=settings)
                    elapsed = time.perf_counter() - began
                    await session.rollback()
                if place.position != expected or place.people_waiting != queue:
                    raise AssertionError(f"position {place.position} of {place.people_waiting}, expected {expected} of {queue}")
                return elapsed

            log(f"  place_in_queue, {where} of the {QUEUE_STATE} queue (position {offset + 1:,} of {queue:,}) ...")
            results[where] = (await timed_calls(f"position, {where}", call, args)).summary() | {"position": offset + 1}
            if where == "back":
                async with factory() as session:
                    with StatementLog(engine) as captured:
                        await place_in_queue(session, entry, now=datetime.now(UTC), settings=settings)
                    await session.rollback()
    finally:
        await engine.dispose()
    plans = await plans_of(dsn, captured)
    return {
        "scale": scale,
        "database": name,
        "facts": facts,
        "timings": timings,
        "results": results,
        "plans": plans,
        "statements per call": len(captured.statements),
        "seconds": time.perf_counter() - started,
    }


# ------------------------------------------------------------------------------------------ slot search


def scheduling_sizes(args: argparse.Namespace, scale: int, variant: str) -> dict[str, int]:
    state_grows = scale if variant == "b" else 1
    return {
        "prescribers": args.prescribers * state_grows,
        "appointments": args.appointments * state_grows,
        "other_prescribers": args.other_prescribers * scale,
        "other_appointments": args.other_appointments * scale,
        "past_appointments": args.past_appointments * scale,
        "background_patients": args.patients * scale,
    }


async def measure_scheduling(args: argparse.Namespace, scale: int, variant: str) -> dict[str, Any]:
    admin_url, name = args.database_url, f"{args.prefix}_scheduling_{scale}x{variant}"
    sizes = scheduling_sizes(args, scale, variant)
    url = waitlist_data.database_url(admin_url, name)
    dsn = waitlist_data.plain_dsn(url)
    started = time.perf_counter()
    log(f"slot search {scale}x ({variant}): loading {name}: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()) + " ...")
    dataset = await scheduling_data.load(
        admin_url, name, state=args.state, search_patients=1, race_patients=0, days=14, seed=42, log=log, **sizes
    )
    load_seconds = time.perf_counter() - started
    engine = make_engine(url, pool_size=2)
    factory = make_session_factory(engine)
    found_counts: list[int] = []
    try:
        patient = await patient_record(factory, dataset.search_emails[0])

        async def search(session: Any) -> list[Any]:
            now = datetime.now(UTC)
            return await find_slots(
                session,
                patient=patient,
                appointment_type=AppointmentType.CONSULT,
                window_start=now,
                window_end=now + timedelta(days=14),
                now=now,
                limit=API_LIMIT,
            )

        async def call() -> float:
            ROSTERS.clear()  # cold, as the first search after a calendar change: the roster statement grows with the state too
            async with factory() as session:
                await session.connection()
                began = time.perf_counter()
                found = await search(session)
                elapsed = time.perf_counter() - began
                await session.rollback()
            found_counts.append(len(found))
            return elapsed

        log(f"  find_slots, 14 days, first {API_LIMIT} ...")
        series = await timed_calls("slot search", call, args)
        ROSTERS.clear()
        async with factory() as session:
            with StatementLog(engine) as captured:
                found = await search(session)
            await session.rollback()
        clinicians = len({slot.clinician_id for slot in found})
    finally:
        await engine.dispose()
    plans = await plans_of(dsn, captured)
    for plan in plans.values():
        plan["sql"], plan["plan"] = shorten_lists(plan["sql"]), shorten_lists(plan["plan"])
        if "generic_plan" in plan:
            plan["generic_plan"] = shorten_lists(plan["generic_plan"])
        plan["parameters"] = [_short_list(value) for value in plan["parameters"]]
    facts = dataset.facts | {"database size": await database_size(dsn)}
    if not args.keep:
        connection = await asyncpg.connect(waitlist_data.plain_dsn(admin_url))
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()
    summary = series.summary() | {"slots per answer": min(found_counts), "prescribers in the answer": clinicians}
    return {
        "scale": scale,
        "variant": variant,
        "database": name,
        "sizes": sizes,
        "facts": facts,
        "timings": dataset.timings,
        "load seconds": load_seconds,
        "result": summary,
        "plans": plans,
        "statements per call": len(captured.statements),
        "seconds": time.perf_counter() - started,
    }


def _short_list(value: str) -> str:
    """A list of ids as its length and ends, for the report."""
    ids = re.findall(r"UUID\('([0-9a-f-]{36})'\)", value)
    return f"[{len(ids)} ids: {ids[0]}, ..., {ids[-1]}]" if len(ids) > 2 else value


# ------------------------------------------------------------------------------------------------ report


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def _plans(lines: list[str], plans: dict[str, dict[str, Any]]) -> None:
    for label, plan in plans.items():
        lines += [
            f"##### {label}",
            "",
            "```sql",
            plan["sql"].strip(),
            f"-- parameters: {plan['parameters']}",
            "```",
            "",
            "```",
            plan["plan"],
            "```",
            "",
        ]
        if generic := plan.get("generic_plan"):
            lines += ["Generic plan (PREPARE, then EXECUTE under plan_cache_mode = force_generic_plan):", "", "```", generic, "```", ""]


def markdown_report(report: dict[str, Any]) -> str:
    lines = [
        f"## Growth at 10x and 100x, {report['finished_at']}",
        "",
        f"`{report['command']}`",
        "",
        "### Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    lines += [f"| {key} | {value} |" for key, value in report["machine"].items()]
    if waitlist := report.get("waitlist"):
        base = {where: waitlist[0]["results"][where]["p50_ms"] for where in ("front", "middle", "back")}
        lines += ["", f"### Waiting-list position (`place_in_queue`, the {QUEUE_STATE} queue), milliseconds", ""]
        lines += [
            "| scale | entries | waiting in the queue | front p50 / p95 | middle p50 / p95 | back p50 / p95 | calls | back p50 vs 1x |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in waitlist:
            r, f = row["results"], row["facts"]
            cells = " | ".join(f"{r[w]['p50_ms']:.2f} / {r[w]['p95_ms']:.2f}" for w in ("front", "middle", "back"))
            lines.append(
                f"| {row['scale']}x | {f['entries']:,} | {f['waiting_in_queue']:,} | {cells} | {r['back']['count']} | "
                f"{_ratio(r['back']['p50_ms'], base['back'])} |"
            )
        lines += [
            "",
            "Load average (1 min) after each: "
            + "; ".join(
                f"{row['scale']}x " + ", ".join(str(row["results"][w]["load average after (1 min)"]) for w in ("front", "middle", "back"))
                for row in waitlist
            )
            + ".",
        ]
        lines += ["", "| scale | data | load / migrate, VACUUM (s) | sizes |", "|---|---|---|---|"]
        for row in waitlist:
            sizes = "; ".join(
                f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in row["facts"].items() if k not in ("entries", "data")
            )
            timings = ", ".join(f"{k} {v:.1f}" for k, v in row["timings"].items())
            lines.append(f"| {row['scale']}x | {row['facts']['data']} | {timings} | {sizes} |")
    if scheduling := report.get("scheduling"):
        lines += ["", "### Slot search (`find_slots`, 14 days, first 500 slots), milliseconds", ""]
        lines += [
            "| variant | scale | prescribers in the state / all | booked ahead / past appointments | patients | p50 | p95 | "
            "calls | p50 vs 1x | p50 per prescriber in the state |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        base = next((row["result"]["p50_ms"] for row in scheduling if row["scale"] == min(r["scale"] for r in scheduling)), 0)
        for row in scheduling:
            s, r = row["sizes"], row["result"]
            every = s["prescribers"] + s["other_prescribers"]
            lines.append(
                f"| {'a, b' if row['scale'] == 1 else row['variant']} | {row['scale']}x | {s['prescribers']:,} / {every:,} | "
                f"{s['appointments'] + s['other_appointments']:,} / "
                f"{s['past_appointments']:,} | {s['background_patients']:,} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['count']} | "
                f"{_ratio(r['p50_ms'], base)} | {r['p50_ms'] / s['prescribers'] * 1000:.0f} µs |"
            )
        lines += [
            "",
            "| variant | scale | load (s) | database | statements per search | slots / prescribers in the answer | load average after |",
            "|---|---|---:|---|---:|---|---:|",
        ]
        for row in scheduling:
            r = row["result"]
            lines.append(
                f"| {row['variant']} | {row['scale']}x | {row['load seconds']:.0f} | {row['facts']['database size']} | "
                f"{row['statements per call']} | {r['slots per answer']} / {r['prescribers in the answer']} | "
                f"{r['load average after (1 min)']} |"
            )
    lines += ["", "### Query plans (EXPLAIN (ANALYZE, BUFFERS), second of two runs)", ""]
    for row in report.get("waitlist", []):
        lines += [f"#### Position, the back of the queue, {row['scale']}x", ""]
        _plans(lines, row["plans"])
    for row in report.get("scheduling", []):
        lines += [f"#### Slot search, {row['scale']}x ({row['variant']})", ""]
        _plans(lines, row["plans"])
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    scales = [int(value) for value in args.scales.split(",")]
    report: dict[str, Any] = {"command": "python -m benchmarks " + " ".join(sys.argv[1:]), "arguments": vars(args)}
    if args.only != "scheduling":
        report["waitlist"] = [await measure_waitlist(args, scale) for scale in scales]
    if args.only != "waitlist":
        report["scheduling"] = []
        for variant in args.variants.split(","):
            for scale in scales:
                if scale == 1 and variant != args.variants.split(",")[0]:
                    continue  # at 1x every variant is the same data
                report["scheduling"].append(await measure_scheduling(args, scale, variant))
    report["machine"] = await machine_facts(waitlist_data.plain_dsn(args.database_url))
    report["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    report["total_seconds"] = time.perf_counter() - began
    print(markdown_report(report))
    if args.json_path:
        with open(args.json_path, "w") as out:
            json.dump(report, out, indent=2, default=str)
    log(f"done in {report['total_seconds']:.0f} s")
    return 0
