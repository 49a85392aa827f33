"""Finding: password-reset and sitter-invitation emails could be sent without limit (a way to flood someone's
inbox through us). Now both are limited per account, per client address and (sitters) per recipient.

Reset: per email the answer stays the same neutral 202 and nothing more is sent (so the limit says nothing about
whether an account exists); per address it is an open 429 (it concerns every email alike)."""

from __future__ import annotations

from datetime import timedelta

from telehealth.accounts.roles import Role
from tests.helpers import csrf_headers, drain_jobs, make_person, sign_in, worker_context
from tests.integration.dosing.helpers import another_device

OWNER = "pat@example.org"


async def _ask_reset(device, email: str):
    return await device.post("/api/v1/auth/password-reset", json={"email": email}, headers=await csrf_headers(device))


async def test_reset_emails_per_account_stop_at_three_an_hour_with_the_same_answer(client, session_factory, settings, clock, smtp):
    await make_person(session_factory, role=Role.PATIENT, email=OWNER, now=clock.now(), settings=settings)
    answers = []
    for n in range(5):
        device = another_device(client, ip=f"203.0.113.{n + 1}", user_agent="someone")  # spread over addresses
        known, unknown = await _ask_reset(device, OWNER), await _ask_reset(device, "ghost@example.org")
        assert (known.status_code, known.json()) == (unknown.status_code, unknown.json()) == (202, answers[0] if answers else known.json())
        answers.append(known.json())
    await drain_jobs(worker_context(session_factory, settings, clock))
    assert [m["To"] for m in smtp.messages] == [OWNER] * 3
    clock.advance(timedelta(hours=1, seconds=1))  # the window rolls
    assert (await _ask_reset(client, OWNER)).status_code == 202
    await drain_jobs(worker_context(session_factory, settings, clock))
    assert len(smtp.messages) == 4


async def test_reset_requests_per_address_are_refused_openly_after_ten_an_hour(client, session_factory, settings, clock, smtp):
    for n in range(10):
        assert (await _ask_reset(client, f"someone{n}@example.org")).status_code == 202
    refused = await _ask_reset(client, "someone-else@example.org")
    assert refused.status_code == 429
    assert refused.json()["code"] == "password_reset.rate_limited"
    elsewhere = another_device(client, ip="198.51.100.5", user_agent="another network")
    assert (await _ask_reset(elsewhere, "someone-else@example.org")).status_code == 202
    # the page answers the same refusal, in words
    page = await client.post("/password/forgot", data={"email": OWNER, "_csrf_token": client.cookies["csrftoken"]})
    assert page.status_code == 429
    assert "Too many password reset requests" in page.text


SITTER = {"full_name": "Robin Keane", "email": "robin@example.org", "relationship": "friend", "phone": ""}


async def test_sitter_invitations_are_limited_per_recipient_and_per_patient(client, session_factory, settings, clock, smtp):
    patient = await make_person(session_factory, role=Role.PATIENT, email=OWNER, now=clock.now(), settings=settings)
    await sign_in(client, patient, clock)
    headers = await csrf_headers(client)
    added = await client.post("/api/v1/my/sitters", json=SITTER, headers=headers)
    assert added.status_code == 201, added.text
    sitter_id = added.json()["id"]
    for _ in range(2):
        assert (await client.post(f"/api/v1/my/sitters/{sitter_id}/resend", headers=headers)).status_code == 200
    flooded = await client.post(f"/api/v1/my/sitters/{sitter_id}/resend", headers=headers)
    assert flooded.status_code == 429
    assert flooded.json()["code"] == "sitter.invitation_limit"
    await drain_jobs(worker_context(session_factory, settings, clock))
    assert [m["To"] for m in smtp.messages] == ["robin@example.org"] * 3

    # per patient: ten invitations a day in all, whoever they go to (naming and removing sitters in a loop)
    await client.post(f"/api/v1/my/sitters/{sitter_id}/remove", headers=headers)
    for n in range(7):
        other = await client.post(
            "/api/v1/my/sitters", json={**SITTER, "full_name": f"Sitter Number{n}", "email": f"s{n}@example.org"}, headers=headers
        )
        assert other.status_code == 201, other.text
        await client.post(f"/api/v1/my/sitters/{other.json()['id']}/remove", headers=headers)
    eleventh = await client.post(
        "/api/v1/my/sitters", json={**SITTER, "full_name": "One Too Many", "email": "late@example.org"}, headers=headers
    )
    assert eleventh.status_code == 429
    assert eleventh.json()["fields"] == {"email": "too many invitations today"}
    assert "late@example.org" not in {s["email"] for s in (await client.get("/api/v1/my/sitters")).json()}  # nothing half-made
