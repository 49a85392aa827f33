"""SQL injection strings are data, never SQL: in query parameters they get a 4xx naming the field, in
free text they are stored and shown as typed, and every table is still there afterwards."""

from __future__ import annotations

from sqlalchemy import text

from tests.helpers import form_csrf_token
from tests.integration.dosing.helpers import active_plan, patient_signed_in, post

INJECTIONS = ("' OR '1'='1", "1; DROP TABLE patient; --", "x') UNION SELECT email, password_hash FROM user_account --")


async def test_injection_strings_change_nothing(client, session_factory, settings, clock):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    for attack in INJECTIONS:
        searched = await client.get("/api/v1/slots", params={"type": attack, "from": attack, "to": attack})
        assert 400 <= searched.status_code < 500, searched.text
        assert (await client.get(f"/api/v1/my/dosing/sessions/{attack}")).status_code in (404, 400)
        added = await post(
            client, "/api/v1/my/sitters", {"full_name": f"Sam {attack}"[:200], "email": "sam@example.org", "relationship": attack}
        )
        assert added.status_code in (201, 409), added.text
        page = await client.get("/messages")
        sent = await client.post("/messages", data={"body": attack, "_csrf_token": form_csrf_token(page.text)})
        assert sent.status_code == 200
    async with session_factory() as session:
        assert await session.scalar(text("SELECT count(*) FROM patient")) == 1
        bodies = set((await session.execute(text("SELECT body FROM care_message"))).scalars())
    assert bodies == set(INJECTIONS)  # stored exactly as typed
