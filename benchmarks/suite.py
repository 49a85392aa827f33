"""Every scenario against its two ceilings, in one run, written into docs/benchmarks.md.

    python -m benchmarks suite [--soak-minutes 10] [--write docs/benchmarks.md]

Three groups, each on its own benchmark database and `uvicorn app:app` subprocess (server.py: production
settings, no access log, no in-process worker), the load generator being this process:

1. Waiting list (waitlist_data.py, --entries, default 1,000,000): GET /health (the framework's ceiling),
   joins and position lookups, with 8 in flight.
2. Scheduling (scheduling_data.py: 200 prescribers in the state, 5,000 appointments; the fake Stripe API
   in a subprocess): GET /health at 8 and 50 in flight, slot search, the patient's home page (the
   dashboard), bookings of distinct free slots by 8 clients at once (after --warmup unmeasured ones, as every
   phase warms up), the 50-client race for 10 slots, and
   then a mixed load for --soak-minutes while each app process's resident memory is sampled.
3. Stripe webhooks (webhooks_data.py: payments made in the fake Stripe API): --events distinct signed
   events plus 30% repeats, shuffled, 8 in flight.

Requests go out through rawhttp.py (prepared bytes on keep-alive connections), so the load generator costs
a fraction of a millisecond per request. The app runs as --server-workers uvicorn processes (default 2, one
per CPU), each on its own port, and the load generator spreads its connections over them in turn, as a
load balancer does (server.py says why not `uvicorn --workers`).

After each group's server has stopped, the statements of one request per pgbench client are captured for
each scenario (ceilings.py) and pgbench replays them with the same number of connections for the
database's ceiling. Each scenario's throughput is reported as a share of both ceilings. The booking's share of its
database ceiling, a target, is also taken with both over the same minutes: the app's bookings and pgbench's
replays in turns (share.py).

The third ceiling, the stack floor (floor.py, issue 24): the same captured statements replayed by raw asyncpg
from a trivial Litestar endpoint (floor_app.py) under the same uvicorn settings, client and in-flight count;
each scenario's app CPU per request is reported over the floor's ("app CPU over floor"), both measured while the
app (started again) and the floor take turns, batch by batch (phases.drive_in_turns). For the slot search
the floor is joined by the CPU its own algorithm takes (slots.py, timed in-process while capturing).
`python -m benchmarks floor` runs only what the floor needs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from benchmarks import scheduling, scheduling_data, waitlist, waitlist_data, webhooks, webhooks_data
from benchmarks.ceilings import Captured, RequestCapture, database_copy, pgbench
from benchmarks.cpu import describe
from benchmarks.floor import FLOOR_APP, SLOT_SEARCH, CpuTally, floor_capture, over_floor, save_capture
from benchmarks.machine import machine_facts
from benchmarks.phases import Check, drive, drive_in_turns, release_at_once, soak, status_is
from benchmarks.rawhttp import Answer, raw_post, request_bytes
from benchmarks.server import Server, environment, fake_stripe, running_server
from benchmarks.share import BookingShare, booking_share_in_turns, spread_slots
from benchmarks.stats import Series
from benchmarks.waitlist import csrf_client, log
from telehealth.accounts.csrf import issue_token
from telehealth.devtools.stripe_stand_in import sign_payload
from telehealth.scheduling import service as scheduling_service
from telehealth.settings import PROJECT_ROOT, Settings

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
BEGIN_MARK = "<!-- suite:begin (written by `python -m benchmarks suite`; edits between the marks are replaced) -->"
END_MARK = "<!-- suite:end -->"
TARGETS = {  # issue 9 and issue 4
    "booking share of its database ceiling": 0.30,
    "slot search p95 ms": 50.0,
    "dashboard p95 ms": 30.0,
    "memory per app process MB": 200.0,
    "booking race p99 ms": 250.0,
    "app CPU over floor": 2.0,  # issue 24
}
FLOOR_SCENARIOS = ("join", "position lookup", SLOT_SEARCH, "patient dashboard", "booking", "webhook delivery")
SLOT_ALGORITHM = ["open_slots_sorted", "clear_of_busy", "slots_from_calendar", "soonest"]  # the service's calls into slots.py


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url", default=DEFAULT_ADMIN_URL, help="admin connection to the PostgreSQL server (default: %(default)s)"
    )
    parser.add_argument("--entries", type=int, default=1_000_000, help="waiting-list entries (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight, and pgbench connections (default: %(default)s)")
    parser.add_argument("--requests", type=int, default=1000, help="measured requests per scenario and concurrency (default: %(default)s)")
    parser.add_argument("--searches", type=int, default=200, help="measured slot searches (each answers ~1 MB; default: %(default)s)")
    parser.add_argument(
        "--bookings",
        type=int,
        default=190,
        help="measured bookings of distinct free slots, one per prescriber (at most 200; default: %(default)s)",
    )
    parser.add_argument(
        "--events",
        type=int,
        default=1500,
        help="distinct Stripe events: two thirds of the payments' for the webhook phase, a third's for its turns with the "
        "floor (default: %(default)s)",
    )
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured requests before each phase (default: %(default)s)")
    parser.add_argument("--turns", type=int, default=5, help="batches the app and its stack floor take in turns (default: %(default)s)")
    parser.add_argument(
        "--share-bookings",
        type=int,
        default=450,
        help="measured bookings in turns with pgbench, for the booking's share of its database ceiling (default: %(default)s)",
    )
    parser.add_argument("--share-turns", type=int, default=3, help="turns of those bookings and pgbench (default: %(default)s)")
    parser.add_argument("--share-pgbench-seconds", type=int, default=3, help="length of each pgbench turn (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the 50-client booking race (default: %(default)s)")
    parser.add_argument("--pgbench-seconds", type=int, default=15, help="length of each pgbench run (default: %(default)s)")
    parser.add_argument(
        "--soak-minutes", type=float, default=10.0, help="mixed load while memory is sampled (0: skip; default: %(default)s)"
    )
    parser.add_argument(
        "--server-workers",
        type=int,
        default=2,
        help="app processes (uvicorns on ports of their own), one per CPU here (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=42, help="random.seed() (default: %(default)s)")
    parser.add_argument("--only", choices=["waiting-list", "scheduling", "webhooks"], help="run one group (then nothing is written)")
    parser.add_argument(
        "--write",
        default=str(PROJECT_ROOT / "docs" / "benchmarks.md"),
        help="the Markdown file whose suite section is replaced ('-': print only; default: %(default)s)",
    )
    parser.add_argument("--json", dest="json_path", help="also write every figure to this JSON file")
    parser.set_defaults(floor_only=False)  # `python -m benchmarks floor`: only the scenarios with a floor, and the floor


# ------------------------------------------------------------------------------------------ the phases


def scenario(series: Series, *, group: str, concurrency: int, ceiling: str | None) -> dict[str, Any]:
    """A measured phase, with its group (for the framework ceiling) and the pgbench capture it is compared with."""
    return series.summary() | {"group": group, "concurrency": concurrency, "capture": ceiling}


def identity(client: httpx.AsyncClient) -> dict[str, Any]:
    """A signed-in (or only CSRF-holding) httpx client's cookies and CSRF header, for prepared raw requests."""
    cookies = {name: value for name, value in client.cookies.items() if name in {"csrftoken", "th_session"}}
    return {"cookies": cookies, "headers": {"x-csrftoken": cookies["csrftoken"]}}


