"""create_app(): settings -> plugins, middleware, routes, lifespan (database, worker)."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from urllib.parse import urlsplit

import asyncpg
from litestar import Litestar
from litestar.channels import ChannelsPlugin
from litestar.openapi.config import OpenAPIConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from sqlalchemy.ext.asyncio import AsyncEngine

import telehealth.jobs  # noqa: F401  (registers every job handler: the entry owns the list, as it owns the routes)
from telehealth.accounts.csrf import CsrfMiddleware
from telehealth.accounts.middleware import SessionAuthMiddleware
from telehealth.billing.gateway import StripeGateway
from telehealth.bundled import STATIC_DIR, TEMPLATES_DIR
from telehealth.cli import TelehealthCLIPlugin
from telehealth.db.channels import PostgresChannelsBackend, driver_dsn
from telehealth.db.embedded import stop_embedded_postgres
from telehealth.db.engine import (
    async_database_url,
    make_autocommit_session_factory,
    make_engine,
    make_request_session_factory,
    make_session_factory,
)
from telehealth.db.migrate import upgrade_database
from telehealth.db.roles import resolve_database_urls
from telehealth.dependencies import APP_DEPENDENCIES
from telehealth.devtools.demo_clock import follow_offset, refresh_offset
from telehealth.lib.clock import Clock, OffsetClock
from telehealth.lib.dependency_order import resolve_dependencies_in_turn
from telehealth.lib.error_handlers import EXCEPTION_HANDLERS
from telehealth.lib.guard_calls import guards_get_the_handler_itself
from telehealth.lib.logging import logging_config
from telehealth.lib.openapi import JsonDocument, YamlDocument
from telehealth.lib.security_headers import STRIPE_CHECKOUT_ORIGIN, SecurityHeadersMiddleware
from telehealth.notifications.mailer import Mailer
from telehealth.outbox.worker import WorkerContext, run_worker
from telehealth.routes import ROUTE_HANDLERS
from telehealth.settings import Settings, get_settings
from telehealth.system.metrics import MetricsMiddleware, RequestMetrics
from telehealth.templating import configure_template_engine, pages_are_html
from telehealth.wiring import make_clock, make_mailer

logger = logging.getLogger("telehealth")
STRIPE_WEBHOOK_PATH = "/api/v1/billing/stripe/webhook"


def resolve_database_url(settings: Settings) -> tuple[str, object | None]:
    """The URL the service connects as (DATABASE_URL, or the embedded server's runtime role), and the
    embedded server's handle."""
    urls = resolve_database_urls(settings)
    return urls.runtime, urls.server


async def migrate_when_reachable(
    engine: AsyncEngine, stop: asyncio.Event, *, max_delay: float = 30.0, runtime_role: str | None = None
) -> None:
    """Retry migrations with backoff until the database answers (a database that starts after the app)."""
    delay = 1.0
    while not stop.is_set():
        try:
            await upgrade_database(engine, runtime_role=runtime_role)
        except Exception:  # still unreachable: wait and try again
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(max_delay, delay * 2)
        else:
            logger.info("migrations applied after the database became reachable")
            return


def payment_page_origin(settings: Settings) -> str:
    """Stripe's hosted checkout, or the origin of the Stripe stand-in configured by STRIPE_API_BASE."""
    if settings.stripe_api_base:
        parts = urlsplit(settings.stripe_api_base)
        return f"{parts.scheme}://{parts.netloc}"
    return STRIPE_CHECKOUT_ORIGIN


def create_app(settings: Settings | None = None, *, clock: Clock | None = None, mailer: Mailer | None = None) -> Litestar:
    settings = settings or get_settings()
    settings.validate()
    clock = make_clock(settings, clock)
    resolve_dependencies_in_turn()
    guards_get_the_handler_itself()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        urls = resolve_database_urls(settings)
        url, embedded_server = urls.runtime, urls.server
        engine = make_engine(url, pool_size=settings.database_pool_size, transaction_pooling=settings.transaction_pooling)
        # Migrations run as the tables' owner, past any pooler; the service connects as the runtime role (roles.py).
        migration_engine = engine if urls.migration == urls.runtime else make_engine(urls.migration, pool_size=1)
        factory = make_session_factory(engine)
        # LISTEN holds a session of its own: PostgreSQL itself, not a transaction pooler.
        direct_url = settings.database_direct_url or url
        app.state.engine = engine
        app.state.database_dsn = driver_dsn(async_database_url(direct_url))
        app.state.session_factory = factory
        app.state.request_session_factory = make_request_session_factory(engine)
        app.state.autocommit_session_factory = make_autocommit_session_factory(engine, transaction_pooling=settings.transaction_pooling)
        app.state.embedded_server = embedded_server
        app.state.mailer = mailer or make_mailer(settings, factory)
        app.state.stripe = StripeGateway(settings)
        stop = asyncio.Event()
        background: list[asyncio.Task[None]] = []
        if settings.auto_migrate or not settings.database_url:
            try:
                await upgrade_database(migration_engine, runtime_role=urls.runtime_role)
                if migration_engine is not engine:
                    await migration_engine.dispose()  # hold no owner connection while serving
            except Exception:  # the database may still be starting: /ready says so while we keep trying
                logger.warning("could not apply migrations at start; retrying in the background")
                background.append(
                    asyncio.create_task(
                        migrate_when_reachable(migration_engine, stop, runtime_role=urls.runtime_role), name="migrate-when-reachable"
                    )
                )
        if isinstance(clock, OffsetClock):  # the demo clock: follow the stored offset (devtools/demo_clock.py)
            await refresh_offset(factory, clock)  # before the worker starts: it runs at the demo's time from its first job
            background.append(asyncio.create_task(follow_offset(factory, clock, stop), name="demo-clock"))
        worker_task = None
        if settings.run_worker_in_process:
            context = WorkerContext(factory, settings, clock, services={"mailer": app.state.mailer, "stripe": app.state.stripe})
            worker_task = asyncio.create_task(run_worker(context, stop), name="in-process-worker")
        # Everything built at start (routes, templates, the ORM's mappers) lives as long as the process; moving it
        # out of the collector's generations makes a full collection ~5 ms instead of ~130 ms (docs/benchmarks.md).
        gc.freeze()
        try:
            yield
        finally:
            stop.set()
            for task in background:
                task.cancel()
            if worker_task is not None:
                with suppress(asyncio.CancelledError, TimeoutError):  # a job still sending is retried later
                    await asyncio.wait_for(worker_task, timeout=10)
            await app.state.stripe.close()
            if mailer is None:  # ours to close (its kept SMTP connection); a given mailer is the caller's
                await app.state.mailer.close()
            await engine.dispose()
            if migration_engine is not engine:
                await migration_engine.dispose()
            stop_embedded_postgres(embedded_server)  # SIGTERM too: uvicorn's exit skips atexit handlers
            # What the start froze is collectable again: a process that starts apps one after another (the tests make
            # one per test) would otherwise keep every stopped app, and all the garbage of its time, for good.
            gc.unfreeze()

    metrics = RequestMetrics()
    # Entered after `lifespan` (plugins append theirs), so the database is known when it starts listening.
    channels = ChannelsPlugin(
        backend=PostgresChannelsBackend(
            connect=lambda: asyncpg.connect(app.state.database_dsn, timeout=5), engine=lambda: app.state.engine
        ),
        arbitrary_channels_allowed=True,
    )
    app = Litestar(
        route_handlers=[
            *ROUTE_HANDLERS,
            create_static_files_router(path="/static", directories=[STATIC_DIR]),
        ],
        dependencies=APP_DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            MetricsMiddleware(metrics),
            SecurityHeadersMiddleware(hsts=settings.uses_tls, payment_page_origin=payment_page_origin(settings)),
            SessionAuthMiddleware(),
            CsrfMiddleware(),  # the origin check and a token bound to the session (accounts/csrf.py)
        ],
        after_request=pages_are_html,
        template_config=TemplateConfig(
            directory=TEMPLATES_DIR,
            engine=JinjaTemplateEngine,
            engine_callback=lambda engine: configure_template_engine(engine, settings),
        ),
        openapi_config=OpenAPIConfig(
            title=f"{settings.clinic_name} API",
            version="1",
            path="/schema",
            render_plugins=[JsonDocument(), YamlDocument()],  # our error body in the documents
        ),
        logging_config=logging_config(),
        request_max_body_size=settings.max_request_body_bytes,
        lifespan=[lifespan],
        plugins=[TelehealthCLIPlugin(), channels],
        debug=False,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.clock = clock
    return app
