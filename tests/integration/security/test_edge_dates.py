"""Dates at the edge of what datetime holds answer a 400 naming the parameter, never a 500."""

from __future__ import annotations

from datetime import date, datetime

from litestar.params import QueryParameter

from telehealth.accounts.roles import Role
from tests.helpers import make_person, sign_in

FAR = "9999-12-31T23:00:00Z"


async def test_slots_refuse_a_from_or_to_beyond_the_bound(client, session_factory, settings, clock):
    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    await sign_in(client, patient, clock)
    for name, value in (("from", FAR), ("to", FAR), ("from", "0001-01-01T00:00:00Z")):
        response = await client.get("/api/v1/slots", params={"type": "consult", name: value})
        assert response.status_code == 400, (name, value, response.text)
        body = response.json()
        assert body["code"] == "request.date_out_of_range" and name in body["fields"], body


def _date_query_parameters(app) -> list[tuple[str, str]]:
    """(path, parameter name) for every GET taking a date or datetime in its query string."""
    found = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if "GET" not in getattr(handler, "http_methods", ()) or "{" in route.path:
                continue
            for name, field in handler.parsed_fn_signature.parameters.items():
                is_query = isinstance(field.kwarg_definition, QueryParameter)
                if is_query and (field.is_subclass_of((datetime, date)) or field.has_inner_subclass_of((datetime, date))):
                    found.append((route.path, field.kwarg_definition.name or name))
    return found


async def test_no_date_query_parameter_answers_500_at_the_edge(client, session_factory, settings, clock):
    parameters = _date_query_parameters(client.app)
    assert ("/api/v1/slots", "from") in parameters  # the finder finds what it should
    people = {
        role: await make_person(session_factory, role=role, email=f"{role.value}@example.org", now=clock.now(), settings=settings)
        for role in (Role.PATIENT, Role.COORDINATOR)
    }
    for person in people.values():
        client.cookies.clear()
        await sign_in(client, person, clock)
        for path, name in parameters:
            for value in (FAR, "9999-12-31", "0001-01-01T00:00:00Z"):
                response = await client.get(path, params={name: value, "type": "consult"})
                assert response.status_code < 500, (person.role, path, name, value, response.text)
