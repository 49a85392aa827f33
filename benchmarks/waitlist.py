"""Waiting-list benchmark: join, position lookup and invite-next-100 with 1,000,000 entries over 51 queues.

    python -m benchmarks waitlist [--reload] [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

1. Data (waitlist_data.py): a database of its own (default telehealth_bench), migrated by the app's
   migrations and filled with server-side SQL; reused on later runs unless --reload. Every run makes its
   own private links, then runs VACUUM (ANALYZE) so each starts from the same, settled state.
2. Query plans: the SQL the app really sends (captured from place_in_queue and invite_next) is run again
   under EXPLAIN (ANALYZE, BUFFERS) for the entry at the back of the largest queue (California), with
   PostgreSQL's custom plan and with the generic plan a cached prepared statement may switch to.
3. Over HTTP, against `uvicorn app:app` in a subprocess (server.py): joins (POST /api/v1/waitlist/) and
   position lookups (POST /api/v1/waitlist/status) from an httpx load generator with a fixed concurrency
   and a fixed number of requests after a warm-up, then the same one request at a time. Lookups use
   private links made for this run (rows in waitlist_link holding the SHA-256 of tokens kept here) to
   waiting entries sampled from California and from the whole list. CPU per request is read from /proc.
4. In-process: invite_next(count=100) for the largest states, each run its own committed transaction
   (100 status changes, 100 invitations, 200 audit rows and 100 queued emails).
5. Joins again while invite-next-100 runs back to back in California (those runs are rolled back, so the
   data does not drift): both write the audit trail, which is serialized by one advisory lock.
6. The position count's plan once more after the run's writes, with ANALYZE but no VACUUM.

Progress goes to stderr; the Markdown report (the figures docs/benchmarks.md records) goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from statistics import median
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event, select

from benchmarks import waitlist_data as data
from benchmarks.ceilings import DRIVER_CALLS
from benchmarks.census import POPULATION_2020, largest
from benchmarks.cpu import CpuMeter, describe
from benchmarks.locks import AuditLockProbe
from benchmarks.machine import machine_facts
from benchmarks.server import Server, running_server
from benchmarks.stats import Series, percentile
from telehealth.accounts.roles import Role
from telehealth.accounts.security import new_token
from telehealth.db import driver
from telehealth.db.engine import make_engine, make_session_factory, transaction
from telehealth.lib.actors import Actor
from telehealth.settings import Settings
from telehealth.waitlist.invitations import invite_next
from telehealth.waitlist.models import WaitlistEntry
from telehealth.waitlist.service import place_in_queue

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGETS_MS = {"join": 25.0, "position lookup": 25.0}  # p95 on a 2-core machine (the issue)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url", default=DEFAULT_ADMIN_URL, help="admin connection to the PostgreSQL server (default: %(default)s)"
    )
    parser.add_argument("--database-name", default="telehealth_bench", help="the benchmark's own database (default: %(default)s)")
    parser.add_argument("--reload", action="store_true", help="drop and reload the data even when it is already there")
    parser.add_argument("--entries", type=int, default=1_000_000, help="waiting-list entries to load (default: %(default)s)")
    parser.add_argument("--seed", type=float, default=0.42, help="setseed() for the data and random.seed() here (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight over HTTP (default: %(default)s)")
    parser.add_argument("--joins", type=int, default=2000, help="measured joins (default: %(default)s)")
    parser.add_argument("--lookups", type=int, default=2000, help="measured lookups per sample (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests before each HTTP phase (default: %(default)s)")
    parser.add_argument(
        "--serial",
        type=int,
        default=300,
        help="requests of each HTTP operation also sent one at a time, to show the latency without queueing "
        "(0: skip; default: %(default)s)",
    )
    parser.add_argument(
        "--contention-joins",
        type=int,
        default=500,
        help="joins measured while invite-next runs back to back (0: skip; default: %(default)s)",
    )
    parser.add_argument("--invite-runs", type=int, default=30, help="measured invite-next runs (default: %(default)s)")
    parser.add_argument("--invite-count", type=int, default=100, help="people per invite-next run (default: %(default)s)")
    parser.add_argument("--invite-states", type=int, default=3, help="the N largest states take turns (default: %(default)s)")
    parser.add_argument("--server-workers", type=int, default=1, help="uvicorn worker processes (default: %(default)s)")
    parser.add_argument("--json", dest="json_path", help="also write every figure to this JSON file")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- the data


async def dataset_facts(dsn: str) -> dict[str, Any]:
    connection = await asyncpg.connect(dsn)
    try:
        by_status = dict(await connection.fetch("SELECT status, count(*) FROM waitlist_entry GROUP BY status ORDER BY 2 DESC"))
        waiting = dict(await connection.fetch("SELECT state, count(*) FROM waitlist_entry WHERE status = 'waiting' GROUP BY state"))
        recent_invitations = await connection.fetchval(
            "SELECT count(*) FROM waitlist_invitation WHERE created_at >= now() - interval '28 days'"
        )
        sizes = await connection.fetchrow(
            "SELECT pg_size_pretty(pg_table_size('waitlist_entry')) AS heap, pg_size_pretty(pg_indexes_size('waitlist_entry')) AS indexes"
        )
    finally:
        await connection.close()
    return {
        "entries": sum(by_status.values()),
        "by_status": by_status,
        "waiting_CA": waiting.get("CA", 0),
        "waiting_TX": waiting.get("TX", 0),
        "waiting_WY": waiting.get("WY", 0),
        "queues": len(waiting),
        "invitations_last_28_days": recent_invitations,
        "waitlist_entry_heap": sizes["heap"],
        "waitlist_entry_indexes": sizes["indexes"],
    }


async def make_links(dsn: str, *, state: str | None, count: int) -> list[str]:
    """Private links (raw tokens) to `count` random waiting entries, of one state or of the whole list."""
    connection = await asyncpg.connect(dsn)
    try:
        ids = [
            row["id"]
            for row in await connection.fetch(
                "SELECT id FROM waitlist_entry WHERE status = 'waiting' AND ($1::text IS NULL OR state = $1) ORDER BY random() LIMIT $2",
                state,
                count,
            )
        ]
        tokens = [new_token() for _ in ids]
        await connection.execute(
            "INSERT INTO waitlist_link (token_hash, entry_id, created_at)"
            " SELECT h, e, now() FROM unnest($1::text[], $2::uuid[]) AS t(h, e)",
            [digest for _, digest in tokens],
            ids,
        )
    finally:
        await connection.close()
    return [raw for raw, _ in tokens]


# ------------------------------------------------------------------------------------------ query plans


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime | date):
        return f"'{value.isoformat()}'"
    if isinstance(value, list | tuple):  # an array parameter (`= ANY($1::UUID[])`), as an array literal
        return "'{" + ",".join(str(item) for item in value) + "}'"
    return "'" + str(value).replace("'", "''") + "'"


class StopCapture(Exception):
    """Raised by StatementLog to stop a service before it writes anything."""


class StatementLog:
    """The SQL and parameters an engine sends while a block runs (asyncpg form: $1, $2 ...). With
    stop_after, the statement after the first one containing that text is refused (StopCapture), so a
    service can be followed up to its read and no further."""

    def __init__(self, engine: Any, *, stop_after: str | None = None) -> None:
        self.engine = engine.sync_engine
        self.stop_after = stop_after
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    def _record(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if self.stop_after and any(self.stop_after in seen for seen, _ in self.statements):
            raise StopCapture(statement)
        self.statements.append((statement, tuple(parameters or ())))

    def _recording(self, call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def recorded(session: Any, sql: str, *args: Any) -> Any:
            self._record(None, None, sql, args, None, False)
            return await call(session, sql, *args)

        return recorded

    def __enter__(self) -> StatementLog:
        event.listen(self.engine, "before_cursor_execute", self._record)
        self._saved = {name: getattr(driver, name) for name in DRIVER_CALLS}
        for name, call in self._saved.items():  # statements sent on the driver (db/driver.py) pass no cursor event
            setattr(driver, name, self._recording(call))
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)
        for name, call in self._saved.items():
            setattr(driver, name, call)

    def find(self, *fragments: str, without: str | None = None) -> tuple[str, tuple[Any, ...]]:
        for statement, parameters in self.statements:
            if all(fragment in statement for fragment in fragments) and not (without and without in statement):
                return statement, parameters
        raise LookupError(f"no captured statement contains {fragments}")


async def explain(dsn: str, statement: str, parameters: tuple[Any, ...], *, generic: bool = False) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) twice (the second, warm, is kept) inside a transaction that is rolled back.

    generic=True shows the plan PostgreSQL uses once it switches a prepared statement to its generic plan
    (the app's statements are prepared and cached per connection by asyncpg): PREPARE, then EXECUTE under
    plan_cache_mode = force_generic_plan."""
    connection = await asyncpg.connect(dsn)
    try:
        plan = ""
        for _ in range(2):
            transaction_ = connection.transaction()
            await transaction_.start()
            try:
                if generic:
                    await connection.execute("SET LOCAL plan_cache_mode = force_generic_plan")
                    await connection.execute(f"PREPARE bench_statement AS {statement}")
                    arguments = (
                        f"({', '.join(_literal(value) for value in parameters)})" if parameters else ""
                    )  # EXECUTE x() is a syntax error
                    rows = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_statement{arguments}")
                else:
                    rows = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *parameters)
                plan = "\n".join(row[0] for row in rows)
            finally:
                await transaction_.rollback()
                if generic:
                    await connection.execute("DEALLOCATE bench_statement")
    finally:
        await connection.close()
    return plan


