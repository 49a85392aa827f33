"""Mail as the standards want it: a Date header, a Message-ID on the clinic's public host, and addresses
checked by the grammar (email-validator), so `<victim@x.com>foo.com` is refused rather than delivered; the
development mailbox shows and downloads attachments."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import pytest

from telehealth.accounts.roles import Role
from telehealth.accounts.service import create_account
from telehealth.db.engine import transaction
from telehealth.lib.actors import Actor
from telehealth.lib.errors import InvalidInput
from telehealth.notifications.service import queue_email
from tests.helpers import drain_jobs, worker_context
from tests.integration.waitlist.helpers import join, person

SMUGGLED = "<victim@x.com>foo.com"  # a regex saw an address at "x.com>foo.com"; SMTP saw victim@x.com


async def test_every_message_has_a_date_and_a_message_id_on_the_public_host(session_factory, settings, clock, smtp):
    async with transaction(session_factory) as session:
        await queue_email(session, to="a@example.org", template="portal_update", context={"recipient_name": "A"}, now=clock.now())
    await drain_jobs(worker_context(session_factory, settings, clock))
    [message] = smtp.messages
    assert parsedate_to_datetime(message["Date"]) == clock.now()
    assert message["Message-ID"].endswith(f"@{urlsplit(settings.public_base_url).hostname}>")


async def test_a_smuggled_address_is_refused_at_the_waiting_list_naming_the_field(client, smtp):
    refused = await join(client, person(email=SMUGGLED))
    assert refused.status_code in (400, 422)
    assert "email" in refused.json()["fields"] and "valid email" in refused.json()["fields"]["email"]
    assert smtp.messages == []


async def test_a_smuggled_address_is_refused_for_an_account(session_factory, settings, clock):
    with pytest.raises(InvalidInput) as refusal:
        async with transaction(session_factory) as session:
            await create_account(
                session,
                email=SMUGGLED,
                full_name="Staff Person",
                role=Role.COORDINATOR,
                password="a long enough password 1",
                actor=Actor(None, "system"),
                now=clock.now(),
                settings=settings,
            )
    assert set(refusal.value.fields) == {"email"}


async def test_the_development_mailbox_lists_attachments_and_downloads_the_invite(session_factory, settings, clock):
    from litestar.testing import AsyncTestClient

    from telehealth.asgi import create_app
    from telehealth.notifications.mailer import DatabaseMailbox
    from telehealth.scheduling.ics import calendar_invite
    from tests.conftest import with_settings

    invite = calendar_invite(
        uid=uuid.uuid4(),
        sequence=0,
        starts_at=clock.now() + timedelta(days=1),
        ends_at=clock.now() + timedelta(days=1, hours=1),
        summary="Appointment",
        description="Join from your portal",
        now=clock.now(),
    )
    async with transaction(session_factory) as session:
        await queue_email(
            session,
            to="a@example.org",
            template="portal_update",
            context={"recipient_name": "A"},
            now=clock.now(),
            attachments=[{"filename": "appointment.ics", "content_type": "text/calendar", "content": invite}],
        )
    await drain_jobs(worker_context(session_factory, settings, clock, mailer=DatabaseMailbox(session_factory)))
    development = with_settings(settings, environment="development", smtp_url=None)
    async with AsyncTestClient(app=create_app(development, clock=clock)) as client:
        listing = await client.get("/dev/mailbox/")
        assert "appointment.ics" in listing.text
        message_path = re.search(r'href="(/dev/mailbox/[0-9a-f-]{36})"', listing.text).group(1)
        page = await client.get(message_path)
        link = re.search(r'href="(/dev/mailbox/[0-9a-f-]{36}/attachments/0)"', page.text).group(1)
        download = await client.get(link)
        assert download.status_code == 200
        assert download.headers["content-type"].startswith("text/calendar; method=REQUEST")
        assert 'filename="appointment.ics"' in download.headers["content-disposition"]
        assert download.text.startswith("BEGIN:VCALENDAR") and "ATTENDEE;" in download.text and "ORGANIZER;" in download.text
        assert (await client.get(link.replace("/0", "/1"))).status_code == 404
