"""The whole home session through the API: a sitter named and confirmed through their own link, a session
scheduled (the sitter gets an invite), the check-in, the sitter's presence, unlock (twice: once), the
dose and timer, the patient's report and the sitter's end attestation; the next batch released by the
pharmacy rule once the batch's sessions are reported; the last report completes the plan."""

from __future__ import annotations

from datetime import timedelta

from tests.integration.dosing.helpers import (
    GOOD_REPORT,
    active_plan,
    count,
    patient_signed_in,
    post,
    ready_session,
    sitter_device,
    unlock,
)


async def test_a_session_from_scheduling_to_both_reports(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter, booked, end_token = await ready_session(client, mail)
    assert booked["number"] == 1 and booked["shown_as"] == "scheduled"
    invites = [
        m for m in mail.smtp.messages if m["To"] == sitter["email"] and any(p.get_content_type() == "text/calendar" for p in m.walk())
    ]
    assert len(invites) == 1

    unlocked = await unlock(client, booked["id"])
    assert unlocked.status_code == 200, unlocked.text
    body = unlocked.json()
    assert (body["status"], body["dose_mg"], body["troches"]) == ("unlocked", 100, 2)
    assert body["timer_ends_at"] is not None
    again = await unlock(client, booked["id"])
    assert again.status_code == 200 and again.json()["unlocked_at"] == body["unlocked_at"]
    assert await count(session_factory, "SELECT count(*) FROM audit_event WHERE action = 'dosing_session.unlock'") == 1

    sitter_view = await sitter_device(client).get(f"/api/v1/sitter-links/{end_token}")
    assert sitter_view.json()["timer_ends_at"] == body["timer_ends_at"]
    clock.advance(timedelta(hours=2))
    await patient_signed_in(client, home, clock)  # the idle session ended meanwhile
    reported = await post(client, f"/api/v1/my/dosing/sessions/{booked['id']}/report", GOOD_REPORT)
    assert reported.status_code == 201, reported.text
    assert reported.json()["shown_as"] == "reported"
    ended = await post(
        sitter_device(client), f"/api/v1/sitter-links/{end_token}/end", {"typed_name": sitter["full_name"], "outcome": "alert_and_safe"}
    )
    assert ended.status_code == 200, ended.text
    overview = (await client.get("/api/v1/my/dosing")).json()
    assert overview["inventory"] == {"delivered": 4, "used": 2, "lost": 0, "on_hand": 2}
