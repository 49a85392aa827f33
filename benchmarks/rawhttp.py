"""A lean HTTP/1.1 keep-alive client for the load phases of the suite.

httpx spends 3-5 ms of CPU per request on these machines: with 8 requests in flight the load generator,
not the app, set the pace (GET /health did ~300 per second through httpx and ~2,800 through wrk). This
client writes prepared request bytes and reads the status line, the headers and a Content-Length or
chunked body: a fraction of a millisecond per request, so the figures are the server's.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request_bytes(
    base_url: str,
    method: str,
    path: str,
    *,
    json_body: Any = None,
    params: dict[str, Any] | None = None,
    cookies: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A whole request, built before the clock starts."""
    parts = urlsplit(base_url)
    if params:
        path = f"{path}?{urlencode(params)}"
    body = b"" if json_body is None else json.dumps(json_body).encode()
    lines = {"host": parts.netloc, **(headers or {})}
    if cookies:
        lines["cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    if json_body is not None:
        lines |= {"content-type": "application/json", "content-length": str(len(body))}
    head = "".join(f"{name}: {value}\r\n" for name, value in lines.items())
    return f"{method} {path} HTTP/1.1\r\n{head}\r\n".encode() + body


def raw_post(base_url: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """A POST of bytes exactly as given (a signed webhook payload must arrive byte for byte)."""
    lines = {"host": urlsplit(base_url).netloc, **headers, "content-length": str(len(body))}
    head = "".join(f"{name}: {value}\r\n" for name, value in lines.items())
    return f"POST {path} HTTP/1.1\r\n{head}\r\n".encode() + body


class Connection:
    """One keep-alive connection; reconnects when the server closed it while idle."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def send(self, request: bytes) -> Answer:
        for attempt in (1, 2):
            if self.writer is None:
                await self.connect()
            try:
                self.writer.write(request)  # type: ignore[union-attr]
                return await self._read()
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _read(self) -> Answer:
        reader = self.reader
        assert reader is not None
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked, closing = None, False, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                closing = True
        if chunked:
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                parts.append(await reader.readexactly(size + 2))
                if size == 0:
                    break
            body = b"".join(part[:-2] for part in parts)
        else:
            body = await reader.readexactly(length or 0)
        if closing:
            await self.close()
        return Answer(status, body)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        self.reader = self.writer = None
