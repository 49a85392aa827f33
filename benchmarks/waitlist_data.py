"""The benchmark's database: created on the server, migrated with the app's own migrations, then filled
with server-side SQL (INSERT ... SELECT FROM generate_series), so a million entries load in about a minute.

The data:
- `entries` waiting-list entries over the 51 queues, the state of each drawn at random by the 2020 census
  shares (census.py), with `setseed` so a reload gives the same spread;
- rows are inserted in join order over the past year (the heap grows in time order, as in production);
- statuses: about 87% waiting (confirmed 0-36 h after joining), 8% unconfirmed (joined in the last month),
  4% left (personal fields erased), 0.5% invited and 0.5% lapsed (the oldest part of each queue);
- one invitation per invited entry (sent in the last 6 days, still live) and per lapsed entry (sent 8-28
  days ago, expired), so the wait estimate (invitations of the last 28 days) has a rate to work with;
- waitlist_tally filled from the rows in one INSERT ... SELECT ... GROUP BY (the rows go in without its
  per-row triggers);
- a coordinator, who sends the benchmark's invitations, and three prescribers licensed in every state (so
  every queue is served), created with the app's create_account.

The database's COMMENT records what was loaded; a later run reuses the data when it matches.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, date, datetime

import asyncpg
from sqlalchemy.engine import make_url

from benchmarks.census import cumulative_bounds
from telehealth.accounts.roles import Role
from telehealth.accounts.service import create_account, find_user_by_email
from telehealth.clinicians.models import ClinicianProfile, DeaRegistration, StateLicense
from telehealth.db.engine import make_engine, make_session_factory, transaction
from telehealth.db.migrate import upgrade_database
from telehealth.lib.actors import Actor
from telehealth.lib.us_states import US_STATES
from telehealth.settings import Settings
from telehealth.waitlist.models import TALLY_BUCKET_ORIGIN, TALLY_BUCKET_WIDTH

COORDINATOR_EMAIL = "bench-coordinator@example.com"
PRESCRIBERS = 3
DATA_VERSION = 1  # bump when the generated data changes shape


def database_url(admin_url: str, name: str) -> str:
    """The admin URL with another database name, in plain postgresql:// form (asyncpg and the app accept it)."""
    url = make_url(admin_url)
    return url.set(drivername="postgresql", database=name).render_as_string(hide_password=False)


def plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def load_marker(entries: int, seed: float) -> dict[str, object]:
    return {"benchmark": "waitlist", "data_version": DATA_VERSION, "entries": entries, "seed": seed}


async def loaded_marker(admin_url: str, name: str) -> dict[str, object] | None:
    """What the database holds according to its comment; None when it does not exist or was not finished."""
    connection = await asyncpg.connect(plain_dsn(admin_url))
    try:
        comment = await connection.fetchval("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", name)
    finally:
        await connection.close()
    try:
        return json.loads(comment) if comment else None
    except ValueError:
        return None


