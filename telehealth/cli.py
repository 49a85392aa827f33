"""Litestar CLI commands: `litestar db upgrade`, `seed-demo`, `worker`, `jobs list|show|requeue`, `create-staff`,
`verify-audit`, `encrypt-totp-secrets`, `new-totp-key`, `demo-totp`. Also the `python app.py` entry point (embedded
database, demo data, one process)."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from litestar.plugins import CLIPlugin
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from telehealth.accounts.roles import STAFF_ROLES, Role
from telehealth.db.engine import make_engine, make_session_factory, transaction
from telehealth.db.migrate import migrate_database
from telehealth.lib.clock import SystemClock
from telehealth.settings import Settings, get_settings

T = TypeVar("T")


def _run_with_database(
    work: Callable[[AsyncEngine, async_sessionmaker[AsyncSession], Settings], Awaitable[T]], *, migrate: bool = False, pool_size: int = 4
) -> T:
    """Run `work` connected as the service's runtime role; with `migrate`, first upgrade the schema as the
    tables' owner (MIGRATION_DATABASE_URL), which also grants the runtime role."""
    import telehealth.jobs  # noqa: F401  (the commands may enqueue or run jobs: every handler must be registered)
    from telehealth.db.roles import resolve_database_urls

    settings = get_settings()

    async def main() -> T:
        urls = resolve_database_urls(settings)
        if migrate:
            await migrate_database(urls)
        engine = make_engine(urls.runtime, pool_size=pool_size, transaction_pooling=settings.transaction_pooling)
        try:
            return await work(engine, make_session_factory(engine), settings)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def app_command(command: str) -> str:
    """How to run `command` on this machine: this interpreter and this app.py, as the person typed them
    (`.venv/bin/python app.py demo-totp`); `litestar demo-totp` alone would need `--app app:app`.
    Run as the `telehealth` console script: `telehealth demo-totp`."""
    if sys.argv and Path(sys.argv[0]).name == "telehealth":
        return f"telehealth {command}"
    python, script = Path(sys.executable), Path(sys.argv[0]) if sys.argv and sys.argv[0].endswith("app.py") else Path("app.py")
    try:
        python = python.relative_to(Path.cwd())
    except ValueError:
        pass  # an interpreter outside this folder: its full path
    return f"{python} {script} {command}"


def echo_demo_sign_ins(sign_ins: list[Any], settings: Settings) -> None:
    click.echo(f"\n{settings.clinic_name}: demo sign-ins at {settings.public_base_url}/sign-in")
    for item in sign_ins:
        click.echo(f"  {item.role.value:<12} {item.email:<28} password: {item.password}")
        if item.otpauth_uri:
            click.echo(f"  {'':<12} two-factor: {item.otpauth_uri}")
    click.echo(f"  Current two-factor codes for the demo staff: `{app_command('demo-totp')}`.")
    if not settings.smtp_url:
        click.echo(f"  Mail sent by the app: {settings.public_base_url}/dev/mailbox/\n")


@click.group(name="db", help="Database schema.")
def db_group() -> None:
    pass


@db_group.command(name="upgrade", help="Apply every pending Alembic migration.")
def db_upgrade() -> None:
    async def work(_e: AsyncEngine, _f: Any, _s: Settings) -> None:
        pass

    _run_with_database(work, migrate=True)
    click.echo("Database schema is current.")


async def _seed(engine: AsyncEngine, factory: async_sessionmaker[AsyncSession], settings: Settings) -> list[Any]:
    from telehealth.demo import seed_demo

    async with transaction(factory) as session:
        return await seed_demo(session, now=SystemClock().now(), settings=settings)


@click.command(name="seed-demo", help="Create the demo clinic (idempotent) and print its sign-ins.")
def seed_demo_command() -> None:
    settings = get_settings()
    if settings.is_production:
        raise click.ClickException("seed-demo refuses to run in production")
    echo_demo_sign_ins(_run_with_database(_seed, migrate=True), settings)


