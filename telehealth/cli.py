"""Litestar CLI commands: `litestar db upgrade`, `seed-demo`, `worker`, `create-staff`, `verify-audit`,
`demo-totp`. Also the `python app.py` entry point (embedded database, demo data, one process)."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pathlib import Path

import click
from litestar.plugins import CLIPlugin
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.accounts.roles import STAFF_ROLES, Role
from telehealth.db.engine import make_engine, make_session_factory, transaction
from telehealth.db.migrate import upgrade_database
from telehealth.lib.clock import SystemClock
from telehealth.settings import Settings, get_settings

T = TypeVar("T")


def _run_with_database(work: Callable[[AsyncEngine, async_sessionmaker[AsyncSession], Settings], Awaitable[T]]) -> T:
    from telehealth.asgi import resolve_database_url

    settings = get_settings()

    async def main() -> T:
        url, _server = resolve_database_url(settings)
        engine = make_engine(url, pool_size=4)
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
    async def work(engine: AsyncEngine, _f: Any, _s: Settings) -> None:
        await upgrade_database(engine)

    _run_with_database(work)
    click.echo("Database schema is current.")


async def _seed(engine: AsyncEngine, factory: async_sessionmaker[AsyncSession], settings: Settings) -> list[Any]:
    from telehealth.demo import seed_demo

    await upgrade_database(engine)
    async with transaction(factory) as session:
        return await seed_demo(session, now=SystemClock().now(), settings=settings)


@click.command(name="seed-demo", help="Create the demo clinic (idempotent) and print its sign-ins.")
def seed_demo_command() -> None:
    settings = get_settings()
    if settings.is_production:
        raise click.ClickException("seed-demo refuses to run in production")
    echo_demo_sign_ins(_run_with_database(_seed), settings)


@click.command(name="demo-totp", help="Print the current two-factor code of each demo staff account (demo only).")
def demo_totp_command() -> None:
    from telehealth.accounts.security import current_totp_code
    from telehealth.accounts.service import find_user_by_email
    from telehealth.demo import DEMO_ACCOUNTS

    settings = get_settings()
    if settings.is_production:
        raise click.ClickException("demo-totp refuses to run in production")

    async def work(_e: AsyncEngine, factory: async_sessionmaker[AsyncSession], _s: Settings) -> list[tuple[str, str]]:
        codes = []
        async with transaction(factory) as session:
            for role, (email, _name) in DEMO_ACCOUNTS.items():
                user = await find_user_by_email(session, email)
                if role in STAFF_ROLES and user is not None and user.totp_secret:
                    codes.append((email, current_totp_code(user.totp_secret, at=SystemClock().now())))
        return codes

    for email, code in _run_with_database(work):
        click.echo(f"{email:<28} {code}")


@click.command(name="create-staff", help="Create a staff account; they set up two-factor at first sign-in.")
@click.option("--email", required=True)
@click.option("--name", "full_name", required=True)
@click.option("--role", type=click.Choice(sorted(role.value for role in STAFF_ROLES)), required=True)
@click.option("--pharmacy", "pharmacy_ref", default=None, help="A pharmacist's pharmacy (its name or id); without it they see no queue until a coordinator assigns one.")
@click.password_option("--password", help="At least 12 characters.")
def create_staff_command(email: str, full_name: str, role: str, pharmacy_ref: str | None, password: str) -> None:
    from telehealth.accounts.service import create_account
    from telehealth.audit.service import Actor
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
                    session, email=email, full_name=full_name, password=password, pharmacy_id=pharmacy.id if pharmacy else None, actor=actor,
                    now=now, settings=settings,
                )  # fmt: skip
            else:
                user = await create_account(
                    session, email=email, full_name=full_name, role=Role(role), password=password, actor=actor, now=now, settings=settings,
                )  # fmt: skip
            return str(user.id)

    try:
        user_id = _run_with_database(work)
    except DomainError as refusal:
        reasons = "; ".join(f"{name} {why}" for name, why in refusal.fields.items())
        raise click.ClickException(f"{refusal.detail} {reasons}".strip()) from None
    click.echo(f"Created {role} {email} ({user_id}). A verification email is queued.")
    if role == Role.PHARMACIST.value and pharmacy_ref is None:
        click.echo("They belong to no pharmacy yet: a coordinator assigns one on /coordinator/clinicians.")


@click.command(name="verify-audit", help="Walk the audit chain; report the first broken link.")
def verify_audit_command() -> None:
    from telehealth.audit.service import seal_audit_chain, verify_audit_chain

    async def work(_e: AsyncEngine, factory: async_sessionmaker[AsyncSession], _s: Settings) -> Any:
        while True:  # seal what is pending first, so the walk covers every committed event
            async with transaction(factory) as session:
                if await seal_audit_chain(session) == 0:
                    break
        async with transaction(factory) as session:
            return await verify_audit_chain(session)

    report = _run_with_database(work)
    if report.intact:
        click.echo(f"Audit chain intact: {report.rows_checked} events checked.")
        return
    raise click.ClickException(f"Audit chain broken at event {report.first_broken_seq} of the chain: {report.problem}")


@click.command(name="worker", help="Run the background worker (several may run at once).")
def worker_command() -> None:
    from telehealth.asgi import make_mailer
    from telehealth.outbox.worker import WorkerContext, import_job_modules, run_worker

    import_job_modules()

    async def work(_e: AsyncEngine, factory: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        context = WorkerContext(factory, settings, SystemClock(), services={"mailer": make_mailer(settings, factory)})
        click.echo("Worker running; Ctrl-C to stop.")
        await run_worker(context, stop)

    _run_with_database(work)


COMMANDS = (db_group, seed_demo_command, demo_totp_command, create_staff_command, verify_audit_command, worker_command)


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
        webhook_url=f"{settings.public_base_url}/api/v1/billing/stripe/webhook", webhook_secret=settings.stripe_webhook_secret,
        state_path=settings.embedded_data_dir.parent / "stripe-stand-in.json",
    )  # fmt: skip
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
        echo_demo_sign_ins(_run_with_database(_seed), settings)
    # No access log: emailed links carry single-use tokens in their query strings.
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, log_level="info", proxy_headers=True, access_log=False
    )


@click.group(invoke_without_command=True)
@click.pass_context
def main_cli(context: click.Context) -> None:
    """The `telehealth` console script and `python app.py [command]`. With no command: serve like
    `python app.py` (embedded PostgreSQL when no DATABASE_URL, demo data unless SEED_DEMO=false)."""
    if context.invoked_subcommand is None:
        run_demo_server()


for _command in COMMANDS:
    main_cli.add_command(_command)