Statements = dict[str, tuple[str, tuple[Any, ...]]]


async def capture_statements(url: str, *, settings: Settings, coordinator: uuid.UUID) -> tuple[Statements, str]:
    """The SQL the app sends for the entry at the back of the largest queue (place_in_queue) and for
    inviting the next 100 there (invite_next, stopped right after its SELECT: nothing is written)."""
    engine = make_engine(url, pool_size=1)
    factory = make_session_factory(engine)
    statements: Statements = {}
    try:
        async with factory() as session:
            back = (
                await session.execute(
                    select(WaitlistEntry)
                    .where(WaitlistEntry.state == "CA", WaitlistEntry.status == "waiting")
                    .order_by(WaitlistEntry.confirmed_at.desc(), WaitlistEntry.id.desc())
                    .limit(1)
                )
            ).scalar_one()
            with StatementLog(engine) as captured:
                place = await place_in_queue(session, back, now=datetime.now(UTC), settings=settings)
            await session.rollback()
        # One statement since migration 0016: the state's waitlist_tally rows (the people waiting, those of the
        # earlier days) and a count over the queue index within the entry's own day.
        statements["position (people ahead)"] = captured.find("count(", "FROM waitlist_entry", "<")
        statements["recent invitations (wait estimate)"] = captured.find("count(", "FROM waitlist_invitation")
        async with factory() as session:
            actor = Actor(coordinator, Role.COORDINATOR.value, "127.0.0.1", "benchmarks")
            with StatementLog(engine, stop_after="SKIP LOCKED") as captured:
                try:
                    await invite_next(session, state="CA", count=100, actor=actor, now=datetime.now(UTC), settings=settings)
                except Exception as exc:  # StopCapture, possibly wrapped by SQLAlchemy
                    if "StopCapture" not in repr(exc) and not isinstance(exc, StopCapture):
                        raise
            await session.rollback()
        statements["invite-next select (CA, 100)"] = captured.find("FROM waitlist_entry", "SKIP LOCKED")
    finally:
        await engine.dispose()
    note = f"the entry at the back of the California queue: position {place.position:,} of {place.people_waiting:,}"
    return statements, note


