"""A TCP forwarder to PostgreSQL that can be started late or cut, to play a database outage.

It runs on its own thread and event loop: Litestar's test client serves the app from another thread while
the test's loop waits for the response, so a forwarder on the test's loop would never get to forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from sqlalchemy.engine import make_url

from telehealth.db.engine import async_database_url


class PostgresProxy:
    def __init__(self, target_url: str, port: int) -> None:
        url = make_url(async_database_url(target_url))
        self.port = port
        self.socket_dir = url.query.get("host") if isinstance(url.query.get("host"), str) else None
        self.target_host = url.host or "127.0.0.1"
        self.target_port = url.port or 5432
        self.server: asyncio.Server | None = None
        self.pipes: set[asyncio.Task[None]] = set()

    async def _open_target(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.socket_dir:
            return await asyncio.open_unix_connection(f"{self.socket_dir}/.s.PGSQL.{self.target_port}")
        return await asyncio.open_connection(self.target_host, self.target_port)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        target_reader, target_writer = await self._open_target()
        for task in (self._pipe(client_reader, target_writer), self._pipe(target_reader, client_writer)):
            pipe = asyncio.create_task(task)
            self.pipes.add(pipe)
            pipe.add_done_callback(self.pipes.discard)

    def start(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result(timeout=5)

    def stop(self) -> None:
        if getattr(self, "loop", None) is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop = None

    async def _listen(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _close(self) -> None:
        """Refuse new connections and cut the open ones, as a database restart would."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for pipe in list(self.pipes):
            pipe.cancel()
