"""The authorization matrix's relationship dimension, generated from the app's own route table: every GET
route about one patient (`{patient_id}` in its path) is requested for a real patient by

- each clinician role the route's guard allows, on the patient's care team: allowed (never 403/404);
- the same role, not on the team: 404 (nobody learns the record exists), then allowed once they hold a
  live break-glass grant;
- a coordinator, when the guard lets them through: only on routes listed in OPERATIONAL below (contact,
  journey, payments, escalations, the team itself), never on clinical detail.

A route added tomorrow is covered tomorrow; a route that forgets the relationship (reads with a clause
that does not narrow to the care team) fails the non-member row."""

from __future__ import annotations

from datetime import timedelta

from litestar.handlers import HTTPRouteHandler

from telehealth.accounts.roles import Role
from telehealth.asgi import create_app
from tests.helpers import csrf_headers, join_care_team, make_person, sign_in
from tests.integration.scheduling.helpers import screened_patient
from tests.integration.system.test_authorization_matrix import allowed_roles

# Routes about one patient a coordinator may open, and why that is operational, not clinical.
OPERATIONAL = {
    "/api/v1/patients/{patient_id:uuid}": "the contact record: name, email, zone, state",
    "/api/v1/patients/{patient_id:uuid}/care-team": "who is on the team: coordinators assign it",
    "/api/v1/patients/{patient_id:uuid}/in-person-evaluations": "that an in-person evaluation took place (date, place): the "
    "prescribing basis",
    "/patients/{patient_id:uuid}/in-person-evaluations": "as the API above",
    "/patients/{patient_id:uuid}/care-team": "as the care-team API above",
}
# Routes any prescriber may read, member or not, and why (authz.Access.CLINIC_WIDE).
CLINIC_WIDE_FOR_PRESCRIBERS = {
    "/api/v1/patients/{patient_id:uuid}/in-person-evaluations": "the in-person evaluation is often recorded before any "
    "telemedicine relationship",
    "/patients/{patient_id:uuid}/in-person-evaluations": "as the API above",
}
# GET routes with a patient id that show nothing of the patient, and why.
NOT_ABOUT_THE_RECORD = {
    "/patients/{patient_id:uuid}/break-glass": "the form asking for urgent access: a reason box, nothing of the record",
}
CLINICIANS = (Role.PRESCRIBER, Role.THERAPIST)


def patient_routes(settings) -> list[tuple[str, frozenset[Role] | None]]:
    app = create_app(settings)
    found = []
    for route in app.routes:
        if "{patient_id:uuid}" not in route.path or route.path in NOT_ABOUT_THE_RECORD:
            continue
        for handler in getattr(route, "route_handlers", []):
            if isinstance(handler, HTTPRouteHandler) and "GET" in handler.http_methods:
                found.append((route.path, allowed_roles(handler)))
    return found


def refused(response) -> bool:
    return response.status_code in (401, 403, 404) or "/sign-in" in response.headers.get("location", "")


async def test_every_patient_route_follows_the_care_team(client, session_factory, settings, clock):
    routes = patient_routes(settings)
    assert len(routes) >= 10, routes  # the walk found the patient routes
    patient = await screened_patient(session_factory, settings, clock)
    members = {
        role: await make_person(session_factory, role=role, email=f"member-{role.value}@example.org", now=clock.now(), settings=settings)
        for role in CLINICIANS
    }
    strangers = {
        role: await make_person(session_factory, role=role, email=f"stranger-{role.value}@example.org", now=clock.now(), settings=settings)
        for role in CLINICIANS
    }
    coordinator = await make_person(session_factory, role=Role.COORDINATOR, email="co@example.org", now=clock.now(), settings=settings)
    for member in members.values():
        await join_care_team(session_factory, patient, member, now=clock.now())

    async def as_person(person, check) -> None:
        client.cookies.clear()
        clock.advance(timedelta(seconds=30))
        await sign_in(client, person, clock)
        for path, roles in routes:
            if roles is not None and person.role not in roles:
                continue
            url = path.replace("{patient_id:uuid}", str(patient.patient_id))
            response = await client.get(url, headers={"accept": "application/json" if url.startswith("/api/") else "text/html"})
            assert response.status_code < 500, (person.role, url, response.status_code)
            check(path, response)

    failures: list[str] = []

    def expect(allowed: bool, who: str):
        def check(path, response):
            if not allowed and who == "stranger prescriber" and path in CLINIC_WIDE_FOR_PRESCRIBERS:
                allowed_here = True
            else:
                allowed_here = allowed
            if refused(response) == allowed_here:
                failures.append(f"{who} {path}: {response.status_code}")

        return check

    for role in CLINICIANS:
        await as_person(members[role], expect(True, f"member {role.value}"))
        await as_person(strangers[role], expect(False, f"stranger {role.value}"))
        granted = await client.post(
            f"/api/v1/patients/{patient.patient_id}/break-glass",
            json={"reason": "urgent: the ER called"},
            headers=await csrf_headers(client),
        )
        assert granted.status_code == 201, granted.text
        await as_person(strangers[role], expect(True, f"stranger {role.value} with a grant"))

    def coordinator_check(path, response):
        if path in OPERATIONAL and refused(response):
            failures.append(f"coordinator refused an operational route {path}: {response.status_code}")
        if path not in OPERATIONAL and not refused(response):
            failures.append(f"coordinator read clinical detail at {path}: {response.status_code}")

    await as_person(coordinator, coordinator_check)
    assert not failures, "\n".join(failures)