def is_page(answer: Answer) -> bool:
    return answer.status == 200 and b"<html" in answer.body[:500]


def join_body(tag: str, i: int) -> dict[str, Any]:
    return {
        "first_name": "Bench",
        "last_name": f"Joiner {i}",
        "email": f"suite-{tag}-{i}@bench.example.com",
        "state": "CA",
        "date_of_birth": "1984-06-15",
        "consent_to_contact": True,
        "phone": "+12125550123",
        "conditions": ["anxiety"],
    }


def join_request(base: str, who: dict[str, Any], tag: str, i: int) -> bytes:
    address = f"10.{1 + (i >> 16) % 200}.{(i >> 8) & 255}.{i & 255}"  # many networks, as real sign-ups
    headers = who["headers"] | {"x-forwarded-for": address}
    return request_bytes(base, "POST", "/api/v1/waitlist/", json_body=join_body(tag, i), cookies=who["cookies"], headers=headers)


def search_params() -> dict[str, str]:
    now = datetime.now(UTC)
    return {"type": "consult", "from": scheduling.iso(now), "to": scheduling.iso(now + timedelta(days=14))}


def booking_body(slot: scheduling.OpenSlot) -> dict[str, str]:
    return {"type": "consult", "clinician_id": slot.clinician_id, "starts_at": scheduling.iso(slot.starts_at)}


def booking_requests(base: str, slots: list[scheduling.OpenSlot], bookers: list[int], racers: list[dict[str, Any]]) -> list[bytes]:
    """Each slot's booking by its patient (booking_plan's choice, one of the racers)."""
    return [
        request_bytes(base, "POST", "/api/v1/appointments", json_body=booking_body(slot), **racers[k])
        for slot, k in zip(slots, bookers, strict=True)
    ]


def booking_plan(slots: list[scheduling.OpenSlot], wins: list[list[datetime]]) -> list[int]:
    """For each slot, a client it overlaps nothing of (round robin), recording the win."""
    who: list[int] = []
    for number, slot in enumerate(slots):
        for shift in range(len(wins)):
            k = (number + shift) % len(wins)
            if scheduling.clear_of(slot.starts_at, wins[k]):
                who.append(k)
                wins[k].append(slot.starts_at)
                break
        else:
            raise RuntimeError("no client is free for a slot")
    return who


async def race(
    server: Server,
    racers: list[dict[str, Any]],
    search: httpx.AsyncClient,
    *,
    rounds: int,
    slots_per_round: int,
    rng: random.Random,
    wins: list[list[datetime]],
) -> tuple[Series, list[str]]:
    """Every racer books one of the round's open slots, all released at once; then exactly one held or booked
    appointment per slot must exist and every other answer must be 409. Round 0 is checked but not measured,
    like every phase's warm-up requests: it fills each process's pool to its 15 connections, each preparing
    the booking's statements once, as any server's first minutes of service do."""
    series = Series(f"booking, {len(racers)} clients racing for {slots_per_round} slots ({rounds} rounds)")
    problems: list[str] = []
    cpu: dict[str, float] = {}
    for number in range(0, rounds + 1):
        slots = scheduling.choose_slots(await scheduling.fresh_slots(search, days_ahead=number), slots_per_round, rng=rng)
        plan = scheduling.assign(slots, wins, rng=rng)
        order = sorted(plan)
        requests = [
            request_bytes(server.base_url, "POST", "/api/v1/appointments", json_body=booking_body(slots[plan[k]]), **racers[k])
            for k in order
        ]
        outcomes, split, wall = await release_at_once(server, requests)
        measured = number > 0
        for key, value in split.items() if measured else ():
            cpu[key] = cpu.get(key, 0.0) + value
        statuses = Counter(status for status, _, _ in outcomes)
        for k, (status, seconds, _) in zip(order, outcomes, strict=True):
            if status in (201, 409):
                series.seconds.extend([seconds] if measured else [])
            else:
                series.errors += 1
            if status == 201:
                wins[k].append(slots[plan[k]].starts_at)
        series.wall_seconds += wall if measured else 0.0
        taken = sum(1 for row in await scheduling.appointments_at(server.dsn, slots) if row["status"] in scheduling.OCCUPYING)
        if taken != len(slots) or statuses.get(201) != len(slots) or statuses.get(409) != len(racers) - len(slots):
            problems.append(f"round {number}: answers {dict(statuses)}, {taken} held or booked rows for {len(slots)} slots")
        log(f"  round {number}{'' if measured else ' (warm-up)'}: {dict(statuses)} in {wall * 1000:.0f} ms; held or booked rows {taken}")
    series.notes["cpu"] = describe(cpu, len(racers) * rounds)
    series.notes["concurrency"] = len(racers)
    return series, problems


# ------------------------------------------------------------------------------------------- the groups


