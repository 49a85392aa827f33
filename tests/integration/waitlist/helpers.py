"""Steps shared by the waiting-list tests."""

from __future__ import annotations

from datetime import date

from telehealth.accounts.roles import Role
from telehealth.clinicians.models import DeaRegistration, StateLicense
from telehealth.db.engine import transaction
from tests.helpers import csrf_headers, drain_jobs, link_in, make_person, worker_context


def person(index: int = 0, state: str = "NY", **changes) -> dict:
    body = {
        "first_name": f"Robin{index}",
        "last_name": "Example",
        "email": f"robin{index}@example.org",
        "state": state,
        "date_of_birth": "1985-04-02",
        "consent_to_contact": True,
    }
    body.update(changes)
    return body


async def join(client, body: dict):
    return await client.post("/api/v1/waitlist", json=body, headers=await csrf_headers(client))


async def mail_links(session_factory, settings, clock, smtp, path: str) -> dict[str, str]:
    """Run the worker; answer the newest link to `path` per recipient."""
    await drain_jobs(worker_context(session_factory, settings, clock))
    links = {}
    for message in smtp.messages:
        text = smtp.text_of(message)
        if path in text:
            links[str(message["To"])] = link_in(text, path)
    return links


async def join_and_confirm(client, session_factory, settings, clock, smtp, body: dict) -> str:
    assert (await join(client, body)).status_code == 202
    token = (await mail_links(session_factory, settings, clock, smtp, "/waitlist/entry"))[body["email"]]
    response = await client.post("/api/v1/waitlist/confirm", json={"token": token}, headers=await csrf_headers(client))
    assert response.status_code == 200, response.text
    return token


async def status(client, token: str) -> dict:
    response = await client.post("/api/v1/waitlist/status", json={"token": token}, headers=await csrf_headers(client))
    assert response.status_code == 200, response.text
    return response.json()


async def credential_prescriber(
    session_factory, settings, clock, *, states=("NY",), license_expires=date(2028, 1, 1), dea_expires=date(2028, 1, 1)
):
    prescriber = await make_person(
        session_factory, role=Role.PRESCRIBER, email=f"rx{len(states)}{license_expires}@example.org", now=clock.now(), settings=settings
    )
    async with transaction(session_factory) as session:
        for state in states:
            session.add(
                StateLicense(clinician_id=prescriber.user_id, state=state, number="L1", license_type="MD", expires_on=license_expires)
            )
            if dea_expires is not None:
                session.add(
                    DeaRegistration(
                        clinician_id=prescriber.user_id,
                        state=state,
                        number="BX1234563",
                        schedules="II,IIN,III,IIIN,IV,V",
                        expires_on=dea_expires,
                    )
                )
    return prescriber
