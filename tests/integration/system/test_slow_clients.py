"""Slow clients do not hold the workers (issue 9). uvicorn serves every connection from one event loop: a
client that trickles its request line and headers a byte at a time, one that sends headers and then its
body slowly, and one that connects and says nothing each cost a socket and a little memory, not a worker.
While 150 such clients hang on, ordinary requests on other connections are answered as usual, and an
oversize body sent slowly is refused with 413 as soon as its Content-Length is read.

What ends them is the proxy in front (docs/operations.md, "Deployment": nginx's client_header_timeout and
client_body_timeout, and request buffering, so the app only ever sees whole requests); uvicorn has no
header timeout of its own."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import httpx

from benchmarks.server import environment, running_server

SLOW_HEADERS = 100
SLOW_BODIES = 30
SILENT = 20


async def open_socket(base_url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(base_url)
    return await asyncio.open_connection(parts.hostname, parts.port)


async def trickle(writer: asyncio.StreamWriter, data: bytes, stop: asyncio.Event, *, every: float = 0.2) -> None:
    for byte in data:
        if stop.is_set():
            return
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(every)


async def test_slow_and_silent_clients_do_not_hold_up_other_requests(database_url):  # type: ignore[no-untyped-def]
    with environment({"WAITLIST_JOINS_PER_IP_PER_HOUR": "1000"}):
        async with running_server(database_url) as server:
            host = urlsplit(server.base_url).netloc
            stop = asyncio.Event()
            sockets = [await open_socket(server.base_url) for _ in range(SLOW_HEADERS + SLOW_BODIES + SILENT)]
            body = b'{"token": "' + b"x" * 400 + b'"}'
            slow_post = (
                f"POST /api/v1/waitlist/status HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\n\r\n"
            )
            tasks = []
            for index, (_, writer) in enumerate(sockets):
                if index < SLOW_HEADERS:
                    request = f"GET /health HTTP/1.1\r\nhost: {host}\r\nx-padding: {'p' * 200}\r\n\r\n".encode()
                    tasks.append(asyncio.create_task(trickle(writer, request, stop)))
                elif index < SLOW_HEADERS + SLOW_BODIES:
                    writer.write(slow_post.encode())
                    tasks.append(asyncio.create_task(trickle(writer, body, stop)))
            await asyncio.sleep(1.0)  # every slow client is mid-request

            try:
                async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
                    for _ in range(3):
                        started = time.monotonic()
                        assert (await client.get("/health")).status_code == 200
                        assert (await client.get("/sign-in")).status_code == 200
                        answered = await client.post(
                            "/api/v1/waitlist/status",
                            json={"token": "not-a-link-we-issued"},
                            headers={"x-csrftoken": client.cookies["csrftoken"]},
                        )
                        assert answered.status_code in (404, 410), answered.text
                        assert time.monotonic() - started < 5, "ordinary requests waited behind the slow clients"

                    # An oversize body is refused from its Content-Length, before the client has sent it.
                    reader, writer = await open_socket(server.base_url)
                    writer.write(
                        f"POST /api/v1/waitlist/status HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
                        f"content-length: 50000000\r\nx-csrftoken: {client.cookies['csrftoken']}\r\n"
                        f"cookie: csrftoken={client.cookies['csrftoken']}\r\n\r\n".encode()
                    )
                    writer.write(b"{" * 1000)
                    status_line = await asyncio.wait_for(reader.readline(), timeout=5)
                    assert status_line.split()[1] == b"413", status_line
                    writer.close()

                # The slow clients are still connected and still being served once they finish.
                assert sum(1 for task in tasks if not task.done()) > (SLOW_HEADERS + SLOW_BODIES) // 2
            finally:
                stop.set()
                await asyncio.gather(*tasks, return_exceptions=True)
                for _, writer in sockets:
                    writer.close()