async def waiting_list_group(args: argparse.Namespace, report: dict[str, Any]) -> None:
    name = "telehealth_bench_suite_waitlist"
    url = waitlist_data.database_url(args.database_url, name)
    dsn = waitlist_data.plain_dsn(url)
    settings = Settings(environment="development", database_url=url, auto_migrate=False, seed_demo=False, run_worker_in_process=False)
    log(f"waiting list: loading {args.entries:,} entries ...")
    timings = await waitlist_data.load(args.database_url, name, entries=args.entries, seed=0.42, settings=settings, log=log)
    await waitlist_data.vacuum_analyze(dsn)
    report["data"]["waiting list"] = await waitlist.dataset_facts(dsn) | {"load seconds": round(sum(timings.values()), 1)}
    c, n, warm = args.concurrency, args.requests, args.warmup
    tokens = await waitlist.make_links(dsn, state=None, count=n + warm + c)
    rows, group = report["scenarios"], "waiting list"
    async with running_server(url, workers=args.server_workers, separate_ports=True) as server:
        base = server.base_url
        anonymous = await csrf_client(base, 1)
        who = identity(anonymous)
        await anonymous.aclose()
        tag = uuid.uuid4().hex[:8]
        log("waiting list: /health, joins, lookups ...")
        health = [request_bytes(base, "GET", "/health")] * (n + warm)
        rows.append(
            scenario(
                await drive(server, "GET /health (framework ceiling)", health, concurrency=c, check=status_is(200), warmup=warm),
                group=group,
                concurrency=c,
                ceiling=None,
            )
        )
        joins = [join_request(base, who, tag, i) for i in range(n + warm)]
        rows.append(
            scenario(
                await drive(server, "waiting list: join", joins, concurrency=c, check=status_is(202), warmup=warm),
                group=group,
                concurrency=c,
                ceiling="join",
            )
        )
        lookups = [request_bytes(base, "POST", "/api/v1/waitlist/status", json_body={"token": token}, **who) for token in tokens[c:]]
        rows.append(
            scenario(
                await drive(server, "waiting list: position lookup", lookups, concurrency=c, check=status_is(200), warmup=warm),
                group=group,
                concurrency=c,
                ceiling="position lookup",
            )
        )
    log("waiting list: capturing the statements and running pgbench ...")
    async with database_copy(waitlist_data.plain_dsn(args.database_url), name) as copy:
        capture = RequestCapture(
            replace(settings, database_url=waitlist_data.database_url(args.database_url, copy), waitlist_joins_per_ip_per_hour=10**8)
        )
        async with capture.client() as client:

            def join(i: int) -> Callable[[httpx.AsyncClient], Awaitable[bool]]:
                async def call(client: httpx.AsyncClient) -> bool:
                    return (await client.post("/api/v1/waitlist/", json=join_body(tag + "c", i))).status_code == 202

                return call

            def lookup(token: str) -> Callable[[httpx.AsyncClient], Awaitable[bool]]:
                async def call(client: httpx.AsyncClient) -> bool:
                    return (await client.post("/api/v1/waitlist/status", json={"token": token})).status_code == 200

                return call

            captures = [
                await capture.capture("join", client, [join(i) for i in range(c)]),
                await capture.capture("position lookup", client, [lookup(token) for token in tokens[:c]]),
            ]
    app = AppTurns(
        url,
        {
            "join": lambda base: [join_request(base, who, tag + "t", i) for i in range(n + warm)],
            "position lookup": lambda base: [
                request_bytes(base, "POST", "/api/v1/waitlist/status", json_body={"token": token}, **who) for token in tokens[c:]
            ],
        },
        {"join": status_is(202), "position lookup": status_is(200)},
    )
    await database_ceilings(report, captures, dsn=dsn, group=group, args=args, app=app)


