"""Stripe webhook benchmark: 1,000 signed events, 30% of them repeats, in shuffled order, from 20 clients
at once, and every payment must end in the right state exactly once.

    python -m benchmarks webhooks [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

1. The fake Stripe API (telehealth/devtools/stripe_stand_in.py) runs in a subprocess of its own with no webhook URL (it
   sends nothing); the app's STRIPE_API_BASE points at it, so a PaymentIntent the app re-reads is there.
2. Data (webhooks_data.py): a fresh database (default telehealth_bench_webhooks), migrated by the app's
   migrations. About 550 payments made in the fake through its HTTP API: a Checkout Session each, 70% paid
   on its pay endpoint, the rest expired; a quarter of the paid ones refunded in the fake (some twice, some
   in full), some disputed. The same payments in the database as `checkout_for_held_appointment` leaves
   them: an open payment with the session's id for a consult held for its patient.
3. The events: checkout.session.completed / checkout.session.expired for each, charge.refunded after each
   refund (the fake's charge read back: amount_refunded is cumulative), charge.dispute.created: 700
   distinct events. 300 of them (picked at random) are delivered a second time with the same id, and the
   1,000 deliveries are shuffled, so refunds and disputes often arrive before the payment's completion
   (the app then reads the PaymentIntent from the fake to find the payment) and a repeat is often in
   flight together with its first delivery.
4. Over HTTP, against `uvicorn app:app` in a subprocess (server.py's production-like environment, plus
   STRIPE_WEBHOOK_SECRET, STRIPE_API_BASE and STRIPE_API_KEY): 20 clients post the deliveries to
   POST /api/v1/billing/stripe/webhook, each signed (Stripe-Signature, t=now) just before it is sent.
   Unmeasured warm-up first: events of a type the app ignores; then the benchmark waits (up to 60 s) for
   the machine to be quiet. Each delivery is timed from its send to the complete response; CPU from /proc
   (the benchmark's processes apart from other work on the machine, which the report states, calling the
   figures skewed above 10% of the CPUs); lock waits and the app's connections sampled every 10 ms.
5. Checks, in the database afterwards: every delivery answered 200 (no 5xx), one delivery of each event
   acted on and every other one answered "duplicate"; each event id stored once in stripe_event; each
   paid payment `paid` (`refunded` if refunded in full) with its PaymentIntent, one ledger charge line,
   refunds that add up to Stripe's amount_refunded, one dispute line if disputed, its appointment
   `booked`, and exactly one completion in the audit trail and one confirmation email queued; each
   expired payment `expired` with its appointment `expired`, no ledger line and no email. Any failed
   check fails the run (exit status 1).
6. Statements per delivery: a second, smaller batch made the same way (100 distinct events, 30% repeats,
   shuffled) sent in-process, one at a time, to the app behind httpx's ASGI transport, counting the SQL
   statements each delivery sends and the PaymentIntents it re-reads from the fake.

Progress goes to stderr; the Markdown report (the figures docs/benchmarks.md records) goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import secrets
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

import asyncpg
import httpx

from benchmarks import webhooks_data as data
from benchmarks.cpu import CLOCK_TICKS, descendants, process_table
from benchmarks.machine import machine_facts
from benchmarks.server import environment, fake_stripe, running_server
from benchmarks.stats import Series
from benchmarks.waitlist import _ms, log
from benchmarks.waitlist_data import database_url, plain_dsn
from telehealth.devtools.stripe_stand_in import sign_payload
from telehealth.notifications.service import SEND_EMAIL_JOB
from telehealth.settings import PROJECT_ROOT

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
WEBHOOK = "/api/v1/billing/stripe/webhook"
ACTED = {  # what the delivery that acts on an event may answer
    "checkout.session.completed": {"paid", "already_paid"},  # already_paid: a refund got there first and completed it
    "checkout.session.expired": {"expired"},
    "charge.refunded": {"recorded_outside_refund", "matched"},  # matched: a later, larger amount_refunded got there first
    "charge.dispute.created": {"flagged"},
}
WARMUP_TYPE = "customer.updated"  # a type the app does not handle: answered "ignored", stored like any event


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url", default=DEFAULT_ADMIN_URL, help="admin connection to the PostgreSQL server (default: %(default)s)"
    )
    parser.add_argument(
        "--database-name",
        default="telehealth_bench_webhooks",
        help="the benchmark's own database, dropped and created again on every run (default: %(default)s)",
    )
    parser.add_argument("--events", type=int, default=1000, help="deliveries sent, repeats included (default: %(default)s)")
    parser.add_argument(
        "--duplicate-share",
        type=float,
        default=0.30,
        help="share of the deliveries that repeat an event already in the list (default: %(default)s)",
    )
    parser.add_argument("--concurrency", type=int, default=20, help="clients posting at once (default: %(default)s)")
    parser.add_argument("--paid-share", type=float, default=0.70, help="payments completed; the rest expire (default: %(default)s)")
    parser.add_argument("--refund-share", type=float, default=0.25, help="paid payments refunded at Stripe (default: %(default)s)")
    parser.add_argument("--second-refund-share", type=float, default=0.30, help="of those, refunded a second time (default: %(default)s)")
    parser.add_argument("--full-refund-share", type=float, default=0.40, help="of those, refunded in full (default: %(default)s)")
    parser.add_argument("--dispute-share", type=float, default=0.06, help="paid payments disputed (default: %(default)s)")
    parser.add_argument("--prescribers", type=int, default=20, help="prescribers the held consults are with (default: %(default)s)")
    parser.add_argument(
        "--warmup", type=int, default=100, help="unmeasured deliveries of an ignored event type first (default: %(default)s)"
    )
    parser.add_argument(
        "--inprocess-events",
        type=int,
        default=100,
        help="distinct events of a second batch sent in-process one at a time, counting statements (0: skip; default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=42, help="random.seed() for the payments, the repeats and the order (default: %(default)s)"
    )
    parser.add_argument("--server-workers", type=int, default=1, help="uvicorn worker processes (default: %(default)s)")
    parser.add_argument("--json", dest="json_path", help="also write every figure to this JSON file")


# ---------------------------------------------------------------------------------------------- helpers


class CpuSplit:
    """CPU seconds between start() and stop() by who used them, read from /proc: the app server's processes,
    the PostgreSQL backends of the benchmark's database, the fake Stripe, this process (the load generator),
    and what is not the benchmark's (PostgreSQL's shared processes and other databases' backends, any other
    process): the machine is shared, and those figures say how much. Processes that ended meanwhile (a
    backend of a connection the app's pool closed) are not counted."""

    def __init__(self, server_pid: int, stripe_pid: int) -> None:
        self.server_pid, self.stripe_pid = server_pid, stripe_pid

    def start(self) -> None:
        self.before = process_table()
        self.steal_before = _steal()
        self.started = time.perf_counter()

    def stop(self, database_pids: set[int]) -> dict[str, float]:
        after = process_table()
        wall = time.perf_counter() - self.started
        steal = _steal() - self.steal_before

        def used(pids: set[int]) -> float:
            return sum(after[pid][2] - (self.before[pid][2] if pid in self.before else 0.0) for pid in pids if pid in after)

        server = descendants(self.server_pid, after)
        postgres = {pid for pid, (name, _, _) in after.items() if name.startswith("postgres")}
        ours = postgres & database_pids
        mine = server | postgres | {self.stripe_pid, os.getpid()}
        return {
            "app server": used(server),
            "PostgreSQL (the benchmark's backends)": used(ours),
            "fake Stripe": used({self.stripe_pid}),
            "load generator": used({os.getpid()}),
            "not the benchmark: PostgreSQL's shared processes and other databases": used(postgres - ours),
            "not the benchmark: other processes": used(set(after) - mine),
            "all processes": used(set(after)),
            "wall": wall,
            "stolen by the hypervisor": steal,
        }


def _steal() -> float:
    """CPU seconds the hypervisor ran other guests while this machine's CPUs wanted to run (/proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
        return int(fields[8]) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


def app_version() -> str:
    """The commit the app was measured at, and whether the working tree differed from it."""

    def git(*words: str) -> str:
        try:
            return subprocess.run(["git", *words], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = [line[3:] for line in git("status", "--porcelain", "--", "telehealth", "app.py", "migrations").splitlines()]
    return commit + (f" (with uncommitted changes to {len(changed)} app files)" if changed else "")


def calibration_ms() -> float:
    """How long a fixed piece of pure-Python work takes here, best of three: the same on the same CPU, so a
    slower figure says the virtual machine got less of its host than in another run (steal time does not
    always show it)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(300_000):
            total += i * i % 7
        best = min(best, time.perf_counter() - started)
    return best * 1000


async def quiet_machine(*, exclude: set[int], busy_below: float = 0.10, patience: float = 60.0) -> str:
    """Wait (up to `patience` s) for two seconds in which processes other than `exclude` (and their children)
    use under `busy_below` of the CPUs: other work on a shared machine skews every figure. Answers what it saw."""
    cpus = len(os.sched_getaffinity(0))
    deadline = time.monotonic() + patience
    while True:
        before = process_table()
        await asyncio.sleep(2.0)
        after = process_table()
        ours = set().union(*(descendants(pid, after) for pid in exclude))
        other = sum(after[pid][2] - before.get(pid, ("", 0, 0.0))[2] for pid in after if pid not in ours) / cpus / 2.0
        if other < busy_below:
            return f"{other:.0%} of the CPUs busy with other work in the 2 s before measuring"
        if time.monotonic() > deadline:
            return f"{other:.0%} of the CPUs busy with other work in the 2 s before measuring (waited {patience:.0f} s for less)"
        log(f"  the machine is busy with other work ({other:.0%} of the CPUs); waiting ...")


class ActivityProbe:
    """Every 10 ms, on the benchmark's database only (others may be busy on the same server): lock waits
    (pg_locks not granted, by lock type) and the app's connections (open, busy, every backend pid seen, and
    what the busy ones wait for: Client:ClientRead is a transaction waiting for the app's next statement,
    IO:WALSync a commit waiting for the disk, Lock:transactionid a row or key another transaction holds);
    around the phase, the sessions PostgreSQL counted as opened on the database."""

    SAMPLE = """
        SELECT (SELECT coalesce(array_agg(l.locktype::text), '{}') FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                WHERE NOT l.granted AND a.datname = current_database()) AS waiting,
               (SELECT coalesce(array_agg(pid), '{}') FROM pg_stat_activity
                WHERE application_name = 'telehealth' AND datname = current_database()) AS app,
               (SELECT count(*) FROM pg_stat_activity
                WHERE application_name = 'telehealth' AND datname = current_database() AND state <> 'idle') AS busy,
               (SELECT coalesce(array_agg(coalesce(wait_event_type || ':' || wait_event, 'on CPU')), '{}') FROM pg_stat_activity
                WHERE application_name = 'telehealth' AND datname = current_database() AND state <> 'idle') AS waits
    """
    SESSIONS = "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.samples: list[tuple[list[str], list[int], int]] = []
        self.waits: Counter[str] = Counter()
        self._stop = asyncio.Event()

    async def _run(self) -> None:
        while not self._stop.is_set():
            row = await self.connection.fetchrow(self.SAMPLE)
            self.samples.append((list(row["waiting"]), list(row["app"]), row["busy"]))
            self.waits.update(row["waits"])
            await asyncio.sleep(0.01)

    async def start(self) -> None:
        self.connection = await asyncpg.connect(self.dsn)
        self.sessions_before = await self.connection.fetchval(self.SESSIONS)
        self._task = asyncio.create_task(self._run())

    def pids(self) -> set[int]:
        return {pid for _, app, _ in self.samples for pid in app}

    async def stop(self) -> dict[str, Any]:
        self._stop.set()
        await self._task
        await asyncio.sleep(1.2)  # backends report their session counts within a second
        await self.connection.execute("SELECT pg_stat_clear_snapshot()")
        opened = await self.connection.fetchval(self.SESSIONS) - self.sessions_before
        await self.connection.close()
        n = len(self.samples) or 1
        kinds = Counter(kind for waiting, _, _ in self.samples for kind in waiting)
        return {
            "samples": len(self.samples),
            "with lock waits": f"{sum(1 for w, _, _ in self.samples if w) / n:.0%}",
            "lock waits, mean": round(sum(len(w) for w, _, _ in self.samples) / n, 2),
            "lock waits, max": max((len(w) for w, _, _ in self.samples), default=0),
            "lock waits by type (sampled)": dict(kinds.most_common()),
            "busy app connections, mean": round(sum(b for _, _, b in self.samples) / n, 1),
            "what busy app connections were doing (share of samples)": {
                what: f"{count / max(1, sum(self.waits.values())):.0%}" for what, count in self.waits.most_common(6)
            },
            "busy app connections, max": max((b for _, _, b in self.samples), default=0),
            "open app connections, max": max((len(a) for _, a, _ in self.samples), default=0),
            "app backend pids seen": len(self.pids()),
            "sessions opened on the database": opened - 1,  # less the probe's own
        }


# ---------------------------------------------------------------------------------------------- sending


@dataclass
class Delivery:
    number: int  # position in the shuffled list
    event: data.Event
    repeat: int  # 0: the first copy in the list, 1: the second ...
    status: int = 0
    outcome: str = ""
    received: str = ""
    started: float = 0.0
    seconds: float = 0.0
    error: str = ""


def deliveries(events: list[data.Event], *, repeats: int, rng: random.Random) -> list[Delivery]:
    """Every event once plus `repeats` repeats of events picked at random (each at most once while there are
    enough, so a repeated event comes exactly twice), shuffled."""
    picked = rng.sample(events, repeats) if repeats <= len(events) else [rng.choice(events) for _ in range(repeats)]
    listed = events + picked
    rng.shuffle(listed)
    seen: Counter[str] = Counter()
    out = []
    for number, event in enumerate(listed):
        out.append(Delivery(number, event, seen[event.id]))
        seen[event.id] += 1
    return out


async def post_all(client: httpx.AsyncClient, items: list[Delivery], *, secret: str, concurrency: int) -> float:
    """Post every delivery, `concurrency` at a time in list order; answers the wall time."""
    position = iter(items)

    async def worker() -> None:
        for item in position:
            payload = json.dumps(item.event.body)
            headers = {"stripe-signature": sign_payload(payload, secret, int(time.time())), "content-type": "application/json"}
            item.started = time.perf_counter()
            try:
                response = await client.post(WEBHOOK, content=payload, headers=headers)
                item.seconds = time.perf_counter() - item.started
                item.status = response.status_code
                try:
                    answer = response.json()
                    item.outcome, item.received = str(answer.get("outcome", "")), str(answer.get("received", ""))
                except ValueError:
                    pass
                if response.status_code != 200:
                    item.error = response.text[:300]
            except httpx.HTTPError as error:
                item.seconds = time.perf_counter() - item.started
                item.error = f"{type(error).__name__}: {error}"

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


def warmup_events(count: int) -> list[data.Event]:
    now = int(time.time())
    events = []
    for _ in range(count):
        customer = {"id": f"cus_{secrets.token_hex(12)}", "object": "customer", "metadata": {}, "email": None, "name": None}
        events.append(data.make_event(WARMUP_TYPE, customer, payment=-1, created=now))
    return events


# --------------------------------------------------------------------------------------------- checking


async def check(dsn: str, dataset: data.Dataset, sent: list[Delivery], warmup: list[data.Event]) -> tuple[list[str], dict[str, Any]]:
    """Every failed check as a sentence (none: the run passes), and the counts behind them."""
    problems: list[str] = []
    facts: dict[str, Any] = {}

    def fail(message: str) -> None:
        if len(problems) < 40:
            problems.append(message)
        elif len(problems) == 40:
            problems.append("... (more problems not listed)")

    # The answers.
    statuses = Counter(d.status for d in sent)
    facts["answers by status"] = dict(sorted(statuses.items()))
    facts["5xx answers"] = sum(n for status, n in statuses.items() if status >= 500)
    for d in sent:
        if d.status != 200:
            fail(f"delivery {d.number} ({d.event.type} {d.event.id}) answered {d.status or d.error}: {d.error[:200]}")
        elif d.received != d.event.id:
            fail(f"delivery {d.number} answered received={d.received!r} for {d.event.id}")
    by_event: dict[str, list[Delivery]] = defaultdict(list)
    for d in sent:
        by_event[d.event.id].append(d)
    for event_id, copies in by_event.items():
        acted = [d for d in copies if d.outcome != "duplicate"]
        kind = copies[0].event.type
        if len(acted) != 1:
            fail(f"{kind} {event_id}: {len(acted)} of its {len(copies)} deliveries acted on it ({[d.outcome for d in copies]})")
        elif acted[0].outcome not in ACTED[kind]:
            fail(f"{kind} {event_id}: answered {acted[0].outcome!r}, expected one of {sorted(ACTED[kind])}")
    facts["outcomes"] = {
        kind: dict(Counter(d.outcome for d in sent if d.event.type == kind and d.outcome != "duplicate")) for kind in ACTED
    }
    facts["repeats answered duplicate"] = sum(1 for d in sent if d.outcome == "duplicate")
    facts["repeats sent"] = len(sent) - len(by_event)

    connection = await asyncpg.connect(dsn)
    try:
        stored = Counter(r["id"] for r in await connection.fetch("SELECT id FROM stripe_event"))
        payments = {r["id"]: r for r in await connection.fetch("SELECT * FROM payment")}
        appointments = {r["id"]: r for r in await connection.fetch("SELECT id, status, hold_expires_at FROM appointment")}
        ledger: dict[Any, dict[str, tuple[int, int]]] = defaultdict(dict)
        for r in await connection.fetch(
            "SELECT payment_id, kind, count(*) AS n, sum(amount_cents) AS cents FROM ledger_entry GROUP BY 1, 2"
        ):
            ledger[r["payment_id"]][r["kind"]] = (r["n"], int(r["cents"]))
        refunds: dict[Any, list[asyncpg.Record]] = defaultdict(list)
        for r in await connection.fetch("SELECT payment_id, amount_cents, status, reason FROM refund"):
            refunds[r["payment_id"]].append(r)
        audit = Counter(
            (r["resource_id"], r["action"])
            for r in await connection.fetch("SELECT resource_id, action FROM audit_event WHERE resource_type IN ('payment', 'appointment')")
        )
        first_audit = {
            (r["resource_id"], r["action"]): r["first"]
            for r in await connection.fetch(
                "SELECT resource_id, action, min(id) AS first FROM audit_event WHERE resource_type = 'payment' GROUP BY 1, 2"
            )
        }
        confirmations = Counter(
            r["to"]
            for r in await connection.fetch(
                "SELECT payload->>'to' AS to FROM job WHERE kind = $1 AND payload->>'template' = 'appointment_confirmed'", SEND_EMAIL_JOB
            )
        )
        facts["rows"] = {
            table: await connection.fetchval(f"SELECT count(*) FROM {table}")
            for table in ("stripe_event", "payment", "refund", "ledger_entry", "audit_event", "job")
        }
    finally:
        await connection.close()

    expected_ids = set(by_event) | {e.id for e in warmup}
    if set(stored) != expected_ids:
        fail(
            f"stripe_event holds {len(stored)} ids; {len(expected_ids - set(stored))} sent ones missing, "
            f"{len(set(stored) - expected_ids)} unknown"
        )
    if any(n != 1 for n in stored.values()):
        fail("an event id is stored more than once")

    outcome_of = {event_id: next((d.outcome for d in copies if d.outcome != "duplicate"), "") for event_id, copies in by_event.items()}
    disputes_before_completion = 0
    for plan in dataset.payments:
        row = payments.get(plan.payment_id)
        if row is None:
            fail(f"payment {plan.index} is missing")
            continue
        appointment = appointments[plan.appointment_id]
        lines = ledger.get(plan.payment_id, {})
        pid = str(plan.payment_id)
        refunded = f", refunded {plan.refund_steps}" if plan.refund_steps else ""
        name = f"payment {plan.index} ({'paid' if plan.paid else 'expired'}{refunded}{', disputed' if plan.disputed else ''})"
        if plan.paid:
            want = "refunded" if plan.refunded_cents == plan.amount_cents else "paid"
            if row["status"] != want:
                fail(f"{name}: status {row['status']}, expected {want}")
            if row["stripe_payment_intent_id"] != plan.payment_intent:
                fail(f"{name}: PaymentIntent {row['stripe_payment_intent_id']}, expected {plan.payment_intent}")
            if row["paid_at"] is None:
                fail(f"{name}: no paid_at")
            if lines.get("charge") != (1, plan.amount_cents):
                fail(f"{name}: ledger charge lines {lines.get('charge')}, expected one of {plan.amount_cents}")
            if row["refunded_cents"] != plan.refunded_cents:
                fail(f"{name}: refunded_cents {row['refunded_cents']}, expected {plan.refunded_cents}")
            mine = refunds.get(plan.payment_id, [])
            if sum(r["amount_cents"] for r in mine) != plan.refunded_cents or any(
                r["status"] != "succeeded" or r["reason"] != "outside" for r in mine
            ):
                fail(f"{name}: refunds {[(r['amount_cents'], r['status'], r['reason']) for r in mine]}")
            if not 0 <= len(mine) <= len(plan.refund_steps) or (plan.refund_steps and not mine):
                fail(f"{name}: {len(mine)} refund rows for {len(plan.refund_steps)} refunds at Stripe")
            refund_lines = lines.get("refund", (0, 0))
            if refund_lines != (len(mine), -plan.refunded_cents):
                fail(f"{name}: ledger refund lines {refund_lines}, expected {(len(mine), -plan.refunded_cents)}")
            if plan.disputed:
                if row["disputed_at"] is None or lines.get("dispute") != (1, -plan.amount_cents):
                    fail(f"{name}: disputed_at {row['disputed_at']}, dispute lines {lines.get('dispute')}")
                complete, dispute = first_audit.get((pid, "payment.complete")), first_audit.get((pid, "payment.dispute"))
                if complete and dispute and dispute < complete:
                    disputes_before_completion += 1
            elif row["disputed_at"] is not None or "dispute" in lines:
                fail(f"{name}: disputed, but no dispute was sent")
            if appointment["status"] != "booked" or appointment["hold_expires_at"] is not None:
                fail(f"{name}: appointment {appointment['status']} (hold until {appointment['hold_expires_at']}), expected booked")
            if audit[(pid, "payment.complete")] != 1:
                fail(f"{name}: {audit[(pid, 'payment.complete')]} completions in the audit trail")
            if audit[(str(plan.appointment_id), "appointment.confirm")] != 1:
                fail(
                    f"{name}: {audit[(str(plan.appointment_id), 'appointment.confirm')]} confirmations of its appointment in "
                    "the audit trail"
                )
            if audit[(pid, "payment.refund_fully")] != (1 if want == "refunded" else 0):
                fail(f"{name}: {audit[(pid, 'payment.refund_fully')]} full refunds in the audit trail")
            if confirmations[plan.email] != 1:
                fail(f"{name}: {confirmations[plan.email]} confirmation emails queued")
        else:
            if row["status"] != "expired" or row["refunded_cents"] or row["stripe_payment_intent_id"] or row["paid_at"]:
                fail(f"{name}: status {row['status']}, refunded {row['refunded_cents']}, PaymentIntent {row['stripe_payment_intent_id']}")
            if lines or refunds.get(plan.payment_id):
                fail(f"{name}: ledger {lines}, refunds {len(refunds.get(plan.payment_id, []))}")
            if appointment["status"] != "expired":
                fail(f"{name}: appointment {appointment['status']}, expected expired")
            if audit[(pid, "payment.lapse")] != 1 or audit[(str(plan.appointment_id), "appointment.lapse")] != 1:
                fail(
                    f"{name}: {audit[(pid, 'payment.lapse')]} lapses of the payment, "
                    f"{audit[(str(plan.appointment_id), 'appointment.lapse')]} of its appointment"
                )
            if confirmations[plan.email]:
                fail(f"{name}: {confirmations[plan.email]} confirmation emails queued")
    facts["completions answered already_paid (a refund overtook them and read the PaymentIntent from Stripe)"] = sum(
        1 for e in dataset.events if e.type == "checkout.session.completed" and outcome_of.get(e.id) == "already_paid"
    )
    facts["disputes recorded before the payment's completion (PaymentIntent read from Stripe)"] = disputes_before_completion
    facts["refunds answered matched (a later, larger amount_refunded overtook them)"] = sum(
        1 for e in dataset.events if e.type == "charge.refunded" and outcome_of.get(e.id) == "matched"
    )
    return problems, facts


async def statements_per_event(
    admin_url: str, url: str, fake_url: str, args: argparse.Namespace, *, secret: str, distinct_events: int, rng: random.Random
) -> dict[str, Any]:
    """In-process, one at a time, on a second small batch of payments (same shares, same database and fake):
    the app (`create_app`, the same settings as the server) behind httpx's ASGI transport, with a SQLAlchemy
    listener counting the statements each delivery sends and the gateway counting its PaymentIntent
    re-reads. Per event type and answer: deliveries, statements (min/median/max), re-reads, median ms."""
    from sqlalchemy import event as sa_event

    from telehealth.asgi import create_app
    from telehealth.settings import Settings

    payments = data.plan_payments(
        rng,
        distinct_events=distinct_events,
        paid_share=args.paid_share,
        refund_share=args.refund_share,
        second_refund_share=args.second_refund_share,
        full_refund_share=args.full_refund_share,
        dispute_share=args.dispute_share,
        amount_cents=data.CONSULT_FEE_CENTS,
        tag="-inproc",
    )
    events = await data.stripe_side(fake_url, payments)
    await data.database_side(url, payments, prescribers=max(1, args.prescribers // 4), now=datetime.now(UTC), tag="-inproc")
    sent = deliveries(events, repeats=round(len(events) * args.duplicate_share / (1 - args.duplicate_share)), rng=rng)
    settings = Settings(
        environment="development",
        database_url=url,
        auto_migrate=False,
        seed_demo=False,
        run_worker_in_process=False,
        stripe_api_base=fake_url,
        stripe_api_key="sk_test_benchmark",
        stripe_webhook_secret=secret,
    )
    app = create_app(settings)
    statements: list[str] = []
    rereads = [0]
    found: dict[tuple[str, str], list[tuple[int, int, float]]] = defaultdict(list)
    example: dict[tuple[str, str], list[str]] = {}

    def record(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        words = statement.split()
        if words[0] == "SELECT" and "FROM" in words:
            target = words[words.index("FROM") + 1]
        else:
            target = {"INSERT": words[2:3], "UPDATE": words[1:2], "DELETE": words[2:3]}.get(words[0], [""])[0] if len(words) > 2 else ""
        statements.append(f"{words[0]} {target}".strip())

    async with app.lifespan():
        gateway = app.state.stripe
        retrieve = gateway.retrieve_payment_intent

        async def counted(payment_intent_id: str) -> dict[str, Any]:
            rereads[0] += 1
            return await retrieve(payment_intent_id)

        gateway.retrieve_payment_intent = counted
        sa_event.listen(app.state.engine.sync_engine, "before_cursor_execute", record)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://in-process") as client:
            for item in sent:
                statements.clear()
                rereads[0] = 0
                payload = json.dumps(item.event.body)
                headers = {"stripe-signature": sign_payload(payload, secret, int(time.time())), "content-type": "application/json"}
                started = time.perf_counter()
                response = await client.post(WEBHOOK, content=payload, headers=headers)
                elapsed = time.perf_counter() - started
                outcome = (
                    response.json().get("outcome", str(response.status_code))
                    if response.status_code == 200
                    else f"HTTP {response.status_code}"
                )
                key = (item.event.type, outcome)
                found[key].append((len(statements), rereads[0], elapsed))
                example.setdefault(key, list(statements))
        sa_event.remove(app.state.engine.sync_engine, "before_cursor_execute", record)
    rows = []
    for (kind, outcome), seen in sorted(found.items()):
        counts = sorted(n for n, _, _ in seen)
        rows.append(
            {
                "event": kind,
                "answer": outcome,
                "deliveries": len(seen),
                "statements min": counts[0],
                "statements median": median(counts),
                "statements max": counts[-1],
                "PaymentIntent re-reads": sum(r for _, r, _ in seen),
                "median ms": round(median(e for _, _, e in seen) * 1000, 1),
                "statements (first one)": example[(kind, outcome)],
            }
        )
    return {"payments": len(payments), "deliveries": len(sent), "rows": rows}


def overlapping_twins(sent: list[Delivery]) -> int:
    """Events two of whose deliveries were in flight at the same time."""
    by_event: dict[str, list[Delivery]] = defaultdict(list)
    for d in sent:
        by_event[d.event.id].append(d)
    count = 0
    for copies in by_event.values():
        spans = sorted((d.started, d.started + d.seconds) for d in copies)
        if any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans)):
            count += 1
    return count


def series_of(name: str, items: list[Delivery], wall: float | None = None) -> dict[str, Any]:
    series = Series(name)
    series.seconds = [d.seconds for d in items if d.status == 200]
    series.errors = sum(1 for d in items if d.status != 200)
    series.wall_seconds = wall or 0.0
    return series.summary()


# ------------------------------------------------------------------------------------------------ report


def markdown_report(report: dict[str, Any]) -> str:
    lines = [f"## Stripe webhook benchmark, {report['finished_at']}", "", f"`{report['command']}`, app at {report['app_version']}", ""]
    lines += ["### Machine", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in report["machine"].items()]
    facts = report["dataset"]
    lines += ["", "### Data", ""]
    lines.append(
        f"{facts['payments']} payments of {facts['amount_cents'] / 100:.2f} USD for consults held with {facts['prescribers']} prescribers: "
        f"{facts['paid']} paid, {facts['expired']} expired; {facts['refunded at Stripe']} refunded at Stripe "
        f"({facts['of which twice']} twice, {facts['of which fully']} in full), {facts['disputed']} disputed. Distinct events: "
        + ", ".join(f"{t} {n}" for t, n in facts["events by type"].items())
        + f". Deliveries: {report['deliveries']} ({report['repeats']} repeats of {report['repeated_events']} events), "
        f"shuffled; {report['concurrency']} clients; {report['warmup']} unmeasured warm-up deliveries first."
    )
    lines += [
        "",
        "Load: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in report["load_timings"].items())
        + f". Whole run: {report['total_seconds']:.0f} s.",
    ]
    lines += ["", "### Results (milliseconds)", ""]
    lines.append("| deliveries | count | errors | mean | p50 | p95 | p99 | max | per second |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in report["results"]:
        lines.append(
            f"| {row['operation']} | {row['count']} | {row['errors']} | {_ms(row['mean_ms'])} | {_ms(row['p50_ms'])} | "
            f"{_ms(row['p95_ms'])} | {_ms(row['p99_ms'])} | {_ms(row['max_ms'])} | "
            f"{_ms(row['per_second']) if row['per_second'] == row['per_second'] else ''} |"
        )
    lines += [
        "",
        "CPU per delivery: " + report["cpu"] + f" ({report['before_measuring']}; {report['other_work']}).",
        "",
        "Calibration (a fixed piece of pure-Python work in the load generator, before and after measuring): "
        + " and ".join(f"{c} ms" for c in report["calibration_ms"])
        + ".",
        "",
        "Database activity (sampled every 10 ms): " + json.dumps(report["activity"]),
    ]
    lines += ["", f"Repeats in flight together with another delivery of the same event: {report['overlapping_twins']}."]
    if report["inprocess"]["rows"]:
        lines += [
            "",
            f"### Statements per delivery (in-process, one at a time, {report['inprocess']['deliveries']} deliveries of a second batch)",
            "",
        ]
        lines += [
            "| event | answer | deliveries | statements (min / median / max) | PaymentIntent re-reads | median ms |",
            "|---|---|---:|---|---:|---:|",
        ]
        for row in report["inprocess"]["rows"]:
            lines.append(
                f"| {row['event']} | {row['answer']} | {row['deliveries']} | {row['statements min']} / {row['statements median']:g} / "
                f"{row['statements max']} | {row['PaymentIntent re-reads']} | {row['median ms']} |"
            )
        lines += ["", "The statements of the first of each:", ""]
        lines += [f"- {row['event']} → {row['answer']}: {', '.join(row['statements (first one)'])}" for row in report["inprocess"]["rows"]]
    lines += ["", "### Checks", ""]
    checks = report["checks"]
    lines += [f"- {key}: {json.dumps(value) if isinstance(value, dict) else value}" for key, value in checks["facts"].items()]
    lines += ["", "**All checks passed.**" if not checks["problems"] else "**FAILED:**"]
    lines += [f"- {problem}" for problem in checks["problems"]]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    began = time.perf_counter()
    url = database_url(args.database_url, args.database_name)
    dsn = plain_dsn(url)
    repeats = round(args.events * args.duplicate_share)
    secret = f"whsec_benchmark_{secrets.token_hex(16)}"
    log("starting the fake Stripe API ...")
    with fake_stripe() as (stripe_base, stripe_pid):
        log(f"creating {args.database_name}; {args.events - repeats} distinct events ...")
        dataset = await data.load(
            args.database_url,
            args.database_name,
            stripe_base,
            distinct_events=args.events - repeats,
            paid_share=args.paid_share,
            refund_share=args.refund_share,
            second_refund_share=args.second_refund_share,
            full_refund_share=args.full_refund_share,
            dispute_share=args.dispute_share,
            amount_cents=data.CONSULT_FEE_CENTS,
            prescribers=args.prescribers,
            seed=args.seed,
            log=log,
        )
        sent = deliveries(dataset.events, repeats=repeats, rng=rng)
        warmup = warmup_events(args.warmup)
        extra = {"STRIPE_API_BASE": stripe_base, "STRIPE_API_KEY": "sk_test_benchmark", "STRIPE_WEBHOOK_SECRET": secret}
        log("starting uvicorn ...")
        with environment(extra):
            async with running_server(url, workers=args.server_workers) as server:
                limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
                async with httpx.AsyncClient(base_url=server.base_url, timeout=60, limits=limits) as client:
                    log(f"warm-up: {len(warmup)} deliveries of {WARMUP_TYPE} ...")
                    warm = [Delivery(i, event, 0) for i, event in enumerate(warmup)]
                    await post_all(client, warm, secret=secret, concurrency=args.concurrency)
                    if bad := [d for d in warm if d.status != 200 or d.outcome != "ignored"]:
                        raise RuntimeError(f"warm-up delivery answered {bad[0].status} {bad[0].outcome}: {bad[0].error}")
                    quiet = await quiet_machine(exclude={server.pid, stripe_pid, os.getpid()})
                    log(f"measuring: {len(sent)} deliveries, {args.concurrency} in flight ({quiet}) ...")
                    meter, probe = CpuSplit(server.pid, stripe_pid), ActivityProbe(dsn)
                    calibration = [calibration_ms()]
                    await probe.start()
                    meter.start()
                    wall = await post_all(client, sent, secret=secret, concurrency=args.concurrency)
                    cpu = meter.stop(probe.pids())
                    activity = await probe.stop()
                    calibration.append(calibration_ms())
    log(f"  {len(sent)} deliveries in {wall:.2f} s; checking the database ...")
    problems, check_facts = await check(dsn, dataset, sent, warmup)
    if args.inprocess_events:
        log(f"in-process, one at a time: statements per event ({args.inprocess_events} more distinct events) ...")
        with fake_stripe() as (stripe_base, _):
            inprocess = await statements_per_event(
                args.database_url, url, stripe_base, args, secret=secret, distinct_events=args.inprocess_events, rng=rng
            )
        if bad := [row for row in inprocess["rows"] if row["answer"].startswith("HTTP")]:
            problems.append(f"in-process deliveries answered {[(row['event'], row['answer']) for row in bad]}")
    else:
        inprocess = {"rows": []}
    acted = [d for d in sent if d.outcome != "duplicate"]
    results = [series_of(f"all, {args.concurrency} in flight", sent, wall)]
    for kind in ACTED:
        results.append(series_of(f"  {kind} (acted on)", [d for d in acted if d.event.type == kind]))
    results.append(series_of("  repeats (answered duplicate)", [d for d in sent if d.outcome == "duplicate"]))
    n = len(sent)
    cpus = len(os.sched_getaffinity(0))
    shown = {k: v for k, v in cpu.items() if k not in ("all processes", "wall", "stolen by the hypervisor")}
    cpu_text = (
        ", ".join(f"{k} {v / n * 1000:.2f}" for k, v in shown.items()) + " CPU ms per delivery; "
        f"{cpus} CPUs {cpu['all processes'] / (cpu['wall'] * cpus):.0%} busy, "
        f"{cpu['stolen by the hypervisor'] / (cpu['wall'] * cpus):.0%} stolen by the hypervisor"
    )
    others = sum(v for k, v in cpu.items() if k.startswith("not the benchmark")) / (cpu["wall"] * cpus)
    skewed = f"other work used {others:.0%} of the CPUs while measuring" + (
        ": THE FIGURES ARE SKEWED, run again on a quiet machine" if others > 0.10 else ""
    )
    repeated_events = len({d.event.id for d in sent if d.repeat})
    report = {
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m benchmarks " + " ".join(sys.argv[1:]),
        "app_version": app_version(),
        "arguments": vars(args),
        "machine": await machine_facts(dsn),
        "dataset": dataset.facts,
        "load_timings": dataset.timings,
        "deliveries": len(sent),
        "repeats": len(sent) - len({d.event.id for d in sent}),
        "repeated_events": repeated_events,
        "concurrency": args.concurrency,
        "warmup": len(warmup),
        "wall_seconds": wall,
        "results": results,
        "cpu": cpu_text,
        "cpu_seconds": cpu,
        "before_measuring": quiet,
        "other_work": skewed,
        "calibration_ms": [round(c, 1) for c in calibration],
        "activity": activity,
        "overlapping_twins": overlapping_twins(sent),
        "checks": {"problems": problems, "facts": check_facts},
        "inprocess": inprocess,
        "total_seconds": time.perf_counter() - began,
    }
    print(markdown_report(report))
    if args.json_path:
        report["deliveries_detail"] = [
            {
                "n": d.number,
                "event": d.event.id,
                "type": d.event.type,
                "repeat": d.repeat,
                "status": d.status,
                "outcome": d.outcome,
                "ms": round(d.seconds * 1000, 2),
            }
            for d in sent
        ]
        with open(args.json_path, "w") as out:
            json.dump(report, out, indent=2, default=str)
    log(
        f"done in {report['total_seconds']:.0f} s"
        + (f"; {len(problems)} FAILED checks" if problems else "; all checks passed")
        + f"; {skewed}"
    )
    return 1 if problems else 0