async def query_plans(dsn: str, statements: Statements, *, generic: bool = True) -> dict[str, dict[str, Any]]:
    plans: dict[str, dict[str, Any]] = {}
    for name, (statement, parameters) in statements.items():
        plans[name] = {
            "sql": statement,
            "parameters": [str(value) for value in parameters],
            "plan": await explain(dsn, statement, parameters),
        }
        if generic:
            plans[name]["generic_plan"] = await explain(dsn, statement, parameters, generic=True)
    return plans


# ------------------------------------------------------------------------------------------ HTTP phases


async def run_phase(
    name: str,
    *,
    requests: int,
    concurrency: int,
    send: Callable[[int], Awaitable[tuple[bool, Any]]],
    meter: CpuMeter | None = None,
    probe: AuditLockProbe | None = None,
) -> tuple[Series, list[Any]]:
    """`requests` calls of send(i) with `concurrency` in flight; each call timed from send to full response."""
    series = Series(name)
    results: list[Any] = []
    failures: list[str] = []
    counter = itertools.count()

    async def worker() -> None:
        while (i := next(counter)) < requests:
            started = time.perf_counter()
            try:
                ok, result = await send(i)
            except httpx.HTTPError as exc:
                ok, result = False, f"{type(exc).__name__}: {exc}"
            elapsed = time.perf_counter() - started
            if ok:
                series.seconds.append(elapsed)
                results.append(result)
            else:
                series.errors += 1
                failures.append(str(result)[:300])

    if meter:
        meter.start()
    if probe:
        probe.start()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    series.wall_seconds = time.perf_counter() - started
    if meter and requests:
        series.notes["cpu"] = describe(meter.stop(), requests)
    if probe:
        series.notes["audit lock"] = await probe.stop()
    if failures:
        log(f"  {name}: {len(failures)} failed, e.g. {failures[0]}")
    return series, results


