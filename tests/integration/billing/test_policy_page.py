"""The coordinator changes fees and refund rules on the billing page (no API call needed: the page once said
"Change them with PUT /api/v1/billing/policy"); a bad value is named in words beside its field."""

from __future__ import annotations

from telehealth.accounts.roles import Role
from tests.helpers import form_csrf_token, make_person, sign_in


async def test_the_coordinator_changes_the_policy_on_the_page(client, session_factory, settings, clock):
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    await sign_in(client, coordinator, clock)
    page = await client.get("/coordinator/billing")
    assert "PUT /api" not in page.text and 'action="/coordinator/billing/policy"' in page.text
    token = form_csrf_token(page.text)

    saved = await client.post(
        "/coordinator/billing/policy", data={"consult_fee_cents": "175.50", "free_cancel_hours": "48", "_csrf_token": token}
    )
    assert saved.status_code == 200 and "The policy is saved." in saved.text, saved.text[:300]
    policy = (await client.get("/api/v1/billing/policy")).json()
    assert (policy["consult_fee_cents"], policy["free_cancel_hours"], policy["program_fee_cents"]) == (
        17550,
        48,
        settings.program_fee_cents,
    )

    token = form_csrf_token(saved.text)
    refused = await client.post(
        "/coordinator/billing/policy", data={"consult_fee_cents": "12.345", "free_cancel_hours": "two", "_csrf_token": token}
    )
    assert refused.status_code == 422
    assert '<a href="#policy-consult_fee_cents">Consultation fee</a>: Type an amount in dollars and cents' in refused.text
    assert 'id="error-free_cancel_hours">Type a whole number of hours.</p>' in refused.text
    assert "consult_fee_cents:" not in refused.text
    assert (await client.get("/api/v1/billing/policy")).json()["consult_fee_cents"] == 17550  # nothing half-saved
