"""Troches on hand and diversion control, through the real API: on hand is delivered minus used minus
lost; a reported loss, a session using more than prescribed, or fewer (reported completed, or leaving more
on hand than the sessions left need), a count below zero and an early request for the next batch each
raise a flag for the prescriber. The next batch (batch 1 holds sessions 1-2)
goes to the pharmacy by itself once sessions 1-2 are reported, unless a flag is open: then it waits
until the prescriber resolves the flag."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.integration.dosing.helpers import (
    active_plan,
    after_the_window,
    emails_to,
    next_unlocked,
    patient_signed_in,
    post,
    prescriber_signed_in,
    report,
    unlocked_session,
)
from tests.integration.prescribing.helpers import refusal


async def flags(session_factory, plan_id) -> list[tuple[str, int, bool]]:
    """(kind, troches, still open) of each flag of the plan, oldest first."""
    async with session_factory() as session:
        rows = await session.execute(
            text("SELECT kind, troches, resolved_at IS NULL AS open FROM inventory_flag WHERE plan_id = :p ORDER BY raised_at, kind"),
            {"p": plan_id},
        )
        return [tuple(row) for row in rows]


async def batch_statuses(session_factory, plan_id) -> list[str]:
    async with session_factory() as session:
        return list(
            (await session.execute(text("SELECT status FROM plan_batch WHERE plan_id = :p ORDER BY sequence"), {"p": plan_id})).scalars()
        )


async def on_hand(client) -> dict:
    overview = await client.get("/api/v1/my/dosing")
    assert overview.status_code == 200, overview.text
    return overview.json()["inventory"]


async def lose(client, troches: int, what_happened: str = "Dropped them down the sink"):
    return await post(client, "/api/v1/my/dosing/loss", {"troches": troches, "what_happened": what_happened})


# --- counting -------------------------------------------------------------------------------------------


async def test_on_hand_is_delivered_minus_used_minus_lost(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)  # batch 1: 100 + 100 mg of 50 mg troches
    await patient_signed_in(client, home, clock)
    assert await on_hand(client) == {"delivered": 4, "used": 0, "lost": 0, "on_hand": 4}
    _, unlocked, _ = await unlocked_session(client, mail)
    await after_the_window(client, home, clock)
    assert (await report(client, unlocked["id"], troches_used=2)).status_code == 201
    assert await on_hand(client) == {"delivered": 4, "used": 2, "lost": 0, "on_hand": 2}
    assert (await lose(client, 1)).status_code == 201
    assert await on_hand(client) == {"delivered": 4, "used": 2, "lost": 1, "on_hand": 1}

    await prescriber_signed_in(client, home, clock)
    seen = (await client.get(f"/api/v1/plans/{home.plan_id}/dosing")).json()
    assert seen["inventory"] == {"delivered": 4, "used": 2, "lost": 1, "on_hand": 1}


async def test_a_reported_loss_is_flagged_and_lowers_on_hand(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    lost = await lose(client, 3, "The bottle was stolen from my bag")
    assert lost.status_code == 201, lost.text
    assert (lost.json()["kind"], lost.json()["troches"], lost.json()["resolved_at"]) == ("loss_reported", 3, None)
    assert await flags(session_factory, home.plan_id) == [("loss_reported", 3, True)]
    assert (await on_hand(client))["on_hand"] == 1


async def test_a_loss_report_needs_a_count_and_what_happened(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    assert refusal(await lose(client, 0)) == (422, "request.invalid", ["troches"])
    assert refusal(await lose(client, 1, "   ")) == (422, "request.invalid", ["what_happened"])
    assert await flags(session_factory, home.plan_id) == []


async def test_using_more_than_prescribed_is_flagged(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, unlocked, _ = await unlocked_session(client, mail)  # session 1: 100 mg, 2 troches
    await after_the_window(client, home, clock)
    assert (await report(client, unlocked["id"], troches_used=3)).status_code == 201
    assert await flags(session_factory, home.plan_id) == [("more_than_prescribed", 1, True)]
    assert (await on_hand(client))["on_hand"] == 1


async def test_using_what_was_prescribed_raises_nothing(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, unlocked, _ = await unlocked_session(client, mail)
    await after_the_window(client, home, clock)
    assert (await report(client, unlocked["id"], troches_used=2)).status_code == 201
    assert await flags(session_factory, home.plan_id) == []


@pytest.mark.parametrize(("used", "short"), [(1, 1), (0, 2)])
async def test_a_completed_session_using_fewer_than_prescribed_is_flagged_and_alerts_the_care_team(
    client, session_factory, settings, clock, mail, used, short
):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, unlocked, _ = await unlocked_session(client, mail)  # session 1: 100 mg, 2 troches
    await after_the_window(client, home, clock)
    await mail.deliver()
    alerts_before = len(emails_to(mail, home.prescriber.email))
    assert (await report(client, unlocked["id"], troches_used=used)).status_code == 201  # completed: true
    assert await flags(session_factory, home.plan_id) == [("fewer_than_prescribed", short, True)]
    await mail.deliver()
    assert len(emails_to(mail, home.prescriber.email)) == alerts_before + 1

    await prescriber_signed_in(client, home, clock)
    page = (await client.get(f"/plans/{home.plan_id}/dosing")).text
    assert "a session used fewer troches than prescribed" in page and f"reported completed with {used} of 2 troches" in page
    assert "a session used fewer troches than prescribed" in (await client.get("/prescriber/dosing")).text


async def test_a_session_not_completed_is_flagged_when_it_leaves_more_on_hand_than_the_sessions_left_need(
    client, session_factory, settings, clock, mail
):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    _, unlocked, _ = await unlocked_session(client, mail)
    await after_the_window(client, home, clock)
    assert (await report(client, unlocked["id"], completed=False, troches_used=0)).status_code == 201  # 4 on hand, session 2 needs 2
    assert await flags(session_factory, home.plan_id) == [("fewer_than_prescribed", 2, True)]
    async with session_factory() as session:
        detail = await session.scalar(text("SELECT detail FROM inventory_flag"))
    assert detail == "not completed, 0 of 2 troches used; 2 on hand beyond the sessions left"


async def test_a_session_not_completed_that_leaves_nothing_over_is_not_flagged(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    assert (await lose(client, 2)).status_code == 201  # 2 left: what session 2 needs
    _, unlocked, _ = await unlocked_session(client, mail)
    await after_the_window(client, home, clock)
    assert (await report(client, unlocked["id"], completed=False, troches_used=0)).status_code == 201
    assert await flags(session_factory, home.plan_id) == [("loss_reported", 2, True)]


async def test_a_count_below_zero_is_flagged(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    assert (await lose(client, 3)).status_code == 201  # 4 delivered, 1 left
    _, unlocked, _ = await unlocked_session(client, mail)
    await after_the_window(client, home, clock)
    assert (await report(client, unlocked["id"], troches_used=2)).status_code == 201  # as prescribed, but only 1 was left
    assert sorted(await flags(session_factory, home.plan_id)) == [("count_below_zero", 1, True), ("loss_reported", 3, True)]
    assert (await on_hand(client))["on_hand"] == -1


# --- the next batch -------------------------------------------------------------------------------------


async def test_asking_for_the_next_batch_early_is_flagged_and_releases_nothing(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    asked = await post(client, "/api/v1/my/dosing/next-batch")
    assert asked.status_code == 200, asked.text
    assert (asked.json()["released"], asked.json()["early"]) == (False, True)
    assert await flags(session_factory, home.plan_id) == [("early_batch_request", 0, True)]
    assert await batch_statuses(session_factory, home.plan_id) == ["delivered", "held"]

    _, unlocked, _ = await unlocked_session(client, mail)
    await after_the_window(client, home, clock)
    assert (await report(client, unlocked["id"])).status_code == 201
    again = await post(client, "/api/v1/my/dosing/next-batch")  # one of sessions 1-2 reported: still early
    assert (again.json()["released"], again.json()["early"]) == (False, True)
    assert [kind for kind, _, _ in await flags(session_factory, home.plan_id)] == ["early_batch_request", "early_batch_request"]
    assert await batch_statuses(session_factory, home.plan_id) == ["delivered", "held"]


async def test_the_next_batch_is_released_once_its_earlier_sessions_are_reported(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter, first, _ = await unlocked_session(client, mail)
    await after_the_window(client, home, clock)
    assert (await report(client, first["id"])).status_code == 201
    assert await batch_statuses(session_factory, home.plan_id) == ["delivered", "held"]  # session 2 not reported yet

    second = await next_unlocked(client, home, mail, sitter["id"])
    await after_the_window(client, home, clock)
    assert (await report(client, second["id"])).status_code == 201
    assert await batch_statuses(session_factory, home.plan_id) == ["delivered", "queued"]
    assert await flags(session_factory, home.plan_id) == []
    async with session_factory() as session:
        released_by = await session.scalar(
            text("SELECT actor_role FROM audit_event WHERE action = 'plan_batch.release' AND resource_id = :id"),
            {"id": str(home.batch_ids[1])},
        )
    assert released_by == "system"


async def test_an_open_flag_holds_the_next_batch_until_the_prescriber_resolves_it(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter, first, _ = await unlocked_session(client, mail)
    await after_the_window(client, home, clock)
    assert (await report(client, first["id"])).status_code == 201
    flag = (await lose(client, 1)).json()
    second = await next_unlocked(client, home, mail, sitter["id"])
    await after_the_window(client, home, clock)
    assert (
        await report(client, second["id"], troches_used=1, completed=False)
    ).status_code == 201  # stopped early: 4 = 2 + 1 used + 1 lost, none left over
    assert await flags(session_factory, home.plan_id) == [("loss_reported", 1, True)]
    assert await batch_statuses(session_factory, home.plan_id) == ["delivered", "held"]  # sessions reported, but a flag is open
    asked = await post(client, "/api/v1/my/dosing/next-batch")
    assert (asked.json()["released"], asked.json()["early"]) == (False, False)
    assert await batch_statuses(session_factory, home.plan_id) == ["delivered", "held"]

    await prescriber_signed_in(client, home, clock)
    url = f"/api/v1/plans/{home.plan_id}/inventory-flags/{flag['id']}/resolve"
    assert refusal(await post(client, url, {"note": " "})) == (422, "request.invalid", ["note"])
    assert await batch_statuses(session_factory, home.plan_id) == ["delivered", "held"]
    resolved = await post(client, url, {"note": "Called the patient: one troche dropped and discarded."})
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["resolved_at"] is not None
    assert await flags(session_factory, home.plan_id) == [("loss_reported", 1, False)]
    assert await batch_statuses(session_factory, home.plan_id) == ["delivered", "queued"]
    assert refusal(await post(client, url, {"note": "again"}))[:2] == (404, "inventory_flag.not_found")


async def test_resolving_one_of_two_open_flags_still_holds_the_batch(client, session_factory, settings, clock, mail):
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter, first, _ = await unlocked_session(client, mail)
    await after_the_window(client, home, clock)
    assert (await report(client, first["id"])).status_code == 201
    early = (await post(client, "/api/v1/my/dosing/next-batch")).json()
    assert early["early"] is True
    lost = (await lose(client, 1)).json()
    second = await next_unlocked(client, home, mail, sitter["id"])
    await after_the_window(client, home, clock)
    assert (await report(client, second["id"], troches_used=1, completed=False)).status_code == 201  # stopped early, none left over
    assert sorted(kind for kind, _, _ in await flags(session_factory, home.plan_id)) == ["early_batch_request", "loss_reported"]

    await prescriber_signed_in(client, home, clock)
    assert (
        await post(client, f"/api/v1/plans/{home.plan_id}/inventory-flags/{lost['id']}/resolve", {"note": "Explained."})
    ).status_code == 200
    assert await batch_statuses(session_factory, home.plan_id) == ["delivered", "held"]
    async with session_factory() as session:
        early_id = await session.scalar(text("SELECT id FROM inventory_flag WHERE kind = 'early_batch_request'"))
    assert (
        await post(client, f"/api/v1/plans/{home.plan_id}/inventory-flags/{early_id}/resolve", {"note": "Asked early by mistake."})
    ).status_code == 200
    assert await batch_statuses(session_factory, home.plan_id) == ["delivered", "queued"]


async def test_a_batch_held_back_by_a_pause_is_released_when_the_review_resumes_the_plan(client, session_factory, settings, clock, mail):
    """Session 2's report (fainting) paused the plan, so the rule could not release batch 2 then; the
    review that resumes the plan lets the rule run again."""
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter, first, _ = await unlocked_session(client, mail)
    await after_the_window(client, home, clock)
    assert (await report(client, first["id"])).status_code == 201
    second = await next_unlocked(client, home, mail, sitter["id"])
    assert (await report(client, second["id"], fainting=True)).status_code == 201
    assert await batch_statuses(session_factory, home.plan_id) == ["delivered", "held"]

    await prescriber_signed_in(client, home, clock)
    reviewed = await post(
        client, f"/api/v1/plans/{home.plan_id}/review", {"note": "Brief faint, fully recovered; continue.", "decision": "resume"}
    )
    assert reviewed.status_code == 200, reviewed.text
    assert await batch_statuses(session_factory, home.plan_id) == ["delivered", "queued"]


async def test_resolving_a_flag_while_the_plan_is_paused_releases_nothing(client, session_factory, settings, clock, mail):
    """The batch rule never releases from a paused plan: a flag resolved while the prescriber has paused the
    plan leaves the next batch held (the resume, later, lets the rule run)."""
    home = await active_plan(session_factory, settings, clock)
    await patient_signed_in(client, home, clock)
    sitter, first, _ = await unlocked_session(client, mail)
    await after_the_window(client, home, clock)
    assert (await report(client, first["id"])).status_code == 201
    flag = (await lose(client, 1)).json()
    second = await next_unlocked(client, home, mail, sitter["id"])
    await after_the_window(client, home, clock)
    assert (await report(client, second["id"], troches_used=1, completed=False)).status_code == 201
    assert await batch_statuses(session_factory, home.plan_id) == ["delivered", "held"]

    await prescriber_signed_in(client, home, clock)
    paused = await post(client, f"/api/v1/plans/{home.plan_id}/pause", {"reason": "Reviewing the lost troche with the patient"})
    assert paused.status_code == 200, paused.text
    resolved = await post(client, f"/api/v1/plans/{home.plan_id}/inventory-flags/{flag['id']}/resolve", {"note": "Dropped and discarded."})
    assert resolved.status_code == 200, resolved.text
    assert await batch_statuses(session_factory, home.plan_id) == ["delivered", "held"]
