"""A coordinator places each pharmacist in one pharmacy (API and the credentials page): refused 422 naming the
field when the account is not a pharmacist's or the pharmacy is unknown, nothing kept; each placement audited;
moving a pharmacist moves the queue they see. Creating a pharmacist may name the pharmacy at once."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from telehealth.accounts.models import UserAccount
from telehealth.accounts.roles import Role
from telehealth.audit.models import AuditEvent
from telehealth.db.engine import transaction
from telehealth.prescribing.models import Pharmacy, PharmacyStaff
from tests.helpers import csrf_headers, form_csrf_token, make_person, sign_in
from tests.integration.prescribing.helpers import other_pharmacy, pharmacist, switch_to


async def _pharmacy(session_factory, clock, name="Green Mountain Compounding") -> uuid.UUID:
    async with transaction(session_factory) as session:
        pharmacy = Pharmacy(name=name, phone="+18025550111", address="1 Mill St, Burlington VT", created_at=clock.now())
        session.add(pharmacy)
    return pharmacy.id


async def _assign(client, pharmacist_id, pharmacy_id):
    return await client.put(
        f"/api/v1/pharmacists/{pharmacist_id}/pharmacy", json={"pharmacy_id": str(pharmacy_id)}, headers=await csrf_headers(client)
    )


async def _staff_rows(session_factory) -> list[tuple]:
    async with session_factory() as session:
        return [tuple(row) for row in (await session.execute(select(PharmacyStaff.user_id, PharmacyStaff.pharmacy_id))).all()]


async def _assign_events(session_factory) -> list[tuple]:
    async with session_factory() as session:
        return [
            tuple(row)
            for row in (
                await session.execute(
                    select(AuditEvent.resource_id, AuditEvent.reason)
                    .where(AuditEvent.action == "pharmacy_staff.assign")
                    .order_by(AuditEvent.id)
                )
            ).all()
        ]


@pytest.mark.parametrize("who", ["prescriber", "coordinator", "unknown account"])
async def test_placing_an_account_that_is_not_a_pharmacists_is_refused_naming_the_field(client, session_factory, settings, clock, who):
    pharmacy_id = await _pharmacy(session_factory, clock)
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    target = {
        "prescriber": (
            await make_person(session_factory, role=Role.PRESCRIBER, email="rx@example.org", now=clock.now(), settings=settings)
        ).user_id,
        "coordinator": coordinator.user_id,
        "unknown account": uuid.uuid4(),
    }[who]
    await sign_in(client, coordinator, clock)
    refused = await _assign(client, target, pharmacy_id)
    assert (refused.status_code, refused.json()["code"], refused.json()["fields"]) == (
        422,
        "pharmacy_staff.invalid",
        {"pharmacist_id": "is not a pharmacist's account"},
    )
    assert await _staff_rows(session_factory) == [] and await _assign_events(session_factory) == []


async def test_an_unknown_pharmacy_is_refused_naming_the_field_and_a_placement_is_audited_and_moves_the_queue(
    client, session_factory, settings, clock
):
    green = await _pharmacy(session_factory, clock)
    hudson = await other_pharmacy(session_factory, clock)
    staff = await pharmacist(session_factory, settings, clock, pharmacy_id=None)
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    await sign_in(client, coordinator, clock)

    refused = await _assign(client, staff.user_id, uuid.uuid4())
    assert (refused.status_code, refused.json()["fields"]) == (422, {"pharmacy_id": "is not a known pharmacy"})
    assert await _staff_rows(session_factory) == [] and await _assign_events(session_factory) == []
    listed = (await client.get("/api/v1/pharmacists")).json()
    assert [(p["id"], p["pharmacy"]) for p in listed] == [(str(staff.user_id), None)]

    placed = await _assign(client, staff.user_id, green)
    assert (placed.status_code, placed.json()) == (200, {"id": str(green), "name": "Green Mountain Compounding"})
    moved = await _assign(client, staff.user_id, hudson)
    assert moved.json()["name"] == "Hudson Valley Compounding"
    assert await _staff_rows(session_factory) == [(staff.user_id, hudson)]  # exactly one pharmacy: the last one
    assert await _assign_events(session_factory) == [(str(staff.user_id), f"pharmacy:{green}"), (str(staff.user_id), f"pharmacy:{hudson}")]
    assert (await client.get("/api/v1/pharmacists")).json()[0]["pharmacy"] == {"id": str(hudson), "name": "Hudson Valley Compounding"}

    await switch_to(client, staff, clock)
    assert (await client.get("/api/v1/pharmacy/queue")).json()["pharmacy_name"] == "Hudson Valley Compounding"
    assert (await _assign(client, staff.user_id, green)).status_code == 403  # a pharmacist cannot move themselves


async def test_the_pharmacists_page_places_a_pharmacist_and_names_a_bad_field(client, session_factory, settings, clock):
    green = await _pharmacy(session_factory, clock)
    staff = await pharmacist(session_factory, settings, clock, pharmacy_id=None)
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    await sign_in(client, coordinator, clock)
    html = {"accept": "text/html"}
    assert 'href="/coordinator/pharmacists"' in (await client.get("/coordinator/clinicians", headers=html)).text
    page = await client.get("/coordinator/pharmacists", headers=html)
    assert "no pharmacy yet" in page.text and f'action="/coordinator/pharmacists/{staff.user_id}/pharmacy"' in page.text
    token = form_csrf_token(page.text)

    bad = await client.post(
        f"/coordinator/pharmacists/{staff.user_id}/pharmacy", data={"pharmacy_id": "", "_csrf_token": token}, headers=html
    )
    assert bad.status_code == 422 and "Pharmacy</a>: is not a known pharmacy" in bad.text
    saved = await client.post(
        f"/coordinator/pharmacists/{staff.user_id}/pharmacy", data={"pharmacy_id": str(green), "_csrf_token": token}, headers=html
    )
    assert saved.status_code == 200 and "Pharmacy saved." in saved.text and "no pharmacy yet" not in saved.text
    assert await _staff_rows(session_factory) == [(staff.user_id, green)]


async def test_create_staff_places_a_new_pharmacist_in_the_named_pharmacy(database_url, session_factory, clock, monkeypatch):
    from telehealth import cli
    from telehealth.settings import get_settings

    green = await _pharmacy(session_factory, clock)
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    base = ["--name", "New Pharmacist", "--role", "pharmacist", "--password", "a long staff password"]
    try:
        made = await asyncio.to_thread(
            CliRunner().invoke, cli.create_staff_command, ["--email", "ph@example.org", "--pharmacy", "Green Mountain Compounding", *base]
        )
        unknown = await asyncio.to_thread(
            CliRunner().invoke, cli.create_staff_command, ["--email", "ph2@example.org", "--pharmacy", "Nowhere Rx", *base]
        )
        not_pharmacist = await asyncio.to_thread(
            CliRunner().invoke,
            cli.create_staff_command,
            [
                "--email",
                "co@example.org",
                "--name",
                "C",
                "--role",
                "coordinator",
                "--password",
                "a long staff password",
                "--pharmacy",
                str(green),
            ],
        )
    finally:
        get_settings.cache_clear()
    assert made.exit_code == 0, made.output
    assert unknown.exit_code == 1 and "pharmacy_id is not a known pharmacy" in unknown.output
    assert not_pharmacist.exit_code == 2 and "--pharmacy is for a pharmacist only" in not_pharmacist.output
    async with session_factory() as session:
        emails = set((await session.execute(select(UserAccount.email))).scalars())
        user_id = await session.scalar(select(UserAccount.id).where(UserAccount.email == "ph@example.org"))
    assert emails == {"ph@example.org"}  # an unknown pharmacy creates no account
    assert await _staff_rows(session_factory) == [(user_id, green)]


@pytest.mark.parametrize(("pharmacies", "placed"), [(1, True), (2, False)])
async def test_the_migration_keeps_existing_pharmacists_working_only_where_the_clinic_has_one_pharmacy(database_url, pharmacies, placed):
    """Before 0024 every pharmacist saw the one queue: with one pharmacy they stay in it; with several nobody
    can tell which is theirs, so a coordinator places them (until then they see nothing)."""
    from alembic import command
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    from telehealth.db.engine import async_database_url, make_engine
    from telehealth.db.migrate import alembic_config, upgrade_database

    name = make_url(async_database_url(database_url)).database + f"_staff{pharmacies}"
    admin = create_async_engine(async_database_url(database_url), isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(async_database_url(database_url)).set(database=name).render_as_string(hide_password=False))
    user_id = uuid.uuid4()

    def upgrade(connection, revision: str) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    try:
        async with engine.begin() as connection:
            await connection.run_sync(upgrade, "0026_pharmacy_staff-1")
            await connection.execute(
                text(
                    "INSERT INTO user_account (id, email, full_name, role, password_hash, is_active, failed_login_count, created_at) "
                    "VALUES (:id, 'ph@example.org', 'Ph', 'pharmacist', 'x', true, 0, now())"
                ),
                {"id": user_id},
            )
            for index in range(pharmacies):
                await connection.execute(
                    text("INSERT INTO pharmacy (id, name, phone, address, created_at) VALUES (:id, :name, '+1', 'a', now())"),
                    {"id": uuid.uuid4(), "name": f"Pharmacy {index}"},
                )
        await upgrade_database(engine)  # as a release does: revisions that build an index CONCURRENTLY commit mid-way
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT user_id FROM pharmacy_staff"))).scalars().all()
        assert rows == ([user_id] if placed else [])
    finally:
        await engine.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
