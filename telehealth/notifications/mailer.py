"""Where mail goes: an SMTP server (aiosmtplib), or the database mailbox in development."""

from __future__ import annotations

import asyncio
import base64
import time
from contextlib import suppress
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telehealth.db.engine import transaction
from telehealth.notifications.models import DevMailboxMessage


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...

    async def close(self) -> None: ...


def connection_was_lost(exc: BaseException) -> bool:
    """The server hung up: disconnected, or 421 (it is closing the connection, e.g. idle too long)."""
    return isinstance(exc, aiosmtplib.SMTPServerDisconnected) or getattr(exc, "code", None) == 421


class SmtpMailer:
    """SMTP_URL: smtp://[user:pass@]host[:port][?starttls=true] or smtps://... (implicit TLS).

    One connection is kept open and reused for every message (connect, EHLO, STARTTLS and AUTH once, not
    per email); concurrent jobs take turns on it. A connection idle past REUSE_IDLE_SECONDS is
    replaced before use (servers drop idle clients), and a reused one that fails mid-send is replaced and
    the message tried once more on a fresh connection; a fresh connection's failure is the job's failure.
    """

    REUSE_IDLE_SECONDS = 60.0  # well under the usual server idle timeouts (Postfix: 300 s)

    def __init__(self, url: str, *, timeout: float = 20.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
            raise ValueError("SMTP_URL must look like smtp://host:port or smtps://user:pass@host:port")
        query = parse_qs(parts.query)
        self.hostname = parts.hostname
        self.use_tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.use_tls else 25)
        self.start_tls = query.get("starttls", ["false"])[0].lower() == "true"
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout
        self._connection: aiosmtplib.SMTP | None = None
        self._last_used = 0.0
        self._lock = asyncio.Lock()  # one message at a time on the one connection

    async def _connect(self) -> aiosmtplib.SMTP:
        connection = aiosmtplib.SMTP(
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.use_tls,
            start_tls=self.start_tls,
            timeout=self.timeout,
        )
        await connection.connect()
        return connection

    def _reusable(self) -> aiosmtplib.SMTP | None:
        connection = self._connection
        if connection is None or not connection.is_connected:
            return None
        if time.monotonic() - self._last_used > self.REUSE_IDLE_SECONDS:
            return None
        return connection

    async def send(self, message: EmailMessage) -> None:
        async with self._lock:
            kept = self._reusable()
            if kept is not None:
                try:
                    await self._send_on(kept, message)
                    return
                except aiosmtplib.SMTPException as exc:
                    if not connection_was_lost(exc):
                        raise
                    # The server closed the connection we kept (restart, idle timeout): one try on a new one.
            self._drop()
            self._connection = await self._connect()
            await self._send_on(self._connection, message)

    async def _send_on(self, connection: aiosmtplib.SMTP, message: EmailMessage) -> None:
        try:
            await connection.send_message(message)
        except aiosmtplib.SMTPException as exc:
            if connection_was_lost(exc) or isinstance(exc, aiosmtplib.SMTPTimeoutError):
                self._drop()  # closed, or in an unknown state: never reuse it
            raise  # a refused recipient (5xx) leaves the connection usable
        self._last_used = time.monotonic()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    async def close(self) -> None:
        """Say QUIT and close the kept connection (whoever made the mailer calls this when the worker stops)."""
        async with self._lock:
            if self._connection is not None and self._connection.is_connected:
                with suppress(aiosmtplib.SMTPException, ConnectionError, OSError):
                    await self._connection.quit()
            self._drop()


def _kept_attachment(part: EmailMessage) -> dict[str, Any]:
    kept: dict[str, Any] = {"filename": part.get_filename() or "attachment", "content_type": part.get_content_type()}
    if part.get_content_maintype() == "text":
        return {**kept, "content": part.get_content(), "method": part.get_param("method")}
    payload = part.get_payload(decode=True)  # bytes for a leaf part (None when it has no body)
    return {**kept, "content": base64.b64encode(payload if isinstance(payload, bytes) else b"").decode(), "base64": True}


class DatabaseMailbox:
    """Development default: keep each message in dev_mailbox_message, readable at /dev/mailbox."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self.session_factory = session_factory

    async def send(self, message: EmailMessage) -> None:
        text_part = message.get_body(preferencelist=("plain",))
        html_part = message.get_body(preferencelist=("html",))
        async with transaction(self.session_factory) as session:
            session.add(
                DevMailboxMessage(
                    to_address=str(message["To"]),
                    subject=str(message["Subject"]),
                    body_text=text_part.get_content() if text_part else "",
                    body_html=html_part.get_content() if html_part else "",
                    attachments=[_kept_attachment(part) for part in message.iter_attachments()],
                )
            )

    async def close(self) -> None:
        pass  # nothing kept open between messages
