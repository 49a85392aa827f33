"""The development mailbox answers only a browser on this machine (it holds every sign-in and reset link)."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from telehealth.asgi import create_app
from tests.conftest import with_settings


def _from_address(app, address: str):
    """The app as reached from `address` (the test client's peer is always "testclient")."""

    async def asgi(scope, receive, send):
        if scope["type"] == "http":
            scope = {**scope, "client": (address, 50000)}
        await app(scope, receive, send)

    return asgi


async def test_the_dev_mailbox_is_for_loopback_clients_only(settings, clock, monkeypatch):
    development = with_settings(settings, environment="development", smtp_url=None)
    app = create_app(development, clock=clock)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        assert (await client.get("/dev/mailbox/")).status_code == 200
        real_handle = app.__call__
        for address, expected in (("127.0.0.1", 200), ("::1", 200), ("203.0.113.7", 404), ("10.0.0.5", 404)):
            monkeypatch.setattr(
                type(app), "__call__", lambda self, scope, receive, send, a=address: _from_address(real_handle, a)(scope, receive, send)
            )
            assert (await client.get("/dev/mailbox/")).status_code == expected, address
            if expected == 404:
                assert (await client.get("/dev/mailbox/00000000-0000-0000-0000-000000000000")).status_code == 404