async def scheduling_group(args: argparse.Namespace, report: dict[str, Any]) -> None:
    name = "telehealth_bench_suite_scheduling"
    url = scheduling_data.database_url(args.database_url, name)
    dsn = scheduling_data.plain_dsn(url)
    settings = Settings(environment="development", database_url=url, auto_migrate=False, seed_demo=False, run_worker_in_process=False)
    c, n, warm = args.concurrency, args.requests, args.warmup
    log("scheduling: loading 200 prescribers and 5,000 appointments ...")
    dataset = await scheduling_data.load(
        args.database_url,
        name,
        state="CA",
        prescribers=200,
        other_prescribers=100,
        appointments=5000,
        background_patients=2000,
        search_patients=c,
        race_patients=50,
        days=14,
        seed=args.seed,
        log=log,
    )
    report["data"]["scheduling"] = dataset.facts
    rng = random.Random(args.seed)
    rows, group = report["scenarios"], "scheduling"
    wins: list[list[datetime]] = [[] for _ in dataset.race_emails]
    stripe_env = scheduling.SERVER_EXTRA_ENV | {"STRIPE_API_KEY": "sk_test_benchmark"}
    with fake_stripe() as (stripe_base, _), environment(stripe_env | {"STRIPE_API_BASE": stripe_base}):
        async with running_server(url, workers=args.server_workers, separate_ports=True) as server:
            base = server.base_url
            signed_in = await scheduling.sign_in_all(base, dataset.search_emails + dataset.race_emails)
            patients = [identity(client) for client in signed_in]
            searchers, racers = patients[:c], patients[c:]
            search_client = signed_in[0]
            try:
                log("scheduling: /health, slot search, dashboard ...")
                for concurrency in (c,) if args.floor_only else (c, len(racers)):
                    health = [request_bytes(base, "GET", "/health")] * (n + warm)
                    rows.append(
                        scenario(
                            await drive(
                                server,
                                "GET /health (framework ceiling)",
                                health,
                                concurrency=concurrency,
                                check=status_is(200),
                                warmup=warm,
                            ),
                            group=group,
                            concurrency=concurrency,
                            ceiling=None,
                        )
                    )
                for concurrency in (c,) if args.floor_only else (1, c):
                    searches = [
                        request_bytes(base, "GET", "/api/v1/slots", params=search_params(), **searchers[i % c])
                        for i in range(args.searches + warm // 5)
                    ]
                    rows.append(
                        scenario(
                            await drive(
                                server, "slot search, 14 days", searches, concurrency=concurrency, check=status_is(200), warmup=warm // 5
                            ),
                            group=group,
                            concurrency=concurrency,
                            ceiling="slot search",
                        )
                    )
                for concurrency in (c,) if args.floor_only else (1, c):
                    homes = [request_bytes(base, "GET", "/patient", **searchers[i % c]) for i in range(n + warm)]
                    rows.append(
                        scenario(
                            await drive(
                                server, "patient dashboard (GET /patient)", homes, concurrency=concurrency, check=is_page, warmup=warm
                            ),
                            group=group,
                            concurrency=concurrency,
                            ceiling="patient dashboard",
                        )
                    )
                log(f"scheduling: {args.bookings} bookings of distinct free slots, {c} at once, after {warm} unmeasured ...")
                # The warm-up books slots days after the measured ones, as every other phase warms up: each pooled
                # connection prepares the booking's statements on its first booking, and the floor's are warm.
                later = await scheduling.fresh_slots(search_client, days_ahead=args.rounds + 12)
                warm_slots = scheduling.choose_slots(later, warm, rng=rng)
                slots = scheduling.choose_slots(
                    await scheduling.fresh_slots(search_client, days_ahead=args.rounds + 4), args.bookings, rng=rng
                )
                booked = [*warm_slots, *slots]
                bookings = booking_requests(base, booked, booking_plan(booked, wins), racers)
                rows.append(
                    scenario(
                        await drive(server, "booking, distinct free slots", bookings, concurrency=c, check=status_is(201), warmup=warm),
                        group=group,
                        concurrency=c,
                        ceiling="booking",
                    )
                )
                # Free slots for the booking's turns with its stack floor (stack_floors), days after every other phase's,
                # the measured ones over two windows: 190 in one would put too many at the same hours for 50 patients.
                turn_slots = [
                    *scheduling.choose_slots(await scheduling.fresh_slots(search_client, days_ahead=args.rounds + 22), warm, rng=rng),
                    *scheduling.choose_slots(
                        await scheduling.fresh_slots(search_client, days_ahead=args.rounds + 16), args.bookings // 2, rng=rng
                    ),
                    *scheduling.choose_slots(
                        await scheduling.fresh_slots(search_client, days_ahead=args.rounds + 19),
                        args.bookings - args.bookings // 2,
                        rng=rng,
                    ),
                ]
                turn_bookers = booking_plan(turn_slots, wins)
                if not args.floor_only:
                    log(f"scheduling: the race, {args.rounds} rounds of {len(racers)} clients on 10 slots ...")
                    race_series, report["race problems"] = await race(
                        server, racers, search_client, rounds=args.rounds, slots_per_round=10, rng=rng, wins=wins
                    )
                    rows.append(scenario(race_series, group=group, concurrency=len(racers), ceiling="booking race"))
                capture_slots = scheduling.choose_slots(await scheduling.fresh_slots(search_client, days_ahead=args.rounds + 8), c, rng=rng)
                if args.soak_minutes:
                    log(f"soak: {args.soak_minutes:g} minutes of mixed load ...")
                    tag = uuid.uuid4().hex[:8]
                    kinds: list[Callable[[int], tuple[bytes, Check]]] = [
                        lambda i: (request_bytes(base, "GET", "/api/v1/slots", params=search_params(), **searchers[i % c]), status_is(200)),
                        lambda i: (request_bytes(base, "GET", "/patient", **searchers[i % c]), is_page),
                        lambda i: (join_request(base, searchers[i % c], tag, i), status_is(202)),
                        lambda i: (request_bytes(base, "GET", "/health"), status_is(200)),
                        lambda i: (request_bytes(base, "GET", "/appointments", **searchers[i % c]), is_page),
                    ]
                    report["soak"] = await soak(server, lambda i: kinds[i % len(kinds)](i), minutes=args.soak_minutes, concurrency=c)
            finally:
                for client in signed_in:
                    await client.aclose()
        log("scheduling: capturing the statements and running pgbench ...")
        async with database_copy(scheduling_data.plain_dsn(args.database_url), name) as copy:
            capture = RequestCapture(
                replace(
                    settings,
                    database_url=scheduling_data.database_url(args.database_url, copy),
                    stripe_api_base=stripe_base,
                    stripe_api_key="sk_test_benchmark",
                )
            )
            async with capture.client() as client:

                def as_patient(
                    who: dict[str, Any], method: str, path: str, expected: int, **more: Any
                ) -> Callable[[httpx.AsyncClient], Awaitable[bool]]:
                    async def call(client: httpx.AsyncClient) -> bool:
                        # The CSRF token is bound to the session and signed with this app's secret, not the server's.
                        token = issue_token(capture.settings.secret_key, who["cookies"]["th_session"])
                        client.cookies.clear()
                        client.cookies.set("th_session", who["cookies"]["th_session"])
                        client.cookies.set("csrftoken", token)
                        response = await client.request(method, path, headers={"x-csrftoken": token}, **more)
                        if response.status_code != expected:
                            log(f"  {method} {path}: {response.status_code} {response.text[:300]}")
                        return response.status_code == expected

                    return call

                captures = [
                    await capture.capture(
                        "slot search", client, [as_patient(who, "GET", "/api/v1/slots", 200, params=search_params()) for who in searchers]
                    ),
                    await capture.capture("patient dashboard", client, [as_patient(who, "GET", "/patient", 200) for who in searchers]),
                    await capture.capture(
                        "booking",
                        client,
                        [
                            as_patient(who, "POST", "/api/v1/appointments", 201, json=booking_body(slot))
                            for who, slot in zip(racers, capture_slots, strict=False)
                        ],
                    ),
                ]
                report["slot algorithm cpu ms"] = await slot_algorithm_cpu(
                    [as_patient(who, "GET", "/api/v1/slots", 200, params=search_params()) for who in searchers * 5], client
                )
        app = AppTurns(
            url,
            {
                "slot search": lambda base: [
                    request_bytes(base, "GET", "/api/v1/slots", params=search_params(), **searchers[i % c])
                    for i in range(args.searches + warm)
                ],
                "patient dashboard": lambda base: [request_bytes(base, "GET", "/patient", **searchers[i % c]) for i in range(n + warm)],
                "booking": lambda base: booking_requests(base, turn_slots, turn_bookers, racers),
            },
            {"slot search": status_is(200), "patient dashboard": is_page, "booking": status_is(201)},
        )

        async def share_bookings(base: str) -> list[bytes]:
            # Chosen when the turns start, from what is free then (every earlier phase has booked), in windows apart
            # from each other so no slot is offered twice. A window's soonest 2,000 free slots are a morning's 2.5
            # hours of each prescriber: 50 patients fit about 165 consults in one, so the bookings take eight.
            async with httpx.AsyncClient(base_url=base, timeout=60, **searchers[0]) as client:
                offered = [slot for days in range(5, 27, 3) for slot in await scheduling.fresh_slots(client, days_ahead=days)]
            slots = spread_slots(offered, args.share_bookings + warm, rng=rng)
            return booking_requests(base, slots, booking_plan(slots, wins), racers)

        share = BookingShare(url, share_bookings, status_is(201))
        await database_ceilings(report, captures, dsn=dsn, group=group, args=args, app=app, share=share)


async def webhooks_group(args: argparse.Namespace, report: dict[str, Any]) -> None:
    """Signed Stripe deliveries, 30% of them repeats, shuffled; the events of `concurrency` payments are kept
    back for the capture, so pgbench replays deliveries the benchmark database has never acted on."""
    name = "telehealth_bench_suite_webhooks"
    url = waitlist_data.database_url(args.database_url, name)
    dsn = waitlist_data.plain_dsn(url)
    settings = Settings(environment="development", database_url=url, auto_migrate=False, seed_demo=False, run_worker_in_process=False)
    c, rng, group = args.concurrency, random.Random(args.seed), "Stripe webhooks"
    secret = f"whsec_benchmark_{secrets.token_hex(16)}"
    with fake_stripe() as (stripe_base, _):
        log(f"webhooks: {args.events} distinct events in the fake Stripe and the database ...")
        dataset = await webhooks_data.load(
            args.database_url,
            name,
            stripe_base,
            distinct_events=args.events,
            paid_share=0.70,
            refund_share=0.25,
            second_refund_share=0.30,
            full_refund_share=0.40,
            dispute_share=0.06,
            amount_cents=webhooks_data.CONSULT_FEE_CENTS,
            prescribers=20,
            seed=args.seed,
            log=log,
        )
        report["data"]["webhooks"] = dataset.facts
        payments = list(dict.fromkeys(event.payment for event in dataset.events))
        kept = payments[:c]
        kept_back = [next(e for e in dataset.events if e.payment == payment) for payment in sorted(kept)]
        # A third of the other payments' events are kept for the app's turns with its stack floor (stack_floors),
        # delivered the same way: every event once, 30% repeated, shuffled.
        for_turns = set(payments[c:][::3])
        events = [event for event in dataset.events if event.payment not in kept and event.payment not in for_turns]
        turn_events = [event for event in dataset.events if event.payment in for_turns]
        sent = webhooks.deliveries(events, repeats=round(len(events) * 0.3), rng=rng)
        turns_sent = webhooks.deliveries(turn_events, repeats=round(len(turn_events) * 0.3), rng=rng)
        warm = webhooks.warmup_events(args.warmup)

        def signed(event: webhooks_data.Event) -> tuple[bytes, dict[str, str]]:
            payload = json.dumps(event.body).encode()
            return payload, {
                "stripe-signature": sign_payload(payload.decode(), secret, int(time.time())),
                "content-type": "application/json",
            }

        with environment({"STRIPE_API_BASE": stripe_base, "STRIPE_API_KEY": "sk_test_benchmark", "STRIPE_WEBHOOK_SECRET": secret}):
            async with running_server(url, workers=args.server_workers, separate_ports=True) as server:
                log(f"webhooks: {len(sent)} deliveries ({len(sent) - len(events)} repeats), {c} in flight ...")
                requests = []
                for event in [*warm, *(delivery.event for delivery in sent)]:
                    payload, headers = signed(event)
                    requests.append(raw_post(server.base_url, webhooks.WEBHOOK, payload, headers))
                series = await drive(server, "Stripe webhook delivery", requests, concurrency=c, check=status_is(200), warmup=len(warm))
                report["scenarios"].append(scenario(series, group=group, concurrency=c, ceiling="webhook delivery"))
        log("webhooks: capturing the statements and running pgbench ...")
        async with database_copy(waitlist_data.plain_dsn(args.database_url), name) as copy:
            capture = RequestCapture(
                replace(
                    settings,
                    database_url=waitlist_data.database_url(args.database_url, copy),
                    stripe_api_base=stripe_base,
                    stripe_api_key="sk_test_benchmark",
                    stripe_webhook_secret=secret,
                )
            )
            async with capture.client() as client:

                def deliver(event: webhooks_data.Event) -> Callable[[httpx.AsyncClient], Awaitable[bool]]:
                    async def call(client: httpx.AsyncClient) -> bool:
                        payload, headers = signed(event)
                        return (await client.post(webhooks.WEBHOOK, content=payload, headers=headers)).status_code == 200

                    return call

                captures = [await capture.capture("webhook delivery", client, [deliver(event) for event in kept_back])]

        def turn_requests(base: str) -> list[bytes]:
            return [raw_post(base, webhooks.WEBHOOK, *signed(event)) for event in [*warm, *(d.event for d in turns_sent)]]

        with environment({"STRIPE_API_BASE": stripe_base, "STRIPE_API_KEY": "sk_test_benchmark", "STRIPE_WEBHOOK_SECRET": secret}):
            app = AppTurns(url, {"webhook delivery": turn_requests}, {"webhook delivery": status_is(200)})
            await database_ceilings(report, captures, dsn=dsn, group=group, args=args, app=app)


async def slot_algorithm_cpu(calls: list[Callable[[httpx.AsyncClient], Awaitable[bool]]], client: httpx.AsyncClient) -> float:
    """The median CPU ms per slot search spent in the algorithm itself (slots.py's functions as the service calls
    them), in-process: the Python a search needs whatever carries its statements."""
    spent = []
    for call in calls:
        with CpuTally(scheduling_service, SLOT_ALGORITHM) as tally:
            if not await call(client):
                raise RuntimeError("a slot search for the algorithm's CPU did not succeed")
        spent.append(tally.seconds * 1000)
    return statistics.median(spent)


@dataclass(frozen=True)
class AppTurns:
    """The app's side of the floor's phase: per captured scenario, its requests (warm-up first) for a server at
    the given base URL, and the answer that counts as done. Requests that change data are fresh ones: joins
    under a tag of their own, free slots and Stripe events the app's own phase never touched."""

    url: str
    requests: dict[str, Callable[[str], list[bytes]]]
    checks: dict[str, Check]


async def stack_floors(
    report: dict[str, Any], captures: list[Captured], *, url: str, group: str, args: argparse.Namespace, app: AppTurns
) -> None:
    """Each captured scenario's statements replayed by raw asyncpg from floor_app.py's endpoint (the stack floor),
    under the same server settings, client and in-flight count as the app, in turns with the app's own requests
    of the scenario (phases.drive_in_turns): the app's CPU per request over the floor's is taken over the same
    minutes."""
    capture = floor_capture([captured for captured in captures if captured.name in FLOOR_SCENARIOS])
    if not capture.scenarios:
        return
    path = Path(tempfile.mkstemp(prefix="bench-floor-", suffix=".pickle")[1])
    save_capture(capture, path)
    c, warm = args.concurrency, args.warmup
    try:
        async with running_server(app.url, workers=args.server_workers, separate_ports=True) as app_server:
            with environment({"FLOOR_CAPTURE": str(path)}):
                async with running_server(url, workers=args.server_workers, separate_ports=True, app=FLOOR_APP) as server:
                    for captured in captures:
                        if captured.name not in FLOOR_SCENARIOS:
                            continue
                        own = app.requests[captured.name](app_server.base_url)
                        count = len(own) - warm
                        log(
                            f"  stack floor: {captured.name} ({captured.statements_per_request:.1f} statements per request), "
                            f"{c} in flight, in {args.turns} turns with the app's ..."
                        )
                        replays = [request_bytes(server.base_url, "GET", capture.path(captured.name, i)) for i in range(count + warm)]
                        mine, floor = await drive_in_turns(
                            [
                                (app_server, captured.name, own, app.checks[captured.name]),
                                (server, f"stack floor: {captured.name}", replays, status_is(200)),
                            ],
                            concurrency=c,
                            warmup=warm,
                            turns=args.turns,
                        )
                        report["floors"][captured.name] = floor.summary() | {
                            "group": group,
                            "statements": captured.statements_per_request,
                            "app": mine.summary(),
                        }
    finally:
        path.unlink(missing_ok=True)


async def database_ceilings(
    report: dict[str, Any],
    captures: list[Captured],
    *,
    dsn: str,
    group: str,
    args: argparse.Namespace,
    app: AppTurns,
    share: BookingShare | None = None,
) -> None:
    await stack_floors(report, captures, url=dsn, group=group, args=args, app=app)
    booking = next((captured for captured in captures if captured.name == "booking"), None)
    if share and booking and not args.floor_only:
        c, turns = args.concurrency, args.share_turns
        log(f"  the booking's share: {args.share_bookings} bookings and pgbench, {c} in flight, in {turns} turns ...")
        report["booking share in turns"] = await booking_share_in_turns(
            share,
            booking,
            dsn=dsn,
            workers=args.server_workers,
            concurrency=c,
            warmup=args.warmup,
            turns=turns,
            pgbench_seconds=args.share_pgbench_seconds,
        )
    for captured in captures if not args.floor_only else ():
        log(f"  pgbench: {captured.name} ({captured.statements_per_request:.1f} statements per request), {args.concurrency} clients ...")
        result = await pgbench(dsn, captured, clients=args.concurrency, seconds=args.pgbench_seconds)
        report["ceilings"][captured.name] = result.as_dict() | {
            "group": group,
            "statements": captured.statements_per_request,
            "clients": args.concurrency,
        }


# ------------------------------------------------------------------------------------------- the report


def ratios(report: dict[str, Any]) -> None:
    """Each scenario's throughput over the framework's ceiling at the same concurrency, and over its own pgbench."""
    framework: dict[int, float] = {}  # the best GET /health throughput at each in-flight count, whichever group measured it
    for row in report["scenarios"]:
        if row["capture"] is None:
            framework[row["concurrency"]] = max(framework.get(row["concurrency"], 0.0), row["per_second"])
    for row in report["scenarios"]:
        ceiling = framework.get(row["concurrency"])
        row["framework_share"] = row["per_second"] / ceiling if ceiling and row["capture"] else None
        database = report["ceilings"].get(row["capture"] or "")
        same_connections = database and database["clients"] == row["concurrency"]
        row["database_share"] = row["per_second"] / database["tps"] if same_connections else None
        # What the database spends on a replay over what it spends on one of the app's requests: the share of the
        # database's ceiling the scenario reaches once the app has CPUs of its own (production: app instances on
        # machines of their own, one PostgreSQL), where here both share two CPUs.
        app_cpu, replay_cpu = row.get("postgres_cpu_ms"), database.get("postgres_cpu_ms") if database else None
        row["database_cpu_share"] = replay_cpu / app_cpu if same_connections and app_cpu and replay_cpu else None
        floor = report.get("floors", {}).get(row["capture"] or "")
        if floor and floor["concurrency"] == row["concurrency"]:
            # The app's CPU from its turns beside the floor, not from its own phase minutes before.
            extra = report.get("slot algorithm cpu ms", 0.0) if row["capture"] == SLOT_SEARCH else 0.0
            row["floor_cpu_ms"], row["algorithm_cpu_ms"] = floor["app_cpu_ms"], extra
            row["app_cpu_ms_in_turns"] = floor["app"]["app_cpu_ms"]
            row["over_floor"] = over_floor(row["app_cpu_ms_in_turns"], floor["app_cpu_ms"], extra)


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = report["scenarios"]

    def find(operation: str, concurrency: int) -> dict[str, Any]:
        return next(row for row in rows if row["operation"].startswith(operation) and row["concurrency"] == concurrency)

    c = report["arguments"]["concurrency"]
    booking = find("booking, distinct", c)
    wanted = TARGETS["booking share of its database ceiling"]
    in_turns = report.get("booking share in turns")
    out = [
        {
            "what": f"booking throughput, {c} in flight, as a share of its database ceiling (app and PostgreSQL on the same CPUs), "
            "both taken in turns",
            "value": in_turns["share"] if in_turns else None,
            "target": wanted,
            "unit": "share",
            "met": bool(in_turns) and in_turns["share"] >= wanted and not in_turns["errors"],
        },
        {
            "what": "the same with the app on CPUs of its own: PostgreSQL CPU per replayed booking over per app booking",
            "value": booking["database_cpu_share"],
            "target": wanted,
            "unit": "share",
            "met": (booking["database_cpu_share"] or 0) >= wanted,
        },
    ]
    for operation, key in (("slot search", "slot search p95 ms"), ("patient dashboard", "dashboard p95 ms")):
        for concurrency in (1, c):
            row = find(operation, concurrency)
            out.append(
                {
                    "what": f"{operation} p95, {concurrency} in flight",
                    "value": row["p95_ms"],
                    "target": TARGETS[key],
                    "unit": "ms",
                    "met": row["p95_ms"] < TARGETS[key] and not row["errors"],
                }
            )
    race = find("booking, 50 clients", 50)
    out.append(
        {
            "what": "booking race p99 (issue 4), 50 clients on 10 slots",
            "value": race["p99_ms"],
            "target": TARGETS["booking race p99 ms"],
            "unit": "ms",
            "met": race["p99_ms"] < TARGETS["booking race p99 ms"] and not report["race problems"],
        }
    )
    if "soak" in report:
        last = max(report["soak"]["rss_mb"][-1][1])
        out.append(
            {
                "what": f"resident memory of the largest app process after {report['soak']['minutes']:g} minutes of load",
                "value": last,
                "target": TARGETS["memory per app process MB"],
                "unit": "MB",
                "met": last < TARGETS["memory per app process MB"],
            }
        )
    return out


def floor_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """App CPU per request within TARGETS["app CPU over floor"] times the stack floor's, each scenario that has one."""
    wanted = TARGETS["app CPU over floor"]
    return [
        {
            "what": f"{row['operation']}, {row['concurrency']} in flight: app CPU per request over the stack floor's"
            + (" plus the algorithm's" if row["algorithm_cpu_ms"] else ""),
            "value": row["over_floor"],
            "target": wanted,
            "unit": "x",
            "met": row["over_floor"] is not None and row["over_floor"] <= wanted,
        }
        for row in report["scenarios"]
        if "over_floor" in row
    ]


def _ms(value: float | None, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if value is not None else "-"


def _share(value: float | None) -> str:
    return f"{value:.0%}" if value is not None else "-"


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "## The whole suite against its ceilings",
        "",
        f"Written by `{report['command']}` on {report['finished_at']} ({report['total_seconds'] / 60:.0f} minutes). "
        "How it works: the docstrings of `benchmarks/suite.py` and `benchmarks/ceilings.py`; what the scenarios do is described "
        'in the sections below. Milliseconds; "per second" is completed requests over the phase\'s wall time.',
        "",
        *[f"**Group {name} failed:** {reason}\n" for name, reason in report.get("failed groups", {}).items()],
        "| machine | |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in report["machine"].items()],
        "",
        "### Targets",
        "",
        "| target | measured | wanted | met |",
        "|---|---:|---:|---|",
    ]
    for target in report["targets"]:
        if target["unit"] == "x":
            shown = f"{target['value']:.2f}x" if target["value"] is not None else "-"
            wanted = f"{target['target']:g}x or less"
        elif target["unit"] == "share":
            shown, wanted = _share(target["value"]), _share(target["target"]) + " or more"
        else:
            shown, wanted = f"{target['value']:.1f} {target['unit']}", f"under {target['target']:g} {target['unit']}"
        lines.append(f"| {target['what']} | {shown} | {wanted} | {'yes' if target['met'] else '**no**'} |")
    lines += [
        "",
        "### Scenarios, the framework's ceiling and the database's",
        "",
        '"of framework": this throughput over GET /health\'s (same server, client and in-flight count: the whole '
        'middleware stack, no database). "of database": over pgbench replaying this scenario\'s own statements with '
        "the same number of connections (table below). A read-heavy scenario can show more than 100% of its database ceiling "
        'when the app answers from fewer round trips than the replay\'s BEGIN and ROLLBACK add. "of database CPU": '
        "PostgreSQL's CPU per replayed transaction over its CPU per request of the app, the share of the database's ceiling "
        "the scenario would reach with the app on CPUs of its own (here the app and PostgreSQL share the machine's).",
        "",
        "| group | scenario | in flight | count | errors | p50 | p95 | p99 | per second | of framework | of database | of database CPU |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["scenarios"]:
        lines.append(
            f"| {row['group']} | {row['operation']} | {row['concurrency']} | {row['count']} | {row['errors']} | {row['p50_ms']:.1f} | "
            f"{row['p95_ms']:.1f} | {row['p99_ms']:.1f} | {row['per_second']:.1f} | {_share(row['framework_share'])} | "
            f"{_share(row['database_share'])} | {_share(row.get('database_cpu_share'))} |"
        )
    lines += ["", "CPU per request (app server, PostgreSQL, load generator), from `/proc`:", ""]
    lines += [f"- {row['group']}, {row['operation']}, {row['concurrency']} in flight: {row.get('cpu', '-')}" for row in report["scenarios"]]
    lines += [
        "",
        "| pgbench ceiling | statements per transaction | connections | transactions per second | mean latency ms | "
        "PostgreSQL CPU ms per transaction | failed |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, ceiling in report["ceilings"].items():
        cpu = f"{ceiling['postgres_cpu_ms']:.2f}" if ceiling.get("postgres_cpu_ms") else "-"
        lines.append(
            f"| {name} | {ceiling['statements']:.0f} | {ceiling['clients']} | {ceiling['tps']:.0f} | "
            f"{ceiling['latency_ms']:.2f} | {cpu} | {ceiling['failed']} |"
        )
    if in_turns := report.get("booking share in turns"):
        lines += [
            "",
            f"The booking's share of its database ceiling, both taken over the same minutes (`benchmarks/share.py`): the app "
            f"books fresh free slots, {in_turns['concurrency']} in flight, the stack floor replays the booking's statements as "
            f"many times (raw asyncpg from a trivial endpoint, `benchmarks/floor_app.py`), and pgbench replays them for "
            f"{in_turns['pgbench_seconds']} s, in turns: {in_turns['app_per_second']:.0f} bookings a second over "
            f"{in_turns['pgbench_tps']:.0f} replays a second, {_share(in_turns['share'])} ({in_turns['errors']} failed bookings). "
            f"The stack floor's {in_turns['floor_per_second']:.0f} a second make {_share(in_turns['floor_share'])} of the same "
            f"ceiling ({in_turns['floor_errors']} failed replays): the most an app on this stack could reach in these minutes.",
            "",
            "| turn | app bookings | app per second | floor per second | pgbench transactions | pgbench per second | share | "
            "floor's share |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            *[
                f"| {k + 1} | {t['app_bookings']} | {t['app_bookings'] / t['app_seconds']:.0f} | "
                f"{t['floor_requests'] / t['floor_seconds']:.0f} | {t['pgbench_transactions']} | {t['pgbench_tps']:.0f} | "
                f"{_share(t['app_bookings'] / t['app_seconds'] / t['pgbench_tps'])} | "
                f"{_share(t['floor_requests'] / t['floor_seconds'] / t['pgbench_tps'])} |"
                for k, t in enumerate(in_turns["turns"])
            ],
        ]
    if report.get("floors"):
        lines += [
            "",
            "### The stack floor",
            "",
            "Each scenario's captured statements replayed by raw asyncpg inside a trivial Litestar endpoint "
            "(`benchmarks/floor_app.py`: BEGIN, the statements, ROLLBACK; answers a row count) on the same uvicorn settings, "
            "client and in-flight count. App CPU is the app processes' CPU time over the measured requests, from `/proc`. "
            f"The floor and the app's own requests of the scenario (fresh ones where they change data) take turns, "
            f"{report['arguments']['turns']} batches each, so both are measured over the same minutes; the app's CPU in its own "
            "phase (the table above) is beside it. "
            "The slot search's floor is joined by its algorithm's own CPU (the service's calls into `slots.py`, "
            "timed in-process, median of 40 searches).",
            "",
            "| scenario | statements | in flight | floor per second | floor app CPU ms | app CPU ms in turns | app CPU ms in its "
            "phase | algorithm CPU ms | app CPU over floor |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in report["scenarios"]:
            if "over_floor" in row:
                floor = report["floors"][row["capture"]]
                lines.append(
                    f"| {row['operation']} | {floor['statements']:.0f} | {row['concurrency']} | {floor['per_second']:.0f} | "
                    f"{_ms(row['floor_cpu_ms'])} | {_ms(row['app_cpu_ms_in_turns'])} | {_ms(row.get('app_cpu_ms'))} | "
                    f"{_ms(row['algorithm_cpu_ms'] or None)} | {_ms(row['over_floor'])}x |"
                )
    if "soak" in report:
        soak_ = report["soak"]
        lines += [
            "",
            f"### Memory under {soak_['minutes']:g} minutes of mixed load",
            "",
            f"{soak_['requests']:,} requests ({soak_['errors']} failed), {report['arguments']['concurrency']} in flight, "
            "taking turns: slot search, "
            "the dashboard, a waiting-list join, GET /health and the appointments page. Resident memory (VmRSS) of each "
            "app process:",
            "",
            "| minute | " + " | ".join(f"process {k + 1}, MB" for k in range(soak_["processes"])) + " |",
            "|---:|" + "---:|" * soak_["processes"],
            *[f"| {seconds / 60:.1f} | " + " | ".join(f"{mb:.0f}" for mb in sizes) + " |" for seconds, sizes in soak_["rss_mb"]],
        ]
    lines += ["", "Data: " + "; ".join(f"{group}: {json.dumps(facts, default=str)[:400]}" for group, facts in report["data"].items())]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace what lies between the suite's marks (or put it after the page's opening table)."""
    text = path.read_text()
    block = f"{BEGIN_MARK}\n{section}{END_MARK}"
    if BEGIN_MARK in text and END_MARK in text:
        before, rest = text.split(BEGIN_MARK, 1)
        text = before + block + rest.split(END_MARK, 1)[1]
    else:
        head, _, tail = text.partition("\n## ")
        text = f"{head}{block}\n\n## {tail}"
    path.write_text(text)


async def run(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    report: dict[str, Any] = {
        "command": "python -m benchmarks " + " ".join(sys.argv[1:]),
        "arguments": {k: v for k, v in vars(args).items() if k != "benchmark"},
        "machine": await machine_facts(waitlist_data.plain_dsn(args.database_url)),
        "data": {},
        "scenarios": [],
        "ceilings": {},
        "floors": {},
        "race problems": [],
    }
    report["machine"]["load average before the run"] = " ".join(f"{load:.2f}" for load in os.getloadavg())
    report["failed groups"] = {}
    groups = {"waiting-list": waiting_list_group, "scheduling": scheduling_group, "webhooks": webhooks_group}
    for name, group in groups.items():
        if args.only in (None, name):
            try:
                await group(args, report)
            except Exception as error:  # the other groups still run; the report names the failure
                log(f"{name}: FAILED: {error!r}")
                report["failed groups"][name] = f"{type(error).__name__}: {str(error)[:300]}"
    ratios(report)
    complete = not args.only and not report["failed groups"]
    report["targets"] = (targets(report) if complete and not args.floor_only else []) + floor_targets(report)
    report["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    report["total_seconds"] = time.perf_counter() - began
    section = markdown(report)
    print(section)
    if args.write != "-" and complete and not args.floor_only:
        write_section(Path(args.write), section)
        log(f"wrote the suite's section of {args.write}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=2, default=str))
    errors = sum(row["errors"] for row in report["scenarios"]) + len(report["race problems"]) + len(report["failed groups"])
    return 0 if not errors else 1
