"""The observation window (DOMAIN.md), through the real API and pages: the patient's report and the sitter's
end attestation come no earlier than 60 minutes after unlock; earlier needs a reason (422 naming
`ended_early_reason` without one), is recorded as ended early, alerts the care team with a detail-free
email and shows on the prescriber's view of the session. A serious answer or a sitter's event stands for the
reason (an emergency is never held up). Nothing is reported or ended before unlock (409). When the window
closes the sitter is emailed their end link, once; the patient and the sitter see when, in the patient's
zone."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import text

from telehealth.db.engine import transaction
from telehealth.dosing.sitters import issue_link
from telehealth.dosing.states import LinkPurpose
from tests.helpers import csrf_headers
from tests.integration.dosing.helpers import (
    END_LINK_SUBJECT,
    OBSERVATION,
    SITTER,
    active_plan,
    count,
    emails_to,
    execute,
    patient_signed_in,
    post,
    prescriber_signed_in,
    ready_session,
    report,
    sitter_device,
    unlocked_session,
)
from tests.integration.prescribing.helpers import at_once, refusal, request_as


async def row_of(session_factory, sql: str, **params) -> dict | None:
    async with session_factory() as session:
        found = (await session.execute(text(sql), params)).mappings().first()
        return dict(found) if found else None


async def end(client, token: str, **changes):
    return await post(
        sitter_device(client),
        f"/api/v1/sitter-links/{token}/end",
        {"typed_name": SITTER["full_name"], "outcome": "alert_and_safe", **changes},
    )


async def care_team_emails(mail, home) -> int:
    await mail.deliver()
    return len(emails_to(mail, home.prescriber.email))


def end_links_to(mail, to: str) -> list:
    return [m for m in emails_to(mail, to) if str(m["Subject"]).startswith(END_LINK_SUBJECT)]


# --- the patient's report -------------------------------------------------------------------------------


async def test_a_report_before_the_window_closes_needs_a_reason_and_is_flagged(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, unlocked, _ = await unlocked_session(client, mail)
    alerts_before = await care_team_emails(mail, home)

    clock.advance(OBSERVATION - timedelta(minutes=1))
    await patient_signed_in(client, home, clock)
    refused = await report(client, unlocked["id"])
    assert refusal(refused) == (422, "dosing_session.observation_window_open", ["ended_early_reason"])
    assert "11:00 EST" in refused.json()["detail"]  # unlocked 10:00 New York time
    blank = await report(client, unlocked["id"], ended_early_reason="   ")
    assert refusal(blank) == (422, "dosing_session.observation_window_open", ["ended_early_reason"])
    assert await row_of(session_factory, "SELECT * FROM dosing_report") is None

    filed = await report(client, unlocked["id"], ended_early_reason="My sitter had to leave for work")
    assert filed.status_code == 201, filed.text
    stored = await row_of(session_factory, "SELECT ended_early, ended_early_reason FROM dosing_report")
    assert stored == {"ended_early": True, "ended_early_reason": "My sitter had to leave for work"}
    assert await care_team_emails(mail, home) == alerts_before + 1
    [alert] = emails_to(mail, home.prescriber.email)[-1:]
    assert "sitter" not in mail.smtp.text_of(alert).lower() and "early" not in mail.smtp.text_of(alert).lower()  # no detail in email

    await prescriber_signed_in(client, home, clock)
    [seen] = (await client.get(f"/api/v1/plans/{home.plan_id}/dosing")).json()["sessions"]
    assert (seen["report"]["ended_early"], seen["report"]["ended_early_reason"]) == (True, "My sitter had to leave for work")
    page = await client.get(f"/plans/{home.plan_id}/dosing")
    assert "ended early" in page.text and "My sitter had to leave for work" in page.text


async def test_a_report_once_the_window_closed_needs_no_reason_and_is_not_early(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, unlocked, _ = await unlocked_session(client, mail)
    alerts_before = await care_team_emails(mail, home)
    clock.advance(OBSERVATION)  # exactly 60 minutes after unlock
    await patient_signed_in(client, home, clock)
    filed = await report(client, unlocked["id"], ended_early_reason="nothing to add")
    assert filed.status_code == 201, filed.text
    assert await row_of(session_factory, "SELECT ended_early, ended_early_reason FROM dosing_report") == {
        "ended_early": False,
        "ended_early_reason": None,
    }
    assert await care_team_emails(mail, home) == alerts_before


async def test_a_serious_answer_before_the_window_closes_is_not_held_up_for_a_reason(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, unlocked, _ = await unlocked_session(client, mail)
    alerts_before = await care_team_emails(mail, home)
    clock.advance(timedelta(minutes=10))
    filed = await report(client, unlocked["id"], fainting=True)
    assert filed.status_code == 201, filed.text
    assert await row_of(session_factory, "SELECT ended_early, ended_early_reason FROM dosing_report") == {
        "ended_early": True,
        "ended_early_reason": None,
    }
    assert await row_of(session_factory, "SELECT status FROM troche_plan") == {"status": "paused"}
    assert await care_team_emails(mail, home) == alerts_before + 1  # the serious event's alert; the early end adds none


# --- the sitter's end attestation -----------------------------------------------------------------------


async def test_the_sitters_end_before_the_window_closes_needs_a_reason_and_is_flagged(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, _, end_token = await unlocked_session(client, mail)
    alerts_before = await care_team_emails(mail, home)

    clock.advance(timedelta(minutes=30))
    refused = await end(client, end_token)
    assert refusal(refused) == (422, "dosing_session.observation_window_open", ["ended_early_reason"])
    assert await row_of(session_factory, "SELECT * FROM sitter_attestation WHERE kind = 'end'") is None
    ended = await end(client, end_token, ended_early_reason="Called away to an emergency at home")  # the link was not spent by the refusal
    assert ended.status_code == 200, ended.text
    stored = await row_of(session_factory, "SELECT ended_early, ended_early_reason FROM sitter_attestation WHERE kind = 'end'")
    assert stored == {"ended_early": True, "ended_early_reason": "Called away to an emergency at home"}
    assert await care_team_emails(mail, home) == alerts_before + 1

    await prescriber_signed_in(client, home, clock)
    [seen] = (await client.get(f"/api/v1/plans/{home.plan_id}/dosing")).json()["sessions"]
    assert (seen["sitter_end"]["ended_early"], seen["sitter_end"]["ended_early_reason"]) == (True, "Called away to an emergency at home")
    page = await client.get(f"/plans/{home.plan_id}/dosing")
    assert "ended early" in page.text and "Called away to an emergency at home" in page.text


async def test_the_sitters_end_once_the_window_closed_needs_no_reason_and_an_event_never_does(
    client, session_factory, settings, clock, mail
):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, _, end_token = await unlocked_session(client, mail)
    clock.advance(OBSERVATION)
    assert (await end(client, end_token)).status_code == 200
    assert await row_of(session_factory, "SELECT ended_early FROM sitter_attestation WHERE kind = 'end'") == {"ended_early": False}

    other = await active_plan(session_factory, settings, clock, email="pat2@example.org")
    await patient_signed_in(client, other, clock)
    _, _, second_token = await unlocked_session(client, mail)
    clock.advance(timedelta(minutes=5))
    event = await end(client, second_token, outcome="event", event_description="Vomited twice, now resting")
    assert event.status_code == 200, event.text
    stored = await row_of(
        session_factory, "SELECT ended_early, ended_early_reason FROM sitter_attestation WHERE kind = 'end' AND ended_early"
    )
    assert stored == {"ended_early": True, "ended_early_reason": None}  # the event's description says why


# --- never before unlock --------------------------------------------------------------------------------


async def test_neither_report_nor_end_is_accepted_before_unlock(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, booked, end_token = await ready_session(client, mail)
    assert refusal(await report(client, booked["id"], ended_early_reason="Just because"))[:2] == (409, "dosing_session.not_unlocked")
    assert refusal(await end(client, end_token, ended_early_reason="Just because"))[:2] == (409, "dosing_session.not_unlocked")
    assert await row_of(session_factory, "SELECT * FROM dosing_report") is None
    assert await row_of(session_factory, "SELECT * FROM sitter_attestation WHERE kind = 'end'") is None


# --- the end link by email ------------------------------------------------------------------------------


async def test_the_sitter_is_emailed_the_end_link_once_when_the_window_closes(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, _unlocked, page_token = await unlocked_session(client, mail)

    clock.advance(OBSERVATION - timedelta(minutes=1))
    await mail.deliver()
    assert end_links_to(mail, SITTER["email"]) == []

    clock.advance(timedelta(minutes=1))
    emailed_token = await mail.sitter_link(SITTER["email"], end=True)
    [sent] = end_links_to(mail, SITTER["email"])
    assert "Your link to close today's session with" in str(sent["Subject"])
    await mail.deliver()
    clock.advance(timedelta(minutes=5))
    await mail.deliver()
    assert len(end_links_to(mail, SITTER["email"])) == 1  # once, however often the job runs

    link = (await sitter_device(client).get(f"/api/v1/sitter-links/{emailed_token}")).json()
    assert (link["purpose"], link["session_status"]) == ("end", "unlocked")
    assert (await end(client, emailed_token)).status_code == 200
    assert refusal(await end(client, page_token))[:2] == (410, "sitter_link.gone")  # the first end spends both links
    assert await row_of(session_factory, "SELECT count(*) AS n FROM sitter_attestation WHERE kind = 'end'") == {"n": 1}
    assert (await row_of(session_factory, "SELECT end_link_sent_at FROM dosing_session"))["end_link_sent_at"] is not None


async def test_no_end_link_is_emailed_when_the_sitter_ended_already(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, _, page_token = await unlocked_session(client, mail)
    clock.advance(timedelta(minutes=20))
    assert (await end(client, page_token, ended_early_reason="Patient asleep and safe; I had to go")).status_code == 200
    clock.advance(OBSERVATION)
    await mail.deliver()
    assert end_links_to(mail, SITTER["email"]) == []


async def test_end_links_used_at_once_end_the_session_once(client, session_factory, settings, clock, mail):
    """The page's link and the emailed one are both live (more links, as if emailed again, make it a crowd).
    The test holds every link's row so that all the submits arrive together, then lets go: one end is
    recorded, the others answer 409 or 410. Without the session's row lock each spends its own link and
    then waits to withdraw the others': a deadlock, a 500."""
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter, unlocked, page_token = await unlocked_session(client, mail)
    clock.advance(OBSERVATION)
    tokens = [page_token, await mail.sitter_link(SITTER["email"], end=True)]
    async with transaction(session_factory) as session:
        for _ in range(2):
            tokens.append(
                await issue_link(
                    session,
                    sitter_id=uuid.UUID(sitter["id"]),
                    purpose=LinkPurpose.END,
                    now=clock.now(),
                    expires_at=clock.now() + timedelta(hours=2),
                    dosing_session_id=uuid.UUID(unlocked["id"]),
                )
            )
    phone = sitter_device(client)
    await csrf_headers(phone)  # the sitter's browser holds a CSRF cookie
    browser = httpx.Cookies(phone.cookies)
    body = {"typed_name": SITTER["full_name"], "outcome": "alert_and_safe"}
    requests = [request_as(phone, browser, "POST", f"/api/v1/sitter-links/{token}/end", json=body) for token in tokens]

    async with session_factory() as holder:
        await holder.execute(text("SELECT 1 FROM sitter_link WHERE dosing_session_id = :id FOR UPDATE"), {"id": uuid.UUID(unlocked["id"])})
        sent = asyncio.ensure_future(at_once(phone, requests))
        for _ in range(500):  # until every submit waits on a lock (the links', or the session's behind the first)
            waiting = await count(
                session_factory, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'telehealth' AND wait_event_type = 'Lock'"
            )
            if waiting >= len(requests) or sent.done():
                break
            await asyncio.sleep(0.02)
        await holder.rollback()
    answers = await sent

    codes = sorted(answer.status_code for answer in answers)
    assert codes[0] == 200 and set(codes[1:]) <= {409, 410}, [(a.status_code, a.text) for a in answers]
    assert await row_of(session_factory, "SELECT count(*) AS n FROM sitter_attestation WHERE kind = 'end'") == {"n": 1}


