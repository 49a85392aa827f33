"""The dosing pages as a browser without JavaScript uses them: plain forms, answers in the page. The
patient names a sitter; the sitter signs on their own link page; a coordinator records the verification
call on theirs; the patient schedules; the sitter attests on their own link pages; the patient
checks in, sees what still blocks the dose, unlocks, sees the dose and timer, and reports; the
prescriber sees it all on the plan's page and reviews a paused plan."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from tests.helpers import form_csrf_token, sign_in
from tests.integration.dosing.helpers import SITTER, active_plan, another_device, coordinator, patient_signed_in, sitter_device


async def form_post(client, page_url: str, action: str, data: dict):
    page = await client.get(page_url)
    assert page.status_code == 200, page.text
    return await client.post(action, data={**data, "_csrf_token": form_csrf_token(page.text)}, headers={"accept": "text/html"})


async def test_patient_sitter_and_prescriber_pages_walk_a_session(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    empty = await client.get("/dosing")
    assert "Name a sitter below first" in empty.text

    added = await form_post(client, "/dosing", "/dosing/sitters", {**SITTER, "email": "sam@example.org"})
    assert added.status_code in (200, 303), added.text
    own = await form_post(client, "/dosing", "/dosing/sitters", {**SITTER, "email": home.patient.email, "full_name": "Someone Else"})
    assert own.status_code == 422 and "your own sitter" in own.text

    token = await mail.sitter_link(SITTER["email"])
    agreement = await sitter_device(client).get(f"/sitter/{token}")
    assert "Sitter agreement" in agreement.text and "never hand over extra medicine" in agreement.text
    wrong = await form_post(
        sitter_device(client), f"/sitter/{token}", f"/sitter/{token}/agreement", {"typed_name": "Someone", "adult": "yes", "agreed": "yes"}
    )
    assert wrong.status_code == 422 and "Sam Rivers" in wrong.text
    signed = await form_post(
        sitter_device(client),
        f"/sitter/{token}",
        f"/sitter/{token}/agreement",
        {"typed_name": "sam  rivers", "adult": "yes", "agreed": "yes"},
    )
    assert signed.status_code == 200 and "You have signed" in signed.text
    assert (await sitter_device(client).get(f"/sitter/{token}")).status_code == 410

    overview = await client.get("/dosing")
    assert "verification pending" in overview.text and '<option value="' not in overview.text  # not to be chosen before the call
    desk = another_device(client, ip="192.0.2.10", user_agent="the clinic's desk")
    await sign_in(desk, await coordinator(session_factory, settings, clock), clock)
    waiting = await desk.get("/coordinator/sitters")
    assert "Sam Rivers" in waiting.text and "sam@example.org" in waiting.text
    action = waiting.text.split('action="/coordinator/sitters/')[1].split('"')[0]
    verified = await form_post(desk, "/coordinator/sitters", f"/coordinator/sitters/{action}", {"method": "phone", "note": ""})
    assert verified.status_code == 200 and "The call is recorded" in verified.text and "No sitter is waiting" in verified.text
    await desk.aclose()

    starts = (clock.now() + timedelta(minutes=30)).astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%dT%H:%M")
    overview = await client.get("/dosing")
    sitter_id = overview.text.split('<option value="')[1].split('"')[0]
    booked = await form_post(client, "/dosing", "/dosing/sessions", {"starts_at": starts, "sitter_id": sitter_id})
    assert booked.status_code in (200, 303), booked.text
    session_url = str(booked.url) if booked.status_code == 200 else booked.headers["location"]
    session_path = "/dosing/sessions/" + session_url.rsplit("/dosing/sessions/", 1)[1]
    page = await client.get(session_path)
    assert "Check in" in page.text

    checked = await form_post(
        client,
        session_path,
        f"{session_path}/check-in",
        {
            "systolic": "124",
            "diastolic": "80",
            "pulse": "70",
            "mood": "6",
            "phq9_item9": "0",
            "fasted_two_hours": "yes",
            "no_alcohol_or_sedatives": "yes",
        },
    )
    assert checked.status_code == 200 and "Check-in recorded" in checked.text
    assert 'data-gate="gate.sitter_not_present"' in checked.text
    refused = await form_post(client, session_path, f"{session_path}/unlock", {})
    assert refused.status_code == 422 and 'data-gate="gate.sitter_not_present"' in refused.text
    assert "The dose stays locked until this check is met:</strong>" in refused.text  # one sentence, one colon

    presence = await mail.sitter_link(SITTER["email"])
    present = await form_post(sitter_device(client), f"/sitter/{presence}", f"/sitter/{presence}/presence", {"typed_name": "Sam Rivers"})
    assert present.status_code == 200 and "Your presence is recorded" in present.text

    unlocked = await form_post(client, session_path, f"{session_path}/unlock", {})
    assert unlocked.status_code == 200 and "Today's dose: 100 mg, 2 troches" in unlocked.text and "data-countdown" in unlocked.text
    assert "Your prescriber's directions:</strong> Under the tongue" in unlocked.text  # the plan's own words, not only generic steps
    end_page = await sitter_device(client).get(str(present.url))
    assert "Timer" in end_page.text and "data-countdown" in end_page.text

    reported = await form_post(
        client,
        session_path,
        f"{session_path}/report",
        {
            "completed": "yes",
            "troches_used": "2",
            "dissociation": "3",
            "side_effects": "fainting",
            "systolic": "",
            "diastolic": "",
            "other_side_effects": "",
            "notes": "",
        },
    )
    assert reported.status_code == 200 and "Reported. Thank you." in reported.text
    assert "Your plan is paused" in (await client.get("/dosing")).text  # fainting is a serious event

    client.cookies.clear()
    await sign_in(client, home.prescriber, clock)
    assert "Paused by a serious event" in (review_list := await client.get("/prescriber/dosing")).text and "fainting" in review_list.text
    plan_page = await client.get(f"/plans/{home.plan_id}/dosing")
    assert "124/80" in plan_page.text and "fainting" in plan_page.text
    no_note = await form_post(client, f"/plans/{home.plan_id}/dosing", f"/plans/{home.plan_id}/review", {"note": "", "decision": "resume"})
    assert no_note.status_code == 422
    resumed = await form_post(
        client,
        f"/plans/{home.plan_id}/dosing",
        f"/plans/{home.plan_id}/review",
        {"note": "Called: vasovagal, fine now.", "decision": "resume"},
    )
    assert resumed.status_code == 200 and "Plan status: <strong>active" in resumed.text
