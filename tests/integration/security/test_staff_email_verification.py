"""Finding: staff made with `create-staff` could sign in before confirming their email address (the address that
receives their reset links and alerts was never proven). Now a staff account signs in only with a confirmed
email; the demo's seeded staff are confirmed by the seed and sign in as before."""

from __future__ import annotations

import asyncio

from click.testing import CliRunner

from telehealth.db.engine import transaction
from telehealth.demo import DEMO_PASSWORD, seed_demo
from telehealth.lib.clock import SystemClock
from tests.helpers import csrf_headers, drain_jobs, link_in, worker_context

STAFF_PASSWORD = "a long staff password"


async def _sign_in(client, email: str, password: str):
    return await client.post("/api/v1/auth/sign-in", json={"email": email, "password": password}, headers=await csrf_headers(client))


async def test_staff_made_on_the_command_line_sign_in_only_after_confirming_their_email(
    client, database_url, session_factory, settings, clock, smtp, monkeypatch
):
    from telehealth import cli
    from telehealth.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        args = ["--email", "newrx@example.org", "--name", "New Prescriber", "--role", "prescriber", "--password", STAFF_PASSWORD]
        made = await asyncio.to_thread(CliRunner().invoke, cli.create_staff_command, args)
    finally:
        get_settings.cache_clear()
    assert made.exit_code == 0, made.output
    assert "once they confirm" in made.output

    refused = await _sign_in(client, "newrx@example.org", STAFF_PASSWORD)
    assert refused.status_code == 403
    assert refused.json()["code"] == "auth.email_unverified"
    assert "th_session" not in client.cookies
    # a wrong password still answers as for anyone: the refusal above tells nothing to a guesser
    assert (await _sign_in(client, "newrx@example.org", "not the password at all")).status_code == 401

    await drain_jobs(worker_context(session_factory, settings, SystemClock()))  # the command queued it at the real time
    token = link_in(smtp.text_of(smtp.messages[-1]), "/account/verify-email")
    assert (await client.post("/api/v1/auth/verify-email", json={"token": token}, headers=await csrf_headers(client))).status_code == 200
    signed_in = await _sign_in(client, "newrx@example.org", STAFF_PASSWORD)
    assert signed_in.status_code == 200
    assert signed_in.json()["two_factor"] == "enrol"


async def test_the_demo_staff_still_sign_in(client, session_factory, settings, clock):
    async with transaction(session_factory) as session:
        sign_ins = await seed_demo(session, now=clock.now(), settings=settings)
    for item in sign_ins:
        response = await _sign_in(client, item.email, DEMO_PASSWORD)
        assert response.status_code == 200, (item.email, response.text)
        assert response.json()["email_verified"] is True
