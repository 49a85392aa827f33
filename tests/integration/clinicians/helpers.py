"""Steps shared by the credentials tests."""

from __future__ import annotations

from datetime import date

from telehealth.accounts.roles import Role
from tests.helpers import csrf_headers, make_person, sign_in

TODAY = date(2026, 11, 23)  # the frozen clock's date in the clinic's zone (Monday, 10:00 in New York)
LICENSE = {"state": "NY", "number": "209311", "license_type": "MD", "expires_on": "2027-06-30"}
DEA = {"state": "NY", "number": "BX1234563", "schedules": ["II", "III", "IV", "V"], "expires_on": "2027-06-30"}


async def signed_in_coordinator(client, session_factory, settings, clock, email="co@example.org"):
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email=email, now=clock.now(), settings=settings)
    await sign_in(client, coordinator, clock)
    return coordinator


async def clinician(session_factory, settings, clock, role=Role.PRESCRIBER, email="rx@example.org"):
    return await make_person(session_factory, role=role, email=email, now=clock.now(), settings=settings)


async def post(client, path: str, body: dict):
    return await client.post(path, json=body, headers=await csrf_headers(client))


async def put(client, path: str, body: dict):
    return await client.put(path, json=body, headers=await csrf_headers(client))


async def remove(client, path: str):
    return await client.delete(path, headers=await csrf_headers(client))
