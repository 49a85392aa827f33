"""Litestar Channels on PostgreSQL LISTEN/NOTIFY: what one app process publishes, every process subscribed
to the channel receives, with no broker beside the database (the video room's signalling uses it).

Litestar's asyncpg backend listens on one connection of its own per process (kept for the process's life)
and, as shipped, opens a new connection for every publish; this one publishes through the app's pool."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

import asyncpg
from litestar.channels.backends.asyncpg import AsyncPgChannelsBackend
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def driver_dsn(url: str) -> str:
    """asyncpg's own spelling of a DATABASE_URL (no SQLAlchemy driver suffix)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class PostgresChannelsBackend(AsyncPgChannelsBackend):
    def __init__(self, *, connect: Callable[[], Awaitable[asyncpg.Connection]], engine: Callable[[], AsyncEngine]) -> None:
        super().__init__(make_connection=connect)
        self._engine = engine

    async def publish(self, data: bytes, channels: Iterable[str]) -> None:
        if self._queue is None:
            raise RuntimeError("the channels backend has not started")
        payload = data.decode("utf-8")
        async with self._engine().connect() as connection:
            for channel in channels:
                await connection.execute(NOTIFY, {"channel": channel, "payload": payload})
            await connection.commit()
