"""The session cookie is read in the request's own transaction (accounts/middleware.py, db/engine.py): one
connection per request, and the middleware ends the transaction itself when no handler took it over."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event, text

from telehealth.accounts.roles import Role
from tests.helpers import make_person, sign_in


class Checkouts:
    """Connections taken from the app's pool while inside, and how many are out now."""

    def __init__(self, client) -> None:
        self.pool = client.app.state.engine.sync_engine.pool
        self.count = 0

    def __enter__(self) -> Checkouts:
        event.listen(self.pool, "checkout", self._taken)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.pool, "checkout", self._taken)

    def _taken(self, *args) -> None:
        self.count += 1

    @property
    def out(self) -> int:
        return self.pool.checkedout()


async def _signed_in(client, session_factory, settings, clock):
    person = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=settings)
    await sign_in(client, person, clock)
    return person


async def test_a_signed_in_request_takes_one_connection_for_the_cookie_and_the_handler(client, session_factory, settings, clock):
    await _signed_in(client, session_factory, settings, clock)
    with Checkouts(client) as checkouts:
        response = await client.get("/api/v1/auth/me")
    assert response.status_code == 200, response.text
    assert response.json()["email"] == "pat@example.org"
    assert checkouts.count == 1 and checkouts.out == 0


async def test_a_handler_without_a_session_leaves_the_middleware_to_commit_its_touch(client, session_factory, settings, clock):
    person = await _signed_in(client, session_factory, settings, clock)
    clock.advance(timedelta(minutes=5))  # past TOUCH_EVERY: this request moves the session's last_seen_at
    with Checkouts(client) as checkouts:
        response = await client.get("/terms")  # a page that asks for no database session
    assert response.status_code == 200
    assert checkouts.count == 1 and checkouts.out == 0
    async with session_factory() as session:
        seen = await session.scalar(text("SELECT max(last_seen_at) FROM user_session WHERE user_id = :u"), {"u": person.user_id})
    assert seen == clock.now()


async def test_a_refusal_before_the_handler_rolls_back_and_returns_the_connection(client, session_factory, settings, clock):
    await _signed_in(client, session_factory, settings, clock)
    with Checkouts(client) as checkouts:
        response = await client.post("/api/v1/appointments", json={})  # no CSRF token
    assert response.status_code == 403  # the CSRF check, after the cookie was read
    assert checkouts.count == 1 and checkouts.out == 0
