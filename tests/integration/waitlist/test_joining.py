"""Joining: double opt-in, silent duplicates, validation with field names, rate limit, honeypot."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from telehealth.waitlist.models import WaitlistEntry
from tests.conftest import with_settings
from tests.helpers import csrf_headers, form_csrf_token
from tests.integration.waitlist.helpers import join, join_and_confirm, mail_links, person, status


async def test_a_join_counts_only_after_the_emailed_link_is_used(client, session_factory, settings, clock, smtp):
    response = await join(client, person())
    assert response.status_code == 202
    links = await mail_links(session_factory, settings, clock, smtp, "/waitlist/entry")
    [message] = smtp.messages
    assert message["Subject"] == "Confirm your place on the Evergreen Home Program waiting list"
    before = await status(client, links["robin0@example.org"])
    assert (before["status"], before["position"], before["people_waiting_in_state"]) == ("unconfirmed", None, 0)
    confirmed = await client.post(
        "/api/v1/waitlist/confirm", json={"token": links["robin0@example.org"]}, headers=await csrf_headers(client)
    )
    assert (confirmed.json()["status"], confirmed.json()["position"]) == ("waiting", 1)
    again = await client.post("/api/v1/waitlist/confirm", json={"token": links["robin0@example.org"]}, headers=await csrf_headers(client))
    assert again.json()["position"] == 1  # confirming twice changes nothing


async def test_joining_again_changes_nothing_and_answers_the_same(client, session_factory, settings, clock, smtp):
    token = await join_and_confirm(client, session_factory, settings, clock, smtp, person())
    first = await join(client, person(first_name="Someone", state="CA", email="Robin0@Example.org"))
    second = await join(client, person(index=1))
    assert (first.status_code, first.json()) == (second.status_code, second.json())
    async with session_factory() as session:
        entries = (await session.execute(select(WaitlistEntry).order_by(WaitlistEntry.joined_at, WaitlistEntry.email))).scalars().all()
    assert [(e.email, e.first_name, e.state) for e in entries] == [
        ("robin0@example.org", "Robin0", "NY"),
        ("robin1@example.org", "Robin1", "NY"),
    ]
    assert (await status(client, token))["position"] == 1
    await mail_links(session_factory, settings, clock, smtp, "/waitlist/entry")
    subjects = [m["Subject"] for m in smtp.messages if m["To"] == "robin0@example.org"]
    assert subjects[-1] == "Your place on the Evergreen Home Program waiting list"  # the owner is told, nobody else


async def test_bad_input_names_each_field(client, clock):
    today = clock.now().date()
    seventeen = today.replace(year=today.year - 18) + timedelta(days=1)
    response = await join(
        client,
        person(
            state="XX",
            date_of_birth=seventeen.isoformat(),
            phone="555-1234",
            consent_to_contact=False,
            conditions=["insomnia"],
            email="not-an-email",
        ),
    )
    assert response.status_code == 422
    assert set(response.json()["fields"]) == {"state", "date_of_birth", "phone", "consent_to_contact", "conditions", "email"}
    assert response.json()["fields"]["date_of_birth"] == "must be at least 18 years ago: the program is for adults"
    eighteen_today = today.replace(year=today.year - 18)
    assert (await join(client, person(date_of_birth=eighteen_today.isoformat(), state="DC"))).status_code == 202
    typo = await join(client, {**person(index=2), "date_of_birth": "1985-13-40"})
    assert typo.status_code == 422 and "date_of_birth" in typo.json()["fields"]
    long_name = await join(client, person(index=4, first_name="x" * 100, last_name="bad\u0000name"))
    assert long_name.json()["fields"] == {
        "first_name": "must be at most 99 characters",
        "last_name": "contains characters that are not allowed",
    }
    unknown = await join(client, {**person(index=3), "favourite_colour": "green"})
    assert unknown.json()["fields"] == {"favourite_colour": "is not a known field"}


async def test_joining_is_rate_limited_per_address(settings, clock):
    from litestar.testing import AsyncTestClient

    from telehealth.asgi import create_app

    tight = with_settings(settings, waitlist_joins_per_ip_per_hour=4)
    async with AsyncTestClient(app=create_app(tight, clock=clock), base_url="http://testserver.local") as client:
        codes = [(await join(client, person(index=i))).status_code for i in range(3)]
        codes.append((await join(client, person(index=9, state="XX"))).status_code)  # bad input counts too
        limited = await join(client, person(index=4))
        assert codes == [202, 202, 202, 422]
        assert limited.status_code == 429
        assert limited.json()["code"] == "waitlist.rate_limited"
        clock.advance(timedelta(hours=1, seconds=1))
        assert (await join(client, person(index=4))).status_code == 202


async def test_the_honeypot_pretends_and_stores_nothing(client, session_factory):
    page = await client.get("/waitlist")
    token = form_csrf_token(page.text)
    form = {**{k: str(v) for k, v in person().items()}, "consent_to_contact": "yes", "website": "http://spam.example", "_csrf_token": token}
    response = await client.post("/waitlist", data=form)
    assert response.status_code == 200 and "Check your email" in response.text
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(WaitlistEntry)) == 0
    form["website"] = ""
    assert "Check your email" in (await client.post("/waitlist", data=form)).text
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(WaitlistEntry)) == 1


async def test_the_join_page_shows_field_errors(client):
    page = await client.get("/waitlist")
    token = form_csrf_token(page.text)
    form = {**{k: str(v) for k, v in person(phone="12345").items()}, "consent_to_contact": "yes", "_csrf_token": token}
    response = await client.post("/waitlist", data=form)
    assert response.status_code == 422
    assert "Phone: must be in international format" in response.text
    assert 'value="Robin0"' in response.text  # what was typed is kept