@click.command(name="demo-totp", help="Print the current two-factor code of each demo staff account (demo only).")
def demo_totp_command() -> None:
    from telehealth.accounts.security import current_totp_code
    from telehealth.accounts.service import find_user_by_email
    from telehealth.demo import DEMO_ACCOUNTS

    settings = get_settings()
    if settings.is_production:
        raise click.ClickException("demo-totp refuses to run in production")

    async def work(_e: AsyncEngine, factory: async_sessionmaker[AsyncSession], settings: Settings) -> list[tuple[str, str]]:
        from telehealth.accounts.totp_secrets import TotpKeyring, unseal

        codes, keyring = [], TotpKeyring.from_settings(settings)
        async with transaction(factory) as session:
            for role, (email, _name) in DEMO_ACCOUNTS.items():
                user = await find_user_by_email(session, email)
                if role in STAFF_ROLES and user is not None and user.totp_secret:
                    secret = unseal(user.totp_secret, user_id=user.id, keyring=keyring)
                    codes.append((email, current_totp_code(secret, at=SystemClock().now())))
        return codes

    for email, code in _run_with_database(work):
        click.echo(f"{email:<28} {code}")


@click.command(name="create-staff", help="Create a staff account: they confirm their email, then set up two-factor at first sign-in.")
@click.option("--email", required=True)
@click.option("--name", "full_name", required=True)
@click.option("--role", type=click.Choice(sorted(role.value for role in STAFF_ROLES)), required=True)
@click.option(
    "--pharmacy",
    "pharmacy_ref",
    default=None,
    help="A pharmacist's pharmacy (its name or id); without it they see no queue until a coordinator assigns one.",
)
@click.password_option("--password", help="At least 12 characters.")
def create_staff_command(email: str, full_name: str, role: str, pharmacy_ref: str | None, password: str) -> None:
    from telehealth.accounts.service import create_account
    from telehealth.lib.actors import Actor
    from telehealth.lib.errors import DomainError
    from telehealth.prescribing.pharmacy_staff import create_pharmacist, find_pharmacy

    if pharmacy_ref is not None and role != Role.PHARMACIST.value:
        raise click.UsageError("--pharmacy is for a pharmacist only")

    async def work(_e: AsyncEngine, factory: async_sessionmaker[AsyncSession], settings: Settings) -> str:
        actor, now = Actor(None, "system"), SystemClock().now()
        async with transaction(factory) as session:
            if pharmacy_ref is not None:
                pharmacy = await find_pharmacy(session, pharmacy_ref)
                user = await create_pharmacist(
                    session,
                    email=email,
                    full_name=full_name,
                    password=password,
                    pharmacy_id=pharmacy.id if pharmacy else None,
                    actor=actor,
                    now=now,
                    settings=settings,
                )
            else:
                user = await create_account(
                    session,
                    email=email,
                    full_name=full_name,
                    role=Role(role),
                    password=password,
                    actor=actor,
                    now=now,
                    settings=settings,
                )
            return str(user.id)

    try:
        user_id = _run_with_database(work)
    except DomainError as refusal:
        reasons = "; ".join(f"{name} {why}" for name, why in refusal.fields.items())
        raise click.ClickException(f"{refusal.detail} {reasons}".strip()) from None
    click.echo(f"Created {role} {email} ({user_id}). A verification email is queued: they can sign in once they confirm the address.")
    if role == Role.PHARMACIST.value and pharmacy_ref is None:
        click.echo("They belong to no pharmacy yet: a coordinator assigns one on /coordinator/clinicians.")


@click.command(
    name="encrypt-totp-secrets", help="Encrypt every TOTP secret under TOTP_ENCRYPTION_KEY (those in clear, or under an old key)."
)
def encrypt_totp_secrets_command() -> None:
    from telehealth.accounts.totp_secrets import encrypt_all_totp_secrets

    async def work(_e: AsyncEngine, factory: async_sessionmaker[AsyncSession], settings: Settings) -> tuple[int, int]:
        return await encrypt_all_totp_secrets(factory, settings)

    changed, checked = _run_with_database(work)
    click.echo(f"TOTP secrets: {changed} of {checked} (re-)encrypted under the current key; the others already were.")


@click.command(name="new-totp-key", help="Print a fresh value for TOTP_ENCRYPTION_KEY (nothing is stored).")
@click.option("--id", "key_id", default=None, help="The key's id (default: today's date, e.g. k20261206).")
def new_totp_key_command(key_id: str | None) -> None:
    from datetime import UTC, datetime

    from telehealth.lib.key_texts import new_key_text

    click.echo(new_key_text(key_id or datetime.now(UTC).strftime("k%Y%m%d")))


