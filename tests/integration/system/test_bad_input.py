"""Bad input answers 4xx with the field and the reason, never 500."""

from __future__ import annotations

from tests.helpers import csrf_headers


async def test_malformed_json(client):
    headers = {**(await csrf_headers(client)), "content-type": "application/json"}
    response = await client.post("/api/v1/auth/sign-in", content=b'{"email": "a@b.org", ', headers=headers)
    assert response.status_code == 400
    assert response.json()["code"] == "request.invalid"


async def test_wrong_types_name_the_field(client):
    response = await client.post("/api/v1/auth/sign-in", json={"email": 42, "password": "x"}, headers=await csrf_headers(client))
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "request.invalid"
    assert body["fields"] == {"email": "Expected `str`, got `int`"}


async def test_missing_field_is_named(client):
    response = await client.post("/api/v1/auth/sign-in", json={"email": "a@b.org"}, headers=await csrf_headers(client))
    assert response.status_code == 422
    assert response.json()["fields"] == {"password": "is required"}


async def test_unknown_fields_are_refused(client):
    response = await client.post(
        "/api/v1/auth/sign-in", json={"email": "a@b.org", "password": "x", "role": "coordinator"}, headers=await csrf_headers(client)
    )
    assert response.status_code == 422
    assert response.json()["fields"] == {"role": "is not a known field"}


async def test_oversize_body(client):
    big = {"email": "a@b.org", "password": "x" * 2_000_000}
    response = await client.post("/api/v1/auth/sign-in", json=big, headers=await csrf_headers(client))
    assert response.status_code == 413
    assert response.json()["code"] == "request.too_large"


async def test_bad_totp_code_format(client):
    response = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": "short", "password": "p"}, headers=await csrf_headers(client)
    )
    assert response.status_code == 422
    assert "token" in response.json()["fields"]


async def test_not_a_uuid_in_the_path_is_404_not_500(client):
    response = await client.get("/api/v1/patients/12345")
    assert response.status_code == 404


async def test_unknown_address(client):
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "There is nothing at this address.", "fields": {}}
