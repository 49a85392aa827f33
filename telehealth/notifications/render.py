"""Render templates/email/<name>/{subject.txt,body.txt,body.html} into one message.

Emails never carry health information (DOMAIN.md): they say who the clinic is and link to the portal.
`EMAIL_TEMPLATES` lists every template with the context it needs, so a test renders each one and checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from telehealth.bundled import TEMPLATES_DIR
from telehealth.notifications.imip import address_invite
from telehealth.settings import Settings

EMAIL_TEMPLATE_DIR = TEMPLATES_DIR / "email"

# name -> the context keys it needs (beyond clinic_name and portal_url, which every email gets)
EMAIL_TEMPLATES: dict[str, tuple[str, ...]] = {
    "verify_email": ("recipient_name", "verify_url"),
    "password_reset": ("recipient_name", "reset_url", "valid_minutes"),
    "account_locked": ("recipient_name", "locked_minutes", "reset_url"),
    "two_factor_locked": ("recipient_name", "paused_for", "reset_url"),
    "portal_update": ("recipient_name",),
    "waitlist_confirm": ("recipient_name", "link_url"),
    "waitlist_already_joined": ("recipient_name", "link_url"),
    "waitlist_invitation": ("recipient_name", "accept_url", "expires_on"),
    "waitlist_invitation_expired": ("recipient_name", "link_url"),
    "staff_escalation": ("recipient_name",),
    "appointment_confirmed": ("recipient_name", "when_local"),
    "appointment_cancelled": ("recipient_name", "when_local"),
    "appointment_reminder": ("recipient_name", "when_local"),
    "billing_payment_received": ("recipient_name", "amount"),
    "billing_payment_due": ("recipient_name", "amount"),
    "billing_refund_issued": ("recipient_name", "amount"),
    "billing_time_released": ("recipient_name", "amount"),
    "shipment_on_its_way": ("recipient_name",),
    "credential_expiring": ("recipient_name",),
    "sitter_invitation": ("recipient_name", "patient_first_name", "link_url"),
    "sitter_session_scheduled": ("recipient_name", "patient_first_name", "when_local", "link_url"),
    "sitter_session_cancelled": ("recipient_name", "patient_first_name", "when_local"),
    "sitter_session_on_hold": ("recipient_name", "patient_first_name", "when_local"),
    "sitter_session_back_on": ("recipient_name", "patient_first_name", "when_local"),
    "sitter_presence_link": ("recipient_name", "patient_first_name", "when_local", "link_url"),
    "sitter_end_link": ("recipient_name", "patient_first_name", "when_local", "link_url"),
    "care_team_update": ("recipient_name",),
    "new_message": ("recipient_name",),
}


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    body_text: str
    body_html: str


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(EMAIL_TEMPLATE_DIR),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,  # a missing value is a bug, never a blank in someone's inbox
        keep_trailing_newline=True,
    )


def render_email(name: str, context: dict[str, Any], settings: Settings) -> RenderedEmail:
    if name not in EMAIL_TEMPLATES:
        raise ValueError(f"unknown email template {name!r}")
    missing = [key for key in EMAIL_TEMPLATES[name] if key not in context]
    if missing:
        raise ValueError(f"email {name!r} needs {', '.join(missing)}")
    full = {"clinic_name": settings.clinic_name, "portal_url": settings.public_base_url + "/", **context}
    env = _environment()
    subject = env.get_template(f"{name}/subject.txt").render(full).strip()
    return RenderedEmail(
        subject=" ".join(subject.split()),  # one line: a newline in a subject is a header injection
        body_text=env.get_template(f"{name}/body.txt").render(full),
        body_html=env.get_template(f"{name}/body.html").render(full),
    )


def build_message(
    rendered: RenderedEmail, *, to: str, settings: Settings, now: datetime, attachments: list[dict[str, str]] | None = None
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(now)  # RFC 5322 requires it; some filters score mail without one as spam
    # On the clinic's public host, not a made-up one: receivers check that the id's domain is plausible.
    message["Message-ID"] = make_msgid(domain=urlsplit(settings.public_base_url).hostname or "localhost")
    message.set_content(rendered.body_text)
    message.add_alternative(rendered.body_html, subtype="html")
    for attachment in attachments or []:
        maintype, _, subtype = attachment["content_type"].partition("/")
        if (maintype, subtype) == ("text", "calendar"):
            ics, method = address_invite(attachment["content"], organizer=settings.mail_from, attendee=to)
            message.add_attachment(ics, subtype="calendar", filename=attachment["filename"], params={"method": method})
        else:
            message.add_attachment(attachment["content"].encode(), maintype=maintype, subtype=subtype, filename=attachment["filename"])
    return message
