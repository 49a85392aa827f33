"""Security headers on every answer (telehealth/lib/security_headers.py): ours replace a handler's of the same
name, once each; the handler's others stay; static files keep their own caching."""

from __future__ import annotations

from litestar import Litestar, Response, get
from litestar.testing import AsyncTestClient

from telehealth.lib.security_headers import SecurityHeadersMiddleware


async def test_ours_replace_the_handlers_of_the_same_name_and_keep_the_rest() -> None:
    @get(["/page", "/static/logo.svg"], sync_to_thread=False)
    def page() -> Response[str]:
        return Response("hi", headers={"Cache-Control": "max-age=60", "X-Frame-Options": "SAMEORIGIN", "X-Other": "kept"})

    app = Litestar([page], middleware=[SecurityHeadersMiddleware(hsts=True)])
    async with AsyncTestClient(app) as client:
        shown, static = await client.get("/page"), await client.get("/static/logo.svg")
    assert shown.headers.get_list("cache-control") == ["no-store"]
    assert shown.headers.get_list("x-frame-options") == ["DENY"]
    assert shown.headers["x-other"] == "kept" and shown.text == "hi"
    assert shown.headers["strict-transport-security"].startswith("max-age=")
    assert "default-src 'self'" in shown.headers["content-security-policy"]
    assert static.headers.get_list("cache-control") == ["max-age=60"]  # a static file's own caching stays
    assert static.headers.get_list("x-frame-options") == ["DENY"]
