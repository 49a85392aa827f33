"""Queueing email. The job renders and sends after the transaction commits, so nothing leaves for a change
that rolled back, and an SMTP outage only delays mail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from telehealth.notifications.render import EMAIL_TEMPLATES
from telehealth.outbox.service import enqueue_job

SEND_EMAIL_JOB = "notifications.send_email"


async def queue_email(
    session: AsyncSession,
    *,
    to: str,
    template: str,
    context: dict[str, Any],
    now: datetime,
    dedupe_key: str | None = None,
    attachments: list[dict[str, str]] | None = None,
) -> bool:
    """Queue one email in the caller's transaction. The context holds names and links, never health data;
    attachments are {"filename", "content_type", "content"} (text, e.g. a calendar invite)."""
    if template not in EMAIL_TEMPLATES:
        raise ValueError(f"unknown email template {template!r}")
    return await enqueue_job(
        session,
        kind=SEND_EMAIL_JOB,
        payload={"to": to, "template": template, "context": context, "attachments": attachments or []},
        now=now,
        dedupe_key=dedupe_key,
    )
