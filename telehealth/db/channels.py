"""Litestar Channels on PostgreSQL LISTEN/NOTIFY: what one app process publishes, every process subscribed
to the channel receives, with no broker beside the database (the video room's signalling uses it).

Litestar's asyncpg backend listens on one connection of its own per process, opened at start (so a database
still starting would stop the app) and never reopened, and it opens a new connection for every publish. This
one publishes through the app's pool, opens the listening connection when it can (at start, else at the next
subscription), and after losing it listens again on every channel still wanted at the next subscription."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable

import asyncpg
from litestar.channels.backends.asyncpg import AsyncPgChannelsBackend
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger("telehealth.channels")
NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def driver_dsn(url: str) -> str:
    """asyncpg's own spelling of a DATABASE_URL (no SQLAlchemy driver suffix)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


class PostgresChannelsBackend(AsyncPgChannelsBackend):
    def __init__(self, *, connect: Callable[[], Awaitable[asyncpg.Connection]], engine: Callable[[], AsyncEngine]) -> None:
        super().__init__(make_connection=connect)
        self._engine = engine
        self._listen_connection: asyncpg.Connection | None = None

    async def on_startup(self) -> None:
        self._listener_lock = asyncio.Lock()
        self._queue = asyncio.Queue()
        async with self._listener_lock:
            try:
                await self._listening()
            except (TimeoutError, OSError, asyncpg.PostgresError):  # the database may still be starting
                logger.warning("channels: the database is not reachable yet; listening starts with the first subscription")

    async def on_shutdown(self) -> None:
        async with self._listener_lock:
            if self._listen_connection is not None:
                with contextlib.suppress(Exception):
                    await self._listen_connection.close()
            self._listen_connection = None
            self._subscribed_channels.clear()
            self._queue = None

    async def _listening(self) -> asyncpg.Connection:
        """The listening connection, opened (again) if needed, listening on every channel still wanted."""
        if self._listen_connection is None or self._listen_connection.is_closed():
            connection = await self._connect()
            connection.add_termination_listener(self._lost)
            for channel in self._subscribed_channels:
                await connection.add_listener(channel, self._listener)
            self._listen_connection = connection
        return self._listen_connection

    def _lost(self, connection: asyncpg.Connection) -> None:
        if connection is self._listen_connection:
            logger.warning("channels: the listening connection was lost; it reopens with the next subscription")
            self._listen_connection = None

    async def subscribe(self, channels: Iterable[str]) -> None:
        async with self._listener_lock:
            listener = await self._listening()
            for channel in set(channels) - self._subscribed_channels:
                await listener.add_listener(channel, self._listener)
                self._subscribed_channels.add(channel)

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        async with self._listener_lock:
            for channel in set(channels) & self._subscribed_channels:
                self._subscribed_channels.discard(channel)
                if self._listen_connection is not None and not self._listen_connection.is_closed():
                    with contextlib.suppress(Exception):
                        await self._listen_connection.remove_listener(channel, self._listener)

    async def publish(self, data: bytes, channels: Iterable[str]) -> None:
        if self._queue is None:
            raise RuntimeError("the channels backend has not started")
        payload = data.decode("utf-8")
        async with self._engine().connect() as connection:
            for channel in channels:
                await connection.execute(NOTIFY, {"channel": channel, "payload": payload})
            await connection.commit()