# --- when, in the patient's zone ------------------------------------------------------------------------


async def test_the_patient_and_the_sitter_see_when_they_may_report_and_end_in_the_patients_zone(
    client, session_factory, settings, clock, mail
):
    home = await active_plan(session_factory, settings, clock)
    await execute(session_factory, "UPDATE patient SET timezone = 'America/Los_Angeles' WHERE id = :id", id=home.patient.patient_id)
    await patient_signed_in(client, home, clock)
    _, unlocked, end_token = await unlocked_session(client, mail)  # unlocked 15:00 UTC: 07:00 in Los Angeles
    assert unlocked["report_from"].startswith("2026-11-23T16:00:00") and unlocked["report_from_local"] == "2026-11-23T08:00:00-08:00"
    link = (await sitter_device(client).get(f"/api/v1/sitter-links/{end_token}")).json()
    assert link["end_from_local"] == "2026-11-23T08:00:00-08:00"

    page = (await client.get(f"/dosing/sessions/{unlocked['id']}")).text
    assert "Send your report from <strong>08:00 PST</strong>" in page and 'name="ended_early_reason"' in page
    sitter_page = (await sitter_device(client).get(f"/sitter/{end_token}")).text
    assert "until 08:00 PST" in sitter_page and 'name="ended_early_reason"' in sitter_page

    clock.advance(OBSERVATION)
    await patient_signed_in(client, home, clock)
    page = (await client.get(f"/dosing/sessions/{unlocked['id']}")).text
    assert "Please tell us within 24 hours." in page and 'name="ended_early_reason"' not in page
    sitter_page = (await sitter_device(client).get(f"/sitter/{end_token}")).text
    assert "ended at 08:00 PST" in sitter_page and 'name="ended_early_reason"' not in sitter_page


