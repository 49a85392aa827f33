"""Where mail goes: an SMTP server (aiosmtplib), or the database mailbox in development."""

from __future__ import annotations

import base64
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.db.engine import transaction
from telehealth.notifications.models import DevMailboxMessage


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class SmtpMailer:
    """SMTP_URL: smtp://[user:pass@]host[:port][?starttls=true] or smtps://... (implicit TLS)."""

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

    async def send(self, message: EmailMessage) -> None:
        await aiosmtplib.send(
            message,
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.use_tls,
            start_tls=self.start_tls,
            timeout=self.timeout,
        )


def _kept_attachment(part: EmailMessage) -> dict[str, Any]:
    kept: dict[str, Any] = {"filename": part.get_filename() or "attachment", "content_type": part.get_content_type()}
    if part.get_content_maintype() == "text":
        return {**kept, "content": part.get_content(), "method": part.get_param("method")}
    return {**kept, "content": base64.b64encode(part.get_payload(decode=True) or b"").decode(), "base64": True}


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