async def csrf_client(base_url: str, concurrency: int) -> httpx.AsyncClient:
    """A client holding the CSRF cookie (from GET /sign-in) and sending it back as X-CSRFToken."""
    client = httpx.AsyncClient(
        base_url=base_url,
        timeout=30,
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
    )
    response = await client.get("/sign-in")
    response.raise_for_status()
    token = client.cookies.get("csrftoken")
    if not token:
        raise RuntimeError("GET /sign-in set no csrftoken cookie")
    client.headers["x-csrftoken"] = token
    return client


async def measure_joins(
    server: Server, *, name: str, requests: int, warmup: int, concurrency: int, rng: random.Random, measure_cpu: bool = True
) -> Series:
    """POST /api/v1/waitlist/ with new addresses, states drawn by population, each from its own client
    address (X-Forwarded-For, which uvicorn trusts from 127.0.0.1), as real sign-ups come from many networks.
    With more than one in flight, pg_locks is sampled to show how busy the audit trail's lock is."""
    run_id = uuid.uuid4().hex[:10]
    states, weights = list(POPULATION_2020), list(POPULATION_2020.values())
    client = await csrf_client(server.base_url, concurrency)

    def sender(prefix: str) -> Callable[[int], Awaitable[tuple[bool, Any]]]:
        async def send(i: int) -> tuple[bool, Any]:
            body = {
                "first_name": "Bench",
                "last_name": f"Joiner {i}",
                "email": f"join-{run_id}-{prefix}{i}@bench.example.com",
                "state": rng.choices(states, weights)[0],
                "date_of_birth": "1984-06-15",
                "consent_to_contact": True,
                "phone": "+12125550123",
                "conditions": ["anxiety"],
            }
            block = 255 if prefix == "w" else 1 + (i >> 16) % 200  # warm-up joins come from 10.255.x.y
            address = f"10.{block}.{(i >> 8) & 255}.{i & 255}"
            response = await client.post("/api/v1/waitlist/", json=body, headers={"x-forwarded-for": address})
            return response.status_code == 202, response.status_code if response.status_code == 202 else response.text

        return send

    try:
        await run_phase(f"{name} (warm-up)", requests=warmup, concurrency=concurrency, send=sender("w"))
        meter = CpuMeter(server.pid) if measure_cpu else None
        probe = AuditLockProbe(server.dsn) if concurrency > 1 else None
        series, _ = await run_phase(name, requests=requests, concurrency=concurrency, send=sender("m"), meter=meter, probe=probe)
    finally:
        await client.aclose()
    series.notes["concurrency"] = concurrency
    return series