@click.command(name="verify-audit", help="Walk the audit chain and check its anchors; report the first broken link.")
def verify_audit_command() -> None:
    from telehealth.audit.anchors import anchor_path, append_anchor, last_anchored_seq, read_anchors
    from telehealth.audit.keys import audit_keys
    from telehealth.audit.service import seal_audit_chain, verify_audit_chain

    async def work(_e: AsyncEngine, factory: async_sessionmaker[AsyncSession], settings: Settings) -> Any:
        keys, path = audit_keys(settings), anchor_path(settings)
        while True:  # seal what is pending first, so the walk covers every committed event
            async with transaction(factory) as session:
                if await seal_audit_chain(session, keys) == 0:
                    break
        async with transaction(factory) as session:
            report = await verify_audit_chain(session, keys, anchors=read_anchors(path))
        # Anchor only a head just verified: a broken chain is never blessed.
        if report.intact and path is not None and report.head and report.head[0] > last_anchored_seq(path):
            append_anchor(path, chain_seq=report.head[0], row_hash=report.head[1], key_id=report.head[2], now=SystemClock().now())
        return report, path

    report, path = _run_with_database(work)
    if report.unreadable_anchor_lines:
        click.echo(f"Unreadable anchor lines in {path} (skipped): {', '.join(map(str, report.unreadable_anchor_lines))}", err=True)
    if not report.intact:
        raise click.ClickException(f"Audit chain broken at event {report.first_broken_seq} of the chain: {report.problem}")
    click.echo(f"Audit chain intact: {report.rows_checked} events checked.")
    if path is None:
        click.echo("No anchors (AUDIT_ANCHOR_PATH unset): events cut from the end of the chain would go unnoticed.")
    else:
        click.echo(f"Anchors: {report.anchors_checked} checked against the chain, head anchored in {path}.")
    if report.legacy_rows:
        click.echo(f"{report.legacy_rows} events sealed before keyed hashing (plain SHA-256) open the chain.")


