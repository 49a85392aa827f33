"""The email job: render, then hand to the mailer. A failure leaves the job to be retried with backoff."""

from __future__ import annotations

from typing import Any

from telehealth.notifications.mailer import Mailer
from telehealth.notifications.render import build_message, render_email
from telehealth.notifications.service import SEND_EMAIL_JOB
from telehealth.outbox.worker import WorkerContext, job_handler


@job_handler(SEND_EMAIL_JOB)
async def send_email(context: WorkerContext, payload: dict[str, Any]) -> None:
    mailer: Mailer = context.services["mailer"]
    rendered = render_email(payload["template"], payload["context"], context.settings)
    message = build_message(
        rendered, to=payload["to"], settings=context.settings, now=context.clock.now(), attachments=payload.get("attachments")
    )
    await mailer.send(message)
