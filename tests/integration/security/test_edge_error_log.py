"""The unexpected-error log line names the route's template, never the raw path (a path can carry a link token)."""

from __future__ import annotations

import logging

from telehealth.dosing import sitters


async def test_an_error_on_a_tokened_route_logs_the_template_not_the_token(client, monkeypatch, caplog):
    async def broken(*args, **kwargs):
        raise RuntimeError("forced for the test")

    monkeypatch.setattr(sitters, "open_link", broken)
    token = "secret-link-token-abcdef123456"
    with caplog.at_level(logging.ERROR, logger="telehealth.errors"):
        response = await client.get(f"/sitter/{token}", headers={"accept": "text/html"})
    assert response.status_code == 500
    records = [r for r in caplog.records if r.name == "telehealth.errors"]
    assert records, "the error was logged"
    line = records[-1].getMessage()
    assert "/sitter/{token" in line
    assert token not in line and all(token not in r.getMessage() for r in caplog.records)
