"""The plan page's forms for a signed plan's changes (pause, resume, release a held shipment early,
discontinue), as a browser without JavaScript posts them: a refusal shows the plan page again with its
reason, success redirects (303) back to the page with a notice."""

from __future__ import annotations

from tests.integration.dosing.helpers import active_plan, count, prescriber_signed_in
from tests.integration.dosing.test_pages import form_post


def back_to(response) -> str:
    """Where the 303 after a form led (the test client follows it)."""
    assert [step.status_code for step in response.history] == [303] and response.status_code == 200, response.text
    return f"{response.url.path}?{response.url.query.decode()}"


async def test_pause_resume_release_and_discontinue_from_the_plan_page(client, session_factory, settings, clock):
    home = await active_plan(session_factory, settings, clock)
    await prescriber_signed_in(client, home, clock)
    page = f"/plans/{home.plan_id}"
    held = (await client.get(page)).text.split(f'action="{page}/batches/')[1].split("/release")[0]

    early = await form_post(client, page, f"{page}/batches/{held}/release", {"override_reason": ""})
    assert early.status_code == 422 and "are not all reported yet" in early.text and "Troche plan for" in early.text
    released = await form_post(client, page, f"{page}/batches/{held}/release", {"override_reason": "Travelling; reported by phone"})
    assert back_to(released) == f"{page}?done=release:{held}"
    assert "Batch released to the pharmacy." in released.text and "released early: Travelling; reported by phone" in released.text
    assert await count(session_factory, "SELECT count(*) FROM audit_event WHERE action = 'plan_batch.release_override'") == 1

    no_reason = await form_post(client, page, f"{page}/pause", {"reason": " "})
    assert no_reason.status_code == 422 and "Give the reason." in no_reason.text
    paused = await form_post(client, page, f"{page}/pause", {"reason": "Blood pressure to recheck"})
    assert back_to(paused) == f"{page}?done=pause" and "Plan paused." in paused.text and "Blood pressure to recheck" in paused.text
    resumed = await form_post(client, page, f"{page}/resume", {})
    assert back_to(resumed) == f"{page}?done=resume" and "Plan resumed." in resumed.text

    stopped = await form_post(client, page, f"{page}/discontinue", {"reason": "Patient moved away"})
    assert back_to(stopped) == f"{page}?done=discontinue" and "Plan discontinued." in stopped.text
    assert ">Discontinued<" in stopped.text
