"""Over https the session and CSRF cookies are `__Host-` cookies: Secure, Path=/, no Domain."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from telehealth.accounts.roles import Role
from telehealth.asgi import create_app
from tests.conftest import with_settings
from tests.helpers import PASSWORD, make_person


def _set_cookies(response) -> dict[str, str]:
    headers = [value for key, value in response.headers.multi_items() if key == "set-cookie"]
    return {header.split("=", 1)[0]: header for header in headers}


def _is_host_cookie(header: str) -> bool:
    attributes = [part.strip().lower() for part in header.split(";")[1:]]
    return "secure" in attributes and "path=/" in attributes and not any(a.startswith("domain") for a in attributes)


async def test_over_https_the_session_and_csrf_cookies_are_host_prefixed(session_factory, settings, clock):
    tls = with_settings(settings, public_base_url="https://testserver.local")
    patient = await make_person(session_factory, role=Role.PATIENT, email="pat@example.org", now=clock.now(), settings=tls)
    async with AsyncTestClient(app=create_app(tls, clock=clock), base_url="https://testserver.local") as client:
        page = await client.get("/sign-in")
        cookies = _set_cookies(page)
        assert "__Host-csrftoken" in cookies and "csrftoken" not in cookies
        assert _is_host_cookie(cookies["__Host-csrftoken"])

        token = client.cookies["__Host-csrftoken"]
        signed_in = await client.post(
            "/api/v1/auth/sign-in", json={"email": patient.email, "password": PASSWORD}, headers={"x-csrftoken": token}
        )
        assert signed_in.status_code == 200, signed_in.text
        cookies = _set_cookies(signed_in)
        assert "__Host-th_session" in cookies and "th_session" not in cookies
        assert _is_host_cookie(cookies["__Host-th_session"]) and "httponly" in cookies["__Host-th_session"].lower()
        assert _is_host_cookie(cookies["__Host-csrftoken"])  # a new token for the new session, same attributes
        me = await client.get("/api/v1/auth/me")
        assert me.status_code == 200 and me.json()["email"] == patient.email


async def test_over_http_the_names_stay_plain(client):
    page = await client.get("/sign-in")
    assert "csrftoken" in _set_cookies(page)
