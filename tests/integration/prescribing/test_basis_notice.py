"""The encounter page warns ahead of the signature when, where the patient is, the telemedicine flexibilities
have ended (the signature itself is refused without a recorded basis: test_prescribing_basis.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.helpers import csrf_headers
from tests.integration.prescribing.helpers import consult_with_encounter, switch_to


async def test_the_encounter_page_warns_once_the_flexibilities_have_ended_where_the_patient_is(
    client, session_factory, settings, clock, stripe_fake
):
    consult = await consult_with_encounter(client, session_factory, settings, clock, stripe_fake)
    page = f"/encounters/{consult.encounter_id}"
    assert 'id="basis-notice"' not in (await client.get(page)).text  # no location recorded yet
    recorded = await client.patch(
        f"/api/v1/encounters/{consult.encounter_id}", json={"location_state": "NY"}, headers=await csrf_headers(client)
    )
    assert recorded.status_code == 200, recorded.text
    assert 'id="basis-notice"' not in (await client.get(page)).text  # 24 Nov 2026: the visit is basis enough

    clock.set(datetime(2027, 1, 1, 4, 59, tzinfo=UTC))  # 23:59 on 31 Dec in New York
    await switch_to(client, consult.prescriber, clock)
    assert 'id="basis-notice"' not in (await client.get(page)).text
    clock.set(datetime(2027, 1, 1, 5, 1, tzinfo=UTC))  # 00:01 on 1 Jan in New York
    await switch_to(client, consult.prescriber, clock)
    shown = (await client.get(page)).text
    assert 'id="basis-notice"' in shown and f"/patients/{consult.patient.patient_id}/in-person-evaluations" in shown
