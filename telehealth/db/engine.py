"""The async engine, the session factory, and the request-owned transaction."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager

from litestar.datastructures import State
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession


def async_database_url(url: str) -> str:
    """Accept the usual `postgresql://` spelling and use asyncpg underneath."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a PostgreSQL URL (postgresql://...)")


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        async_database_url(url),
        pool_size=pool_size,
        max_overflow=5,
        pool_pre_ping=True,  # a restarted PostgreSQL costs one retry, not a 500
        pool_timeout=5,
        connect_args={"timeout": 5, "server_settings": {"application_name": "telehealth"}},
    )


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work outside a request (CLI, worker): commit on success, roll back on error."""
    async with factory() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def provide_db_session(state: State) -> AsyncGenerator[AsyncSession, None]:
    """The request owns the transaction: services never commit; this commits after the handler succeeds.

    Litestar runs the code after `yield` once the response is built and before it is sent, so a failed
    commit still becomes an error response rather than a success that was never stored.
    """
    from telehealth.lib.errors import DomainError

    async with state.session_factory() as session:
        try:
            yield session
        except DomainError as refusal:
            await (session.commit() if refusal.keep_evidence else session.rollback())
            raise
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