@click.command(name="worker", help="Run the background worker (several may run at once).")
def worker_command() -> None:
    from telehealth.asgi import make_clock, make_mailer
    from telehealth.devtools.demo_clock import follow_offset, refresh_offset
    from telehealth.lib.clock import OffsetClock
    from telehealth.outbox.worker import WorkerContext, run_worker

    async def work(_e: AsyncEngine, factory: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        mailer = make_mailer(settings, factory)
        clock = make_clock(settings)  # the demo's movable clock where it is enabled, as the web process's
        follower = None
        if isinstance(clock, OffsetClock):
            await refresh_offset(factory, clock)
            follower = asyncio.create_task(follow_offset(factory, clock, stop), name="demo-clock")
        context = WorkerContext(factory, settings, clock, services={"mailer": mailer})
        click.echo(f"Worker running {settings.worker_concurrency} jobs at a time; Ctrl-C to stop.")
        try:
            await run_worker(context, stop)
        finally:
            stop.set()
            if follower is not None:
                await follower
            await mailer.close()

    # A connection for each job running, one for claiming and scheduling, one spare: no job waits for the pool.
    _run_with_database(work, pool_size=get_settings().worker_concurrency + 2)


@click.group(name="jobs", help="Look at background jobs and requeue parked ones.")
def jobs_group() -> None:
    pass


def _job_line(job: Any) -> str:
    when = (job.finished_at if job.status == "parked" else None) or job.run_at
    error = f"  {job.last_error[:80]}" if job.last_error else ""
    return f"{job.id}  {job.status:<7} {job.kind:<32} {job.attempts}/{job.max_attempts}  {when:%Y-%m-%d %H:%M:%S}Z{error}"


@jobs_group.command(name="list", help="Queued, running and parked jobs, newest first (done ones are not listed).")
@click.option("--parked", is_flag=True, help="Only the parked jobs: those that failed every attempt.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
def jobs_list_command(parked: bool, limit: int) -> None:
    from telehealth.outbox.service import list_jobs

    async def work(_e: AsyncEngine, factory: async_sessionmaker[AsyncSession], _s: Settings) -> list[Any]:
        async with transaction(factory) as session:
            return await list_jobs(session, parked_only=parked, limit=limit)

    jobs = _run_with_database(work)
    for job in jobs:
        click.echo(_job_line(job))
    click.echo(f"{len(jobs)} {'parked ' if parked else ''}job{'' if len(jobs) == 1 else 's'}.")


@jobs_group.command(name="show", help="One job's details; its payload (addresses, single-use links) only with --payload.")
@click.argument("job_id", type=click.UUID)
@click.option("--payload", "with_payload", is_flag=True, help="Also print the payload (it may hold an address and a link).")
def jobs_show_command(job_id: Any, with_payload: bool) -> None:
    import json

    from telehealth.lib.errors import DomainError
    from telehealth.outbox.service import get_job

    async def work(_e: AsyncEngine, factory: async_sessionmaker[AsyncSession], _s: Settings) -> Any:
        async with transaction(factory) as session:
            return await get_job(session, job_id)

    try:
        job = _run_with_database(work)
    except DomainError as refusal:
        raise click.ClickException(refusal.detail) from None
    for name in (
        "id",
        "kind",
        "status",
        "attempts",
        "max_attempts",
        "dedupe_key",
        "created_at",
        "run_at",
        "lease_until",
        "finished_at",
        "last_error",
    ):
        click.echo(f"{name:<13} {getattr(job, name)}")
    if with_payload:
        click.echo(f"{'payload':<13} {json.dumps(job.payload, sort_keys=True)}")
    else:
        click.echo(f"{'payload keys':<13} {', '.join(sorted(job.payload)) or '(none)'}")


@jobs_group.command(name="requeue", help="Give a parked job a fresh set of attempts, due now (audited).")
@click.argument("job_id", type=click.UUID)
def jobs_requeue_command(job_id: Any) -> None:
    from telehealth.audit.service import record_audit_event
    from telehealth.lib.actors import Actor
    from telehealth.lib.errors import DomainError
    from telehealth.outbox.service import requeue_parked_job

    async def work(_e: AsyncEngine, factory: async_sessionmaker[AsyncSession], _s: Settings) -> None:
        async with transaction(factory) as session:
            await requeue_parked_job(
                session, job_id, actor=Actor(None, "operator"), now=SystemClock().now(), record_audit_event=record_audit_event
            )

    try:
        _run_with_database(work)
    except DomainError as refusal:
        raise click.ClickException(refusal.detail) from None
    click.echo(f"Job {job_id} is queued again; a worker runs it within seconds.")


COMMANDS = (
    db_group,
    seed_demo_command,
    demo_totp_command,
    create_staff_command,
    verify_audit_command,
    worker_command,
    jobs_group,
    encrypt_totp_secrets_command,
    new_totp_key_command,
)


class TelehealthCLIPlugin(CLIPlugin):
    def on_cli_init(self, cli: click.Group) -> None:
        for command in COMMANDS:
            cli.add_command(command)


def _with_local_stripe(settings: Settings) -> Settings:
    """The demo has no Stripe account: it pays through the same local stand-in of Stripe's API the tests use
    (its checkout page has a Pay button; no real money moves), which signs its webhooks to this server. Its
    state is kept next to the embedded database, so a patient who began paying can pay after a restart."""
    from dataclasses import replace

    from telehealth.devtools.stripe_stand_in import FakeStripe

    stand_in = FakeStripe(
        webhook_url=f"{settings.public_base_url}/api/v1/billing/stripe/webhook",
        webhook_secret=settings.stripe_webhook_secret,
        state_path=settings.embedded_data_dir.parent / "stripe-stand-in.json",
    )
    stand_in.start()
    click.echo(f"Payments: a local stand-in of Stripe's API at {stand_in.base_url} (test checkout page, no real money).")
    return replace(settings, stripe_api_base=stand_in.base_url)


def run_demo_server() -> None:
    """`python app.py`: embedded PostgreSQL when no DATABASE_URL, migrations, demo data, then serve."""
    import uvicorn

    from telehealth.asgi import create_app

    settings = get_settings()
    if not settings.is_production and not settings.stripe_api_base and settings.stripe_api_key == "sk_test_placeholder":
        settings = _with_local_stripe(settings)
    if settings.seed_demo and not settings.is_production:
        echo_demo_sign_ins(_run_with_database(_seed, migrate=True), settings)
    # No access log: emailed links carry single-use tokens in their query strings.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info", proxy_headers=True, access_log=False)


@click.group(invoke_without_command=True)
@click.pass_context
def main_cli(context: click.Context) -> None:
    """The `telehealth` console script and `python app.py [command]`. With no command: serve like
    `python app.py` (embedded PostgreSQL when no DATABASE_URL, demo data unless SEED_DEMO=false)."""
    if context.invoked_subcommand is None:
        run_demo_server()


for _command in COMMANDS:
    main_cli.add_command(_command)
