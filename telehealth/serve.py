"""`python app.py` and the `telehealth` console script: with no command, serve (embedded PostgreSQL when no
DATABASE_URL, migrations, demo data, one process); with one, run that CLI command. Above both the app factory
(asgi.py) and the commands (cli.py), which the app's Litestar CLI plugin also carries, so neither imports the other."""

from __future__ import annotations

import click

from telehealth.asgi import create_app
from telehealth.cli import COMMANDS, echo_demo_sign_ins, run_with_database, seed_demo_database
from telehealth.settings import Settings, get_settings


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

    settings = get_settings()
    if not settings.is_production and not settings.stripe_api_base and settings.stripe_api_key == "sk_test_placeholder":
        settings = _with_local_stripe(settings)
    if settings.seed_demo and not settings.is_production:
        echo_demo_sign_ins(run_with_database(seed_demo_database, migrate=True), settings)
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