async def recreate_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(plain_dsn(admin_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def migrate(url: str) -> None:
    engine = make_engine(url, pool_size=1)
    try:
        await upgrade_database(engine)
    finally:
        await engine.dispose()


async def ensure_staff(url: str, settings: Settings) -> uuid.UUID:
    """The benchmark's clinic, created on first use with the app's own create_account: a coordinator (who
    sends the invitations) and PRESCRIBERS prescribers licensed, with a Schedule III DEA registration, in
    every state, so every queue is served (invite_next refuses unserved states). Answers the coordinator's id."""
    engine = make_engine(url, pool_size=1)
    now = datetime.now(UTC)
    expires = date(now.year + 2, 6, 30)
    try:
        async with transaction(make_session_factory(engine)) as session:
            coordinator = await find_user_by_email(session, COORDINATOR_EMAIL)
            if coordinator is None:
                coordinator = await create_account(
                    session,
                    email=COORDINATOR_EMAIL,
                    full_name="Benchmark Coordinator",
                    role=Role.COORDINATOR,
                    password="benchmark-coordinator-password",
                    actor=Actor.system(),
                    now=now,
                    settings=settings,
                    email_verified=True,
                )
            for number in range(1, PRESCRIBERS + 1):
                email = f"bench-prescriber-{number}@example.com"
                if await find_user_by_email(session, email) is not None:
                    continue
                prescriber = await create_account(
                    session,
                    email=email,
                    full_name=f"Benchmark Prescriber {number}",
                    role=Role.PRESCRIBER,
                    password="benchmark-prescriber-password",
                    actor=Actor.system(),
                    now=now,
                    settings=settings,
                    email_verified=True,
                )
                session.add(ClinicianProfile(user_id=prescriber.id, npi=None, created_at=now))
                for index, state in enumerate(US_STATES):
                    session.add(
                        StateLicense(
                            clinician_id=prescriber.id,
                            state=state,
                            number=f"{state}-MD-{number}{index:03d}",
                            license_type="MD",
                            expires_on=expires,
                        )
                    )
                    session.add(
                        DeaRegistration(
                            clinician_id=prescriber.id,
                            state=state,
                            number=f"BB{number}{index:06d}"[:9],
                            schedules="II,IIN,III,IIIN,IV,V",
                            expires_on=expires,
                        )
                    )
            return coordinator.id
    finally:
        await engine.dispose()


ENTRIES_SQL = """
INSERT INTO waitlist_entry (
    id, status, state, first_name, last_name, email, date_of_birth, phone, conditions,
    consent_to_contact, joined_at, confirmed_at, left_at, note, patient_id
)
SELECT
    gen_random_uuid(),
    r.status,
    r.state,
    CASE WHEN r.status <> 'left' THEN (ARRAY['Ava','Ben','Chloe','Dev','Elena','Farid','Grace','Hiro','Iris','Jamal'])[1 + r.n % 10] END,
    CASE WHEN r.status <> 'left'
        THEN (ARRAY['Garcia','Smith','Nguyen','Okafor','Kowalski','Patel','Cohen','Rossi','Kim','Lopez'])[1 + (r.n / 10) % 10] END,
    CASE WHEN r.status <> 'left' THEN 'person' || r.n || '@bench.example.com' END,
    CASE WHEN r.status <> 'left' THEN DATE '1950-01-01' + ((r.n * 7919) % 18000)::int END,
    CASE WHEN r.status <> 'left' AND r.n % 3 = 0 THEN '+1555' || lpad((r.n % 10000000)::text, 7, '0') END,
    CASE WHEN r.status <> 'left'
        THEN string_to_array((ARRAY['depression', 'anxiety', 'depression,anxiety', 'ptsd', 'ocd'])[1 + r.n % 5], ',') END,
    true,
    r.joined,
    CASE WHEN r.status = 'unconfirmed' THEN NULL ELSE least(r.joined + r.r_confirm * interval '36 hours', now()) END,
    CASE WHEN r.status = 'left' THEN least(r.joined + r.r_confirm * interval '40 days', now()) END,
    CASE WHEN r.status = 'lapsed' THEN 'Invitation expired unused; rejoin to be invited again.' END,
    NULL
FROM (
    SELECT
        d.n, d.state, d.r_confirm,
        d.status,
        CASE
            -- unconfirmed people joined in the last month and have not used their link yet
            WHEN d.status = 'unconfirmed' THEN now() - d.r_time * interval '30 days'
            -- invited and lapsed people were at the front of their queue: they joined about a year ago
            WHEN d.status IN ('invited', 'lapsed') THEN now() - interval '365 days' - d.r_time * interval '20 days'
            -- everyone else joined in row order over the past year (the heap grows in time order)
            ELSE now() - interval '365 days' * (1 - (d.n - 0.5) / $1::float8)
        END AS joined
    FROM (
        SELECT
            u.n, u.state, u.r_confirm, u.r_time,
            CASE
                WHEN u.r_status < 0.870 THEN 'waiting'
                WHEN u.r_status < 0.950 THEN 'unconfirmed'
                WHEN u.r_status < 0.990 THEN 'left'
                WHEN u.r_status < 0.995 THEN 'invited'
                ELSE 'lapsed'
            END AS status
        FROM (
            SELECT g.n,
                   ($4::text[])[width_bucket(random(), $5::float8[])] AS state,
                   random() AS r_status, random() AS r_confirm, random() AS r_time
            FROM generate_series($2::bigint, $3::bigint) AS g(n)
        ) AS u
    ) AS d
) AS r
"""

INVITATIONS_SQL = """
INSERT INTO waitlist_invitation (id, entry_id, state, status, invited_by_user_id, token_hash, created_at, expires_at)
SELECT gen_random_uuid(), i.entry_id, i.state, i.status, $1::uuid,
       CASE WHEN i.status = 'sent' THEN encode(sha256(convert_to('bench-invitation:' || i.entry_id::text, 'UTF8')), 'hex') END,
       i.created, i.created + interval '7 days'
FROM (
    SELECT e.id AS entry_id, e.state,
           CASE WHEN e.status = 'invited' THEN 'sent' ELSE 'expired' END AS status,
           CASE WHEN e.status = 'invited' THEN now() - random() * interval '6 days'
                ELSE now() - interval '8 days' - random() * interval '20 days' END AS created
    FROM waitlist_entry e
    WHERE e.status IN ('invited', 'lapsed')
) AS i
"""


# waitlist_tally from the loaded rows (the day of telehealth.waitlist.models.tally_bucket).
TALLY_SQL = f"""
INSERT INTO waitlist_tally (state, bucket_start, waiting)
SELECT state, date_bin('{TALLY_BUCKET_WIDTH}', confirmed_at, TIMESTAMPTZ '{TALLY_BUCKET_ORIGIN}'), count(*)
FROM waitlist_entry WHERE status = 'waiting' GROUP BY 1, 2
"""


async def load(admin_url: str, name: str, *, entries: int, seed: float, settings: Settings, log) -> dict[str, float]:
    """Create, migrate and fill the database; answer the time each step took (seconds)."""
    timings: dict[str, float] = {}
    url = database_url(admin_url, name)
    started = time.perf_counter()
    await recreate_database(admin_url, name)
    await migrate(url)
    coordinator = await ensure_staff(url, settings)
    timings["create_and_migrate"] = time.perf_counter() - started
    codes, bounds = cumulative_bounds()
    connection = await asyncpg.connect(plain_dsn(url))
    try:
        # Commits stay synchronous: VACUUM cannot mark a page all-visible while the commit of its rows is
        # not yet flushed (synchronous_commit = off), and the position count relies on all-visible pages.
        await connection.fetchval("SELECT setseed($1)", seed)
        step = time.perf_counter()
        # Without the tally's per-row triggers (one upsert per waiting row); the tally is filled in one
        # statement below, as migration 0016 fills it from existing rows.
        await connection.execute("SET session_replication_role = replica")
        batch = 250_000  # several statements, so progress shows and no one statement runs for minutes
        for first in range(1, entries + 1, batch):
            last = min(entries, first + batch - 1)
            await connection.execute(ENTRIES_SQL, entries, first, last, codes, bounds)
            log(f"  entries {last:,}/{entries:,} ({time.perf_counter() - step:.0f} s)")
        await connection.execute("SET session_replication_role = DEFAULT")
        timings["entries"] = time.perf_counter() - step
        step = time.perf_counter()
        await connection.execute(TALLY_SQL)
        timings["tally"] = time.perf_counter() - step
        step = time.perf_counter()
        await connection.execute(INVITATIONS_SQL, coordinator)
        timings["invitations"] = time.perf_counter() - step
        step = time.perf_counter()
        await connection.execute("ANALYZE")
        timings["analyze"] = time.perf_counter() - step
        await connection.execute(f"COMMENT ON DATABASE \"{name}\" IS '{json.dumps(load_marker(entries, seed))}'")
    finally:
        await connection.close()
    return timings


async def vacuum_analyze(dsn: str) -> dict[str, int]:
    """VACUUM (ANALYZE) the waiting-list tables, as autovacuum would have by the time a table this size had
    settled: it also sets the visibility map, which the index-only scans behind the position count need.
    Run before every measurement, so each run starts from the same state. Answers the heap pages and how
    many are all-visible."""
    connection = await asyncpg.connect(dsn)
    try:
        for table in ("waitlist_entry", "waitlist_tally", "waitlist_invitation", "waitlist_link", "rate_limit_event", "audit_event", "job"):
            await connection.execute(f"VACUUM (ANALYZE) {table}")
        return await visibility(connection)
    finally:
        await connection.close()


async def visibility(connection: asyncpg.Connection) -> dict[str, int]:
    row = await connection.fetchrow("SELECT relpages, relallvisible FROM pg_class WHERE relname = 'waitlist_entry'")
    return {"heap_pages": row["relpages"], "all_visible_pages": row["relallvisible"]}