async def test_the_pages_take_the_reason_for_an_early_end(client, session_factory, settings, clock, mail):
    from tests.helpers import form_csrf_token

    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, unlocked, end_token = await unlocked_session(client, mail)
    clock.advance(timedelta(minutes=15))
    session_path = f"/dosing/sessions/{unlocked['id']}"
    form = {
        "completed": "no",
        "troches_used": "2",
        "dissociation": "1",
        "systolic": "",
        "diastolic": "",
        "other_side_effects": "",
        "notes": "",
    }

    async def send(path: str, action: str, data: dict, browser=client):
        page = await browser.get(path)
        return await browser.post(action, data={**data, "_csrf_token": form_csrf_token(page.text)}, headers={"accept": "text/html"})

    refused = await send(session_path, f"{session_path}/report", form)
    assert refused.status_code == 422 and "Why the session ended early</strong>: is required" in refused.text, refused.text[
        refused.text.find('id="refusal"') :
    ][:600]
    assert 'name="ended_early_reason" maxlength="1000" aria-invalid="true"' in refused.text
    filed = await send(session_path, f"{session_path}/report", {**form, "ended_early_reason": "Felt too nauseous to go on"})
    assert filed.status_code == 200 and "Reported. Thank you." in filed.text

    sitter_form = {"typed_name": SITTER["full_name"], "outcome": "alert_and_safe"}
    refused = await send(f"/sitter/{end_token}", f"/sitter/{end_token}/end", sitter_form, browser=sitter_device(client))
    assert refused.status_code == 422 and 'name="ended_early_reason" maxlength="1000" aria-invalid="true"' in refused.text
    ended = await send(
        f"/sitter/{end_token}",
        f"/sitter/{end_token}/end",
        {**sitter_form, "ended_early_reason": "Session stopped"},
        browser=sitter_device(client),
    )
    assert ended.status_code == 200, ended.text
    stored = await row_of(session_factory, "SELECT ended_early_reason FROM sitter_attestation WHERE kind = 'end'")
    assert stored == {"ended_early_reason": "Session stopped"}
