"""The sitter's links through the real API: each does one thing, once, for one sitter (and one session).
A used or expired agreement link is gone (410); a link asked to do another purpose is unknown (404); a
presence link acts only for its own sitter's session, and a session moved to another sitter withdraws
the old one; the patient cannot name themselves; signing needs the name the patient gave; a sitter who
declines or is removed loses their links and their sessions; tokens are stored only as SHA-256."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import timedelta

from sqlalchemy import text

from telehealth.db.engine import transaction
from telehealth.dosing.sitters import issue_link
from telehealth.dosing.states import LinkPurpose
from tests.integration.dosing.helpers import (
    SITTER,
    active_plan,
    check_in,
    confirmed_sitter,
    count,
    emails_to,
    execute,
    gate_codes,
    patient_signed_in,
    post,
    scheduled,
    sitter_device,
    sitter_present,
    unlock,
)
from tests.integration.prescribing.helpers import refusal

OTHER = {"full_name": "Kim Lee", "email": "kim@example.org", "relationship": "friend"}


def sign(token: str, name: str = SITTER["full_name"]) -> dict:
    return {"typed_name": name, "adult": True, "agreed": True}


async def invited(client, mail, details: dict = SITTER) -> tuple[dict, str]:
    """The patient names a sitter: (the sitter, the token of their agreement link)."""
    added = await post(client, "/api/v1/my/sitters", details)
    assert added.status_code == 201, added.text
    return added.json(), await mail.sitter_link(details["email"])


async def sitter_row(session_factory, sitter_id: str) -> dict:
    async with session_factory() as session:
        return dict((await session.execute(text("SELECT * FROM sitter WHERE id = :id"), {"id": uuid.UUID(sitter_id)})).mappings().one())


# --- one use, one purpose, a limited time ---------------------------------------------------------------


async def test_an_agreement_link_signs_once(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter, token = await invited(client, mail)
    signed = await post(sitter_device(client), f"/api/v1/sitter-links/{token}/agreement", sign(token))
    assert signed.status_code == 200 and signed.json()["status"] == "confirmed"
    row = await sitter_row(session_factory, sitter["id"])
    assert (
        row["agreement_version"]
        and len(row["agreement_sha256"]) == 64
        and row["typed_name"] == SITTER["full_name"]
        and row["adult_confirmed"]
    )

    again = await post(sitter_device(client), f"/api/v1/sitter-links/{token}/agreement", sign(token))
    assert refusal(again)[:2] == (410, "sitter_link.gone")
    assert refusal(await post(sitter_device(client), f"/api/v1/sitter-links/{token}/decline"))[:2] == (410, "sitter_link.gone")
    assert (await sitter_device(client).get(f"/api/v1/sitter-links/{token}")).status_code == 410


async def test_an_agreement_link_expires_after_seven_days(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter, token = await invited(client, mail)
    clock.advance(timedelta(days=8))
    expired = await post(sitter_device(client), f"/api/v1/sitter-links/{token}/agreement", sign(token))
    assert refusal(expired) == (410, "sitter_link.gone", ["token"])
    assert "expired" in expired.json()["fields"]["token"]
    assert (await sitter_row(session_factory, sitter["id"]))["status"] == "invited"


async def test_an_agreement_link_still_works_on_day_six(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, token = await invited(client, mail)
    clock.advance(timedelta(days=6, hours=23))
    assert (await post(sitter_device(client), f"/api/v1/sitter-links/{token}/agreement", sign(token))).status_code == 200


async def test_a_presence_link_cannot_sign_and_an_agreement_link_cannot_attest(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    presence_token = await mail.sitter_link(SITTER["email"])

    as_agreement = await post(sitter_device(client), f"/api/v1/sitter-links/{presence_token}/agreement", sign(presence_token))
    assert refusal(as_agreement)[:2] == (404, "sitter_link.not_found")
    assert refusal(await post(sitter_device(client), f"/api/v1/sitter-links/{presence_token}/decline"))[:2] == (
        404,
        "sitter_link.not_found",
    )
    assert (await sitter_row(session_factory, sitter["id"]))["status"] == "confirmed"

    _, agreement_token = await invited(client, mail, OTHER)  # a live agreement link, of an invited sitter
    as_presence = await post(sitter_device(client), f"/api/v1/sitter-links/{agreement_token}/presence", {"typed_name": OTHER["full_name"]})
    assert refusal(as_presence)[:2] == (404, "sitter_link.not_found")
    as_end = await post(
        sitter_device(client),
        f"/api/v1/sitter-links/{agreement_token}/end",
        {"typed_name": OTHER["full_name"], "outcome": "alert_and_safe"},
    )
    assert refusal(as_end)[:2] == (404, "sitter_link.not_found")
    assert await count(session_factory, "SELECT count(*) FROM sitter_attestation") == 0

    # Both links still do their own thing.
    assert (
        await post(sitter_device(client), f"/api/v1/sitter-links/{presence_token}/presence", {"typed_name": SITTER["full_name"]})
    ).status_code == 200
    assert (
        await post(sitter_device(client), f"/api/v1/sitter-links/{agreement_token}/agreement", sign(agreement_token, OTHER["full_name"]))
    ).status_code == 200


async def test_a_presence_link_is_spent_once(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    token = await mail.sitter_link(SITTER["email"])
    assert (
        await post(sitter_device(client), f"/api/v1/sitter-links/{token}/presence", {"typed_name": SITTER["full_name"]})
    ).status_code == 200
    assert refusal(await post(sitter_device(client), f"/api/v1/sitter-links/{token}/presence", {"typed_name": SITTER["full_name"]}))[
        :2
    ] == (410, "sitter_link.gone")
    assert await count(session_factory, "SELECT count(*) FROM sitter_attestation WHERE kind = 'presence'") == 1


# --- one sitter, one session ----------------------------------------------------------------------------


async def test_a_sitter_gets_no_presence_link_for_another_sitters_session(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    await confirmed_sitter(client, mail)  # sitter A
    sitter_b = await confirmed_sitter(client, mail, **OTHER)
    booked = await scheduled(client, sitter_b["id"], clock.now() + timedelta(minutes=30))
    already = len(mail.smtp.messages)
    await mail.deliver()
    to_a = [m for m in mail.smtp.messages[already:] if m["To"] == SITTER["email"]]
    assert to_a == []
    to_b = [
        m
        for m in mail.smtp.messages[already:]
        if m["To"] == OTHER["email"] and "/sitter/" in mail.smtp.text_of(m) and not str(m["Subject"]).startswith("Sitting with")
    ]  # the invite carries B's "I cannot come" link
    assert len(to_b) == 1
    token_b = re.search(r"/sitter/([\w\-]+)", mail.smtp.text_of(to_b[0])).group(1)

    # A cannot use B's link either: a presence link is signed with its own sitter's name.
    as_a = await post(sitter_device(client), f"/api/v1/sitter-links/{token_b}/presence", {"typed_name": SITTER["full_name"]})
    assert refusal(as_a) == (422, "request.invalid", ["typed_name"])
    assert (
        await post(sitter_device(client), f"/api/v1/sitter-links/{token_b}/presence", {"typed_name": OTHER["full_name"]})
    ).status_code == 200
    assert (await check_in(client, booked["id"])).status_code == 201
    assert (await unlock(client, booked["id"])).status_code == 200


async def test_moving_a_session_to_another_sitter_withdraws_the_first_sitters_link(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter_a = await confirmed_sitter(client, mail)
    sitter_b = await confirmed_sitter(client, mail, **OTHER)
    starts_at = clock.now() + timedelta(minutes=30)
    booked = await scheduled(client, sitter_a["id"], starts_at)
    token_a = await mail.sitter_link(SITTER["email"])

    moved = await post(
        client, f"/api/v1/my/dosing/sessions/{booked['id']}/reschedule", {"starts_at": starts_at.isoformat(), "sitter_id": sitter_b["id"]}
    )
    assert moved.status_code == 200 and moved.json()["sitter_id"] == sitter_b["id"]
    refused = await post(sitter_device(client), f"/api/v1/sitter-links/{token_a}/presence", {"typed_name": SITTER["full_name"]})
    assert refusal(refused)[:2] == (410, "sitter_link.gone")
    assert await count(session_factory, "SELECT count(*) FROM sitter_attestation") == 0

    assert (await check_in(client, booked["id"])).status_code == 201
    assert gate_codes(await unlock(client, booked["id"])) == ["gate.sitter_not_present"]
    await sitter_present(client, mail, name=OTHER["full_name"], email=OTHER["email"])
    assert (await unlock(client, booked["id"])).status_code == 200


async def test_once_the_sitter_is_present_the_session_cannot_move_to_another_sitter(client, session_factory, settings, clock, mail):
    """Sitter A said they are there; the patient wants B instead. Moving is refused (A's presence would
    block B's, one presence per session): the patient cancels and schedules again, and B attests."""
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter_a = await confirmed_sitter(client, mail)
    sitter_b = await confirmed_sitter(client, mail, **OTHER)
    starts_at = clock.now() + timedelta(minutes=30)
    booked = await scheduled(client, sitter_a["id"], starts_at)
    await sitter_present(client, mail)  # A
    moved = await post(
        client, f"/api/v1/my/dosing/sessions/{booked['id']}/reschedule", {"starts_at": starts_at.isoformat(), "sitter_id": sitter_b["id"]}
    )
    assert refusal(moved)[:2] == (409, "dosing_session.sitter_present")

    assert (await post(client, f"/api/v1/my/dosing/sessions/{booked['id']}/cancel")).json()["status"] == "cancelled"
    again = await scheduled(client, sitter_b["id"], starts_at)
    assert (await check_in(client, again["id"])).status_code == 201
    assert gate_codes(await unlock(client, again["id"])) == ["gate.sitter_not_present"]  # A's word was for the other session
    await sitter_present(client, mail, name=OTHER["full_name"], email=OTHER["email"])  # B
    assert (await unlock(client, again["id"])).status_code == 200


async def test_presence_given_for_one_time_does_not_carry_over_to_a_later_time(client, session_factory, settings, clock, mail):
    """The sitter was there on Monday; the session cannot be moved to Wednesday with Monday's word on it."""
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    await sitter_present(client, mail)
    later = clock.now() + timedelta(days=2)
    moved = await post(client, f"/api/v1/my/dosing/sessions/{booked['id']}/reschedule", {"starts_at": later.isoformat()})
    assert refusal(moved)[:2] == (409, "dosing_session.sitter_present")
    assert (await client.get(f"/api/v1/my/dosing/sessions/{booked['id']}")).json()["scheduled_at"] == booked["scheduled_at"]

    assert (await post(client, f"/api/v1/my/dosing/sessions/{booked['id']}/cancel")).status_code == 200
    moved_for_real = await scheduled(client, sitter["id"], later)
    clock.advance(timedelta(days=2) - timedelta(minutes=30))
    await patient_signed_in(client, home, clock)
    assert (await check_in(client, moved_for_real["id"])).status_code == 201
    assert gate_codes(await unlock(client, moved_for_real["id"])) == ["gate.sitter_not_present"]
    await sitter_present(client, mail)
    assert (await unlock(client, moved_for_real["id"])).status_code == 200


async def test_a_presence_link_kept_by_the_first_sitter_is_refused_even_unrevoked(client, session_factory, settings, clock, mail):
    """Belt and braces: were the withdrawal missed, the link still checks the session's sitter."""
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter_a = await confirmed_sitter(client, mail)
    sitter_b = await confirmed_sitter(client, mail, **OTHER)
    booked = await scheduled(client, sitter_a["id"], clock.now() + timedelta(minutes=30))
    token_a = await mail.sitter_link(SITTER["email"])
    await execute(
        session_factory, "UPDATE dosing_session SET sitter_id = :b WHERE id = :id", b=uuid.UUID(sitter_b["id"]), id=uuid.UUID(booked["id"])
    )
    refused = await post(sitter_device(client), f"/api/v1/sitter-links/{token_a}/presence", {"typed_name": SITTER["full_name"]})
    assert refusal(refused)[:2] == (409, "sitter_link.not_this_sitter")


async def test_presence_given_by_the_sessions_former_sitter_does_not_open_the_dose(client, session_factory, settings, clock, mail):
    """Belt and braces at unlock: were a session handed to another sitter after the first said they were
    there (the service refuses that move), the first sitter's word would still not open the dose."""
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter_a = await confirmed_sitter(client, mail)
    sitter_b = await confirmed_sitter(client, mail, **OTHER)
    booked = await scheduled(client, sitter_a["id"], clock.now() + timedelta(minutes=30))
    assert (await check_in(client, booked["id"])).status_code == 201
    await sitter_present(client, mail)  # sitter A is there
    await execute(
        session_factory, "UPDATE dosing_session SET sitter_id = :b WHERE id = :id", b=uuid.UUID(sitter_b["id"]), id=uuid.UUID(booked["id"])
    )
    assert gate_codes(await unlock(client, booked["id"])) == ["gate.sitter_not_present"]


# --- who may be a sitter --------------------------------------------------------------------------------


async def test_the_patient_cannot_be_their_own_sitter(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    same_email = await post(client, "/api/v1/my/sitters", {**SITTER, "email": home.patient.email.upper()})
    assert refusal(same_email) == (422, "request.invalid", ["email"])
    same_name = await post(client, "/api/v1/my/sitters", {**SITTER, "full_name": "  PAT "})  # the patient is "Pat"
    assert refusal(same_name) == (422, "request.invalid", ["full_name"])
    assert await count(session_factory, "SELECT count(*) FROM sitter") == 0


async def test_signing_with_another_name_is_refused(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter, token = await invited(client, mail)
    wrong = await post(sitter_device(client), f"/api/v1/sitter-links/{token}/agreement", sign(token, "Samuel Rivers"))
    assert refusal(wrong) == (422, "request.invalid", ["typed_name"])
    assert (await sitter_row(session_factory, sitter["id"]))["status"] == "invited"
    # Not spent by the refusal: the right name still signs (case and spaces aside).
    assert (await post(sitter_device(client), f"/api/v1/sitter-links/{token}/agreement", sign(token, " sam   RIVERS "))).status_code == 200


# --- leaving --------------------------------------------------------------------------------------------


async def test_declining_through_the_link(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter, token = await invited(client, mail)
    declined = await post(sitter_device(client), f"/api/v1/sitter-links/{token}/decline")
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    assert (await sitter_row(session_factory, sitter["id"]))["status"] == "declined"
    assert refusal(await post(sitter_device(client), f"/api/v1/sitter-links/{token}/agreement", sign(token)))[:2] == (
        410,
        "sitter_link.gone",
    )
    mine = (await client.get("/api/v1/my/sitters")).json()
    assert [s["status"] for s in mine] == ["declined"]


async def test_a_confirmed_sitter_who_declines_leaves_their_session_without_a_sitter(client, session_factory, settings, clock, mail):
    """No page offers a confirmed sitter an agreement link today, so the test issues one as the service
    would; the decline itself runs through the real API."""
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    presence_token = await mail.sitter_link(SITTER["email"])
    async with transaction(session_factory) as session:
        token = await issue_link(
            session,
            sitter_id=uuid.UUID(sitter["id"]),
            purpose=LinkPurpose.AGREEMENT,
            now=clock.now(),
            expires_at=clock.now() + timedelta(days=7),
        )

    declined = await post(sitter_device(client), f"/api/v1/sitter-links/{token}/decline")
    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    session_now = (await client.get(f"/api/v1/my/dosing/sessions/{booked['id']}")).json()
    assert (session_now["status"], session_now["sitter_id"]) == ("scheduled", None)
    assert refusal(
        await post(sitter_device(client), f"/api/v1/sitter-links/{presence_token}/presence", {"typed_name": SITTER["full_name"]})
    )[:2] == (410, "sitter_link.gone")
    assert (await check_in(client, booked["id"])).status_code == 201
    assert gate_codes(await unlock(client, booked["id"])) == ["gate.no_sitter"]


async def test_a_removed_sitters_links_stop_working(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(minutes=30))
    presence_token = await mail.sitter_link(SITTER["email"])
    other, agreement_token = await invited(client, mail, OTHER)

    for removed in (sitter, other):
        answer = await post(client, f"/api/v1/my/sitters/{removed['id']}/remove")
        assert answer.status_code == 200 and answer.json()["status"] == "removed"
    assert refusal(
        await post(sitter_device(client), f"/api/v1/sitter-links/{presence_token}/presence", {"typed_name": SITTER["full_name"]})
    )[:2] == (410, "sitter_link.gone")
    assert refusal(
        await post(sitter_device(client), f"/api/v1/sitter-links/{agreement_token}/agreement", sign(agreement_token, OTHER["full_name"]))
    )[:2] == (410, "sitter_link.gone")
    assert (await sitter_device(client).get(f"/api/v1/sitter-links/{agreement_token}")).status_code == 410
    assert (await client.get(f"/api/v1/my/dosing/sessions/{booked['id']}")).json()["sitter_id"] is None
    assert refusal(await post(client, f"/api/v1/my/sitters/{sitter['id']}/remove"))[:2] == (409, "sitter.already_gone")


# --- storage --------------------------------------------------------------------------------------------


async def test_a_token_is_stored_only_as_its_sha256(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, token = await invited(client, mail)
    async with session_factory() as session:
        stored = list((await session.execute(text("SELECT token_hash FROM sitter_link"))).scalars())
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]
    assert token not in stored
    assert await count(session_factory, "SELECT count(*) FROM sitter_link WHERE token_hash LIKE :t", t=f"%{token[:16]}%") == 0


async def test_a_sitter_who_cannot_come_says_so_from_the_invite_and_the_session_loses_them(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter = await confirmed_sitter(client, mail)
    booked = await scheduled(client, sitter["id"], clock.now() + timedelta(days=2))
    excuse = await mail.sitter_link(SITTER["email"], invite=True)
    assert (await sitter_device(client).get(f"/api/v1/sitter-links/{excuse}")).json()["purpose"] == "excuse"
    assert (
        await post(sitter_device(client), f"/api/v1/sitter-links/{excuse}/presence", {"typed_name": SITTER["full_name"]})
    ).status_code == 404  # one purpose
    excused = await post(sitter_device(client), f"/api/v1/sitter-links/{excuse}/excuse")
    assert excused.status_code == 200, excused.text
    assert (await post(sitter_device(client), f"/api/v1/sitter-links/{excuse}/excuse")).status_code == 410  # once
    session = (await client.get(f"/api/v1/my/dosing/sessions/{booked['id']}")).json()
    assert session["sitter_id"] is None and session["status"] == "scheduled"
    await mail.deliver()
    assert any("update in your" in str(m["Subject"]) for m in emails_to(mail, home.patient.email))
    # The patient gives it to a sitter again (here the same one, who can now come): a fresh invite and link.
    moved = await post(
        client, f"/api/v1/my/dosing/sessions/{booked['id']}/reschedule", {"starts_at": session["scheduled_at"], "sitter_id": sitter["id"]}
    )
    assert moved.status_code == 200 and moved.json()["sitter_id"] == sitter["id"]
    assert await mail.sitter_link(SITTER["email"], invite=True) != excuse
