"""An escalation tells the clinician who must call what they need to act: what set it off and when, the
number to call and the emergency contact, and whose call it is (issue 23: it once said only "name: crisis")."""

from __future__ import annotations

from telehealth.accounts.roles import Role
from tests.helpers import join_care_team, make_person, sign_in
from tests.integration.intake.helpers import CLEAN, new_patient, save


async def test_the_escalation_page_shows_trigger_time_phones_and_owner(client, session_factory, settings, clock):
    patient = await new_patient(client, session_factory, settings, clock)
    assert (
        await save(
            client,
            "demographics",
            {
                "first_name": "Robin",
                "last_name": "Fresh",
                "date_of_birth": "1990-04-02",
                "phone": "+12125550123",
                "timezone": "America/New_York",
            },
        )
    ).status_code == 200
    assert (
        await save(client, "emergency_contact", {"name": "Alex Fresh", "relationship": "sister", "phone": "+12125550999"})
    ).status_code == 200
    assert (await save(client, "cssrs", CLEAN["cssrs"] | {"cssrs_5": 1})).json()["crisis"] is True
    prescriber = await make_person(session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=settings)
    await join_care_team(session_factory, patient, prescriber, now=clock.now())
    client.cookies.clear()
    await sign_in(client, prescriber, clock)
    page = (await client.get("/escalations")).text
    assert "worked-out plan (C-SSRS 4 or 5)" in page
    assert 'href="tel:+12125550123"' in page and "Alex Fresh, sister, +12125550999" in page
    assert "Rx (prescriber)" in page
    assert "crisis.cssrs" not in page  # rule ids are for the audit, not the reader
