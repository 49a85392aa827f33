"""Clinicians edit their own hours, overrides and settings; slots follow."""

from __future__ import annotations

from tests.helpers import book_paid, csrf_headers, form_csrf_token, sign_in
from tests.integration.scheduling.helpers import prescriber_with_hours, screened_patient


async def test_hours_overrides_and_settings_shape_the_slots(client, session_factory, settings, clock):
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    patient = await screened_patient(session_factory, settings, clock)
    await sign_in(client, prescriber, clock)
    headers = await csrf_headers(client)
    overlapping = await client.put(
        "/api/v1/availability/weekly",
        json={"ranges": [{"weekday": 1, "start": "09:00:00", "end": "12:00:00"}, {"weekday": 1, "start": "11:00:00", "end": "13:00:00"}]},
        headers=headers,
    )
    assert overlapping.status_code == 422 and overlapping.json()["fields"] == {"weekday 1": "has overlapping ranges"}
    week = {"ranges": [{"weekday": 1, "start": "09:00:00", "end": "10:00:00"}, {"weekday": 1, "start": "14:00:00", "end": "15:00:00"}]}
    assert (await client.put("/api/v1/availability/weekly", json=week, headers=headers)).status_code == 200
    hourly = {"duration_minutes": 60, "step_minutes": 60, "buffer_after_minutes": 0}
    assert (await client.put("/api/v1/availability/settings/consult", json=hourly, headers=headers)).status_code == 200
    bad = await client.put("/api/v1/availability/settings/consult", json={"duration_minutes": 5}, headers=headers)
    assert bad.json()["fields"] == {"duration_minutes": "must be between 10 and 240"}
    extra = {"on_date": "2026-11-25", "kind": "extra", "start": "18:00:00", "end": "19:00:00"}
    assert (await client.post("/api/v1/availability/overrides", json=extra, headers=headers)).status_code == 201
    day_off = {"on_date": "2026-12-01", "kind": "off"}
    assert (await client.post("/api/v1/availability/overrides", json=day_off, headers=headers)).status_code == 201
    client.cookies.clear()
    await sign_in(client, patient, clock)
    slots = (
        await client.get("/api/v1/slots", params={"type": "consult", "from": "2026-11-24T00:00:00Z", "to": "2026-12-02T00:00:00Z"})
    ).json()
    local = sorted(s["starts_at_local"] for s in slots)
    # Tuesdays 09:00 and 14:00 New York; Wednesday 25th's extra hour 18:00; Tuesday 1 Dec is a day off
    assert local == ["2026-11-24T09:00:00-05:00", "2026-11-24T14:00:00-05:00", "2026-11-25T18:00:00-05:00"]


async def test_a_clinician_edits_hours_on_the_page_and_sees_the_calendar(client, session_factory, settings, clock, stripe_fake):
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    patient = await screened_patient(session_factory, settings, clock)
    await sign_in(client, patient, clock)
    body = {"type": "consult", "clinician_id": str(prescriber.user_id), "starts_at": "2026-11-24T15:00:00Z"}
    assert (await book_paid(client, stripe_fake, body))["status"] == "booked"
    client.cookies.clear()
    await sign_in(client, prescriber, clock)
    calendar = await client.get("/clinician/calendar")
    assert (
        calendar.status_code == 200 and f'10:00–10:45 · <a href="/patients/{patient.patient_id}">Pat</a>' in calendar.text
    )  # the patient's page
    page = await client.get("/clinician/hours")
    token = form_csrf_token(page.text)
    bad = await client.post("/clinician/hours", data={"lines": "Funday 9-10", "_csrf_token": token})
    assert bad.status_code == 422 and "Line 1 should look like" in bad.text
    saved = await client.post(
        "/clinician/hours", data={"lines": "Tuesday 08:00-09:00\nwednesday 13:00-14:00", "_csrf_token": token}, follow_redirects=False
    )
    assert saved.status_code in (302, 303)
    assert "Tuesday 08:00-09:00\nWednesday 13:00-14:00" in (await client.get("/clinician/hours")).text


async def test_a_clinician_adds_a_day_off_on_the_page(client, session_factory, settings, clock):
    prescriber = await prescriber_with_hours(session_factory, settings, clock)
    await sign_in(client, prescriber, clock)
    page = await client.get("/clinician/hours")
    token = form_csrf_token(page.text)
    refused = await client.post(
        "/clinician/overrides", data={"on_date": "2026-11-30", "kind": "extra", "start": "15:00", "end": "14:00", "_csrf_token": token}
    )
    assert refused.status_code == 422 and "start before their end" in refused.text
    added = await client.post(
        "/clinician/overrides", data={"on_date": "2026-11-30", "kind": "off", "_csrf_token": token}, follow_redirects=False
    )
    assert added.status_code in (302, 303)
    assert "Monday 30 November 2026: day off" in (await client.get("/clinician/hours")).text