async def measure_lookups(server: Server, *, name: str, tokens: list[str], warmup: int, concurrency: int) -> Series:
    """POST /api/v1/waitlist/status, each request with another entry's link (the first `warmup` unmeasured)."""
    client = await csrf_client(server.base_url, concurrency)

    def sender(offset: int) -> Callable[[int], Awaitable[tuple[bool, Any]]]:
        async def send(i: int) -> tuple[bool, Any]:
            response = await client.post("/api/v1/waitlist/status", json={"token": tokens[offset + i]})
            if response.status_code != 200:
                return False, response.text
            body = response.json()
            return body["position"] is not None, (body["position"], body["people_waiting_in_state"])

        return send

    try:
        await run_phase(f"{name} (warm-up)", requests=warmup, concurrency=concurrency, send=sender(0))
        series, results = await run_phase(
            name, requests=len(tokens) - warmup, concurrency=concurrency, send=sender(warmup), meter=CpuMeter(server.pid)
        )
    finally:
        await client.aclose()
    if results:
        series.notes["median position"] = f"{int(median(position for position, _ in results)):,}"
        series.notes["median queue"] = f"{int(median(waiting for _, waiting in results)):,}"
    series.notes["concurrency"] = concurrency
    return series


# ----------------------------------------------------------------------------------------- invite-next


async def measure_invites(url: str, args: argparse.Namespace, *, settings: Settings, coordinator: uuid.UUID) -> Series:
    """invite_next in its own committed transaction per run, the largest states in turn, one at a time."""
    engine = make_engine(url, pool_size=2)
    factory = make_session_factory(engine)
    actor = Actor(coordinator, Role.COORDINATOR.value, "127.0.0.1", "benchmarks")
    states = largest(args.invite_states)
    series = Series(f"invite next {args.invite_count}")
    per_state: dict[str, list[float]] = {state: [] for state in states}
    meter = CpuMeter(None, self_label="app (in-process)")
    try:
        for run in range(-len(states), args.invite_runs):  # one unmeasured run per state first
            if run == 0:
                meter.start()
            state = states[run % len(states)]
            started = time.perf_counter()
            async with transaction(factory) as session:
                invited = await invite_next(
                    session, state=state, count=args.invite_count, actor=actor, now=datetime.now(UTC), settings=settings
                )
            elapsed = time.perf_counter() - started
            if len(invited) != args.invite_count:
                series.errors += 1
                log(f"  invite-next {state}: invited {len(invited)}, not {args.invite_count}")
            elif run >= 0:
                series.seconds.append(elapsed)
                per_state[state].append(elapsed)
        cpu = meter.stop() if args.invite_runs > 0 else None
    finally:
        await engine.dispose()
    series.wall_seconds = sum(series.seconds)
    if cpu and series.seconds:
        series.notes["cpu"] = describe(cpu, len(series.seconds))
    series.notes["states"] = ", ".join(states)
    series.notes["p50 by state (ms)"] = {
        state: round(percentile(sorted(values), 50) * 1000, 1) for state, values in per_state.items() if values
    }
    return series


async def measure_joins_during_invitations(
    url: str, server: Server, args: argparse.Namespace, *, settings: Settings, coordinator: uuid.UUID, rng: random.Random
) -> Series:
    """Joins while a coordinator invites the next 100 in California back to back: both write the audit
    trail, whose one advisory lock each transaction holds from its first audit row to its end. The
    invitation runs are rolled back (the lock is held just as long), so the data does not drift."""
    engine = make_engine(url, pool_size=1)
    factory = make_session_factory(engine)
    actor = Actor(coordinator, Role.COORDINATOR.value, "127.0.0.1", "benchmarks")
    stop = asyncio.Event()
    runs = 0

    async def invite_loop() -> None:
        nonlocal runs
        while not stop.is_set():
            async with factory() as session:
                await invite_next(session, state="CA", count=args.invite_count, actor=actor, now=datetime.now(UTC), settings=settings)
                await session.rollback()
            runs += 1

    inviter = asyncio.create_task(invite_loop())
    try:
        await asyncio.sleep(0.2)  # the first run is under way
        series = await measure_joins(
            server,
            name=f"join while invite-next-{args.invite_count} runs back to back",
            requests=args.contention_joins,
            warmup=0,
            concurrency=args.concurrency,
            rng=rng,
            measure_cpu=False,
        )
    finally:
        stop.set()
        await inviter
        await engine.dispose()
    series.notes["invite-next runs meanwhile"] = runs
    return series


# ------------------------------------------------------------------------------------------------ report


def _ms(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def _plan_lines(name: str, plan: dict[str, Any]) -> list[str]:
    lines = [f"#### {name}", ""]
    if note := plan.get("note"):
        lines += [note[0].upper() + note[1:] + ".", ""]
    lines += ["```sql", plan["sql"].strip(), f"-- parameters: {plan['parameters']}", "```", "", "```", plan["plan"], "```", ""]
    if generic := plan.get("generic_plan"):
        lines += ["Generic plan (PREPARE + EXECUTE under plan_cache_mode = force_generic_plan):", "", "```", generic, "```", ""]
    return lines


def markdown_report(report: dict[str, Any]) -> str:
    lines = [f"## Waiting-list benchmark, {report['finished_at']}", "", f"`{report['command']}`", ""]
    lines += ["### Machine", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in report["machine"].items()]
    facts = report["dataset"]
    visible = facts["visibility before measuring"]
    lines += ["", "### Data", ""]
    lines.append(
        f"{facts['entries']:,} entries over {facts['queues']} queues; by status: "
        + ", ".join(f"{status} {count:,}" for status, count in facts["by_status"].items())
        + f". Waiting in CA {facts['waiting_CA']:,}, TX {facts['waiting_TX']:,}, WY {facts['waiting_WY']:,}."
        f" Invitations in the last 28 days: {facts['invitations_last_28_days']:,}."
        f" waitlist_entry: heap {facts['waitlist_entry_heap']}, indexes {facts['waitlist_entry_indexes']};"
        f" {visible['all_visible_pages']:,} of {visible['heap_pages']:,} heap pages all-visible when measuring began."
    )
    lines += ["", f"Data: {report['data_source']}. Whole run: {report['total_seconds']:.0f} s."]
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
    lines += ["", "### Targets (p95)", ""]
    for target in report["targets"]:
        verdict = "met" if target["met"] else "NOT met"
        lines.append(f"- {target['operation']}: {target['p95_ms']:.1f} ms, target under {target['target_ms']:.0f} ms: **{verdict}**")
    lines += ["", "### Query plans (EXPLAIN (ANALYZE, BUFFERS), second of two runs)", ""]
    for name, plan in report["plans"].items():
        lines += _plan_lines(name, plan)
    lines += ["### The position count and the visibility map", ""]
    for plans in (report["plans_before_vacuum"] or {}, report["plans_after_run"]):
        for name, plan in plans.items():
            lines += _plan_lines(name, plan)
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    admin_url = args.database_url
    url = data.database_url(admin_url, args.database_name)
    dsn = data.plain_dsn(url)
    settings = Settings(environment="development", database_url=url, auto_migrate=False, seed_demo=False, run_worker_in_process=False)
    began = time.perf_counter()
    wanted = data.load_marker(args.entries, args.seed)
    if args.reload or await data.loaded_marker(admin_url, args.database_name) != wanted:
        log(f"loading {args.entries:,} entries into {args.database_name} ...")
        timings = await data.load(admin_url, args.database_name, entries=args.entries, seed=args.seed, settings=settings, log=log)
        data_source = "loaded by this run (" + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()) + ")"
        loaded = True
    else:
        log(f"reusing the data in {args.database_name} (--reload to load it again)")
        await data.migrate(url)  # new migrations since the load, if any
        data_source = f"reused from an earlier run (database {args.database_name}; --reload loads it again)"
        loaded = False
    coordinator = await data.ensure_staff(url, settings)
    log("private links for the lookup samples ...")
    samples = {"CA": args.warmup + args.lookups, "all": args.warmup + args.lookups}
    if args.serial:
        samples |= {"CA serial": args.serial + 20, "all serial": args.serial + 20}
    tokens = {name: await make_links(dsn, state="CA" if name.startswith("CA") else None, count=count) for name, count in samples.items()}
    log("query plans ...")
    statements, position_note = await capture_statements(url, settings=settings, coordinator=coordinator)
    position = {"position (people ahead)": statements["position (people ahead)"]}
    before_vacuum = None
    if loaded:  # the state of a table autovacuum has not visited since its rows were written
        connection = await asyncpg.connect(dsn)
        try:
            visibility_unvacuumed = await data.visibility(connection)
        finally:
            await connection.close()
        before_vacuum = await query_plans(dsn, position, generic=False)
        before_vacuum["position (people ahead)"]["note"] = (
            f"{position_note}; freshly loaded and analyzed, not yet vacuumed: "
            f"{visibility_unvacuumed['all_visible_pages']:,} of {visibility_unvacuumed['heap_pages']:,} heap pages all-visible"
        )
    log("VACUUM (ANALYZE) ...")
    step = time.perf_counter()
    visibility_before = await data.vacuum_analyze(dsn)
    data_source += f"; VACUUM (ANALYZE) before measuring took {time.perf_counter() - step:.1f} s"
    facts = await dataset_facts(dsn)
    facts["visibility before measuring"] = visibility_before
    plans = await query_plans(dsn, statements)
    plans["position (people ahead)"]["note"] = position_note
    log("starting uvicorn ...")
    series: list[Series] = []
    async with running_server(url, workers=args.server_workers) as server:
        c = args.concurrency
        log(f"joins: {args.joins} after {args.warmup} warm-up, concurrency {c} ...")
        series.append(await measure_joins(server, name="join", requests=args.joins, warmup=args.warmup, concurrency=c, rng=rng))
        log("position lookups, California ...")
        series.append(
            await measure_lookups(
                server, name="position lookup, CA (largest queue)", tokens=tokens["CA"], warmup=args.warmup, concurrency=c
            )
        )
        log("position lookups, whole list ...")
        series.append(
            await measure_lookups(
                server, name="position lookup, random entries of all states", tokens=tokens["all"], warmup=args.warmup, concurrency=c
            )
        )
        if args.serial:
            log(f"the same one at a time ({args.serial} each) ...")
            series.append(await measure_joins(server, name="join, one at a time", requests=args.serial, warmup=20, concurrency=1, rng=rng))
            series.append(
                await measure_lookups(
                    server, name="position lookup, CA, one at a time", tokens=tokens["CA serial"], warmup=20, concurrency=1
                )
            )
            series.append(
                await measure_lookups(
                    server, name="position lookup, all states, one at a time", tokens=tokens["all serial"], warmup=20, concurrency=1
                )
            )
        log(f"invite-next: {args.invite_runs} runs of {args.invite_count} ...")
        series.append(await measure_invites(url, args, settings=settings, coordinator=coordinator))
        if args.contention_joins:
            log(f"joins ({args.contention_joins}) while invite-next runs back to back ...")
            series.append(await measure_joins_during_invitations(url, server, args, settings=settings, coordinator=coordinator, rng=rng))
    log("query plan after the run's writes (ANALYZE, no VACUUM) ...")
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("ANALYZE waitlist_entry")
        visibility_after = await data.visibility(connection)
    finally:
        await connection.close()
    after = await query_plans(dsn, position, generic=False)
    after["position (people ahead)"]["note"] = (
        f"{position_note}; after this run's joins and invitations and an ANALYZE (no VACUUM): "
        f"{visibility_after['all_visible_pages']:,} of {visibility_after['heap_pages']:,} heap pages all-visible"
    )
    results = [one.summary() for one in series]
    targets = [
        {"operation": row["operation"], "p95_ms": row["p95_ms"], "target_ms": target, "met": row["p95_ms"] < target and not row["errors"]}
        for row in results
        for key, target in TARGETS_MS.items()
        if row["operation"].startswith(key) and "while" not in row["operation"]  # contention is reported, not judged
    ]
    report = {
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m benchmarks " + " ".join(sys.argv[1:]),
        "arguments": vars(args),
        "machine": await machine_facts(dsn),
        "dataset": facts,
        "data_source": data_source,
        "results": results,
        "targets": targets,
        "plans": plans,
        "plans_after_run": after,
        "plans_before_vacuum": before_vacuum,
        "visibility_after_run": visibility_after,
        "total_seconds": time.perf_counter() - began,
    }
    print(markdown_report(report))
    if args.json_path:
        with open(args.json_path, "w") as out:
            json.dump(report, out, indent=2, default=str)
    log(f"done in {report['total_seconds']:.0f} s")
    return 0 if all(not row["errors"] for row in results) else 1
