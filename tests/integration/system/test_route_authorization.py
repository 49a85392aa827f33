"""The authorization matrix, generated from the app's own route table so a new route is covered the day it
is added: every handler guarded by `requires_role` is requested by every role and by nobody. A role it
does not allow gets 403 `auth.role_forbidden`; a role it allows is never refused for its role and never
gets a 5xx (random ids may well give 404 or 422); nobody signed in gets 401 `auth.required`. A handler
with no role guard must be in PUBLIC below, each with the reason it may be reached without a role."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from telehealth.accounts.roles import Role
from tests.helpers import csrf_headers, make_person, sign_in

# Reached without a role, and why. A new unguarded route fails the test until it is added here.
PUBLIC = {
    # liveness, readiness, metrics (the monitoring system: token or loopback, checked in the handler)
    "/health", "/ready", "/metrics",
    # signing in, two-factor, password reset, email verification: before a role is known
    "/sign-in", "/sign-in/two-factor", "/sign-out", "/password/forgot", "/password/reset", "/account/two-factor",
    "/account/verify-email", "/account/verify-email/resend", "/api/v1/auth/sign-in", "/api/v1/auth/sign-out", "/api/v1/auth/me",
    "/api/v1/auth/two-factor/enrol", "/api/v1/auth/two-factor/confirm", "/api/v1/auth/two-factor/verify", "/api/v1/auth/step-up",
    "/api/v1/auth/password-reset", "/api/v1/auth/password-reset/confirm", "/api/v1/auth/verify-email", "/api/v1/auth/verify-email/resend",
    # one patient's record: any signed-in person, then the object-level check (load_patient_for, audited)
    "/api/v1/patients/{patient_id:uuid}",
    # the landing redirect, the waiting list and invitations: people who have no account yet (their link is the key)
    "/", "/terms", "/waitlist", "/waitlist/entry", "/waitlist/entry/confirm", "/waitlist/entry/leave", "/waitlist/entry/rejoin",
    "/api/v1/waitlist", "/api/v1/waitlist/confirm", "/api/v1/waitlist/leave", "/api/v1/waitlist/rejoin", "/api/v1/waitlist/status",
    "/invitations/accept", "/api/v1/invitations/accept",
    # the refund policy in dollars, read before paying
    "/api/v1/billing/policy",
    # Stripe's signed webhook (no session: the signature is the check)
    "/api/v1/billing/stripe/webhook",
    # the sitter's own links (no account: the hashed, single-purpose token is the key)
    "/sitter/{token:str}", "/sitter/{token:str}/agreement", "/sitter/{token:str}/decline", "/sitter/{token:str}/excuse",
    "/sitter/{token:str}/presence", "/sitter/{token:str}/end", "/api/v1/sitter-links/{token:str}",
    "/api/v1/sitter-links/{token:str}/agreement", "/api/v1/sitter-links/{token:str}/decline", "/api/v1/sitter-links/{token:str}/excuse",
    "/api/v1/sitter-links/{token:str}/presence", "/api/v1/sitter-links/{token:str}/end",
    # the development mailbox (refused outside development in the handler), static files, the OpenAPI documents
    "/dev/mailbox", "/dev/mailbox/{message_id:uuid}", "/static/{file_path:path}",
    "/schema", "/schema/openapi.json", "/schema/openapi.yaml", "/schema/openapi.yml", "/schema/{path:str}",
}


def guarded_routes(app) -> list[tuple[str, str, frozenset[Role]]]:  # type: ignore[no-untyped-def]
    found, unguarded = [], []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            methods = sorted(set(handler.http_methods) - {"OPTIONS", "HEAD"})
            roles = [guard.allowed_roles for guard in handler.resolve_guards() if hasattr(guard, "allowed_roles")]
            for method in methods:
                if roles:
                    found.append((method, route.path, frozenset.intersection(*roles)))
                elif route.path not in PUBLIC:
                    unguarded.append(f"{method} {route.path}")
    assert unguarded == [], f"routes with no role guard and not in PUBLIC: {unguarded}"
    return found


def error_code(response) -> str | None:  # type: ignore[no-untyped-def]
    """The `code` of an error answer (errors are JSON when the client accepts JSON), else None."""
    if response.status_code < 400 or not response.headers.get("content-type", "").startswith("application/json"):
        return None
    return response.json().get("code")


def concrete(path: str) -> str:
    return re.sub(r"\{([^}:]+)(?::(\w+))?\}", lambda m: "token-x" if m.group(2) in ("str", "path") else str(uuid.uuid4()), path)


async def test_every_role_against_every_guarded_route(client, session_factory, settings, clock):
    routes = guarded_routes(client.app)
    assert len(routes) > 100
    jars: dict[Role | None, dict[str, str]] = {None: {}}
    for role in Role:
        client.cookies.clear()
        clock.advance(timedelta(seconds=30))  # a fresh TOTP step for each staff sign-in
        person = await make_person(session_factory, role=role, email=f"{role.value}@example.org", now=clock.now(), settings=settings)
        await sign_in(client, person, clock)
        await csrf_headers(client)
        jars[role] = dict(client.cookies)
    client.cookies.clear()
    await csrf_headers(client)
    jars[None] = dict(client.cookies)

    problems = []
    for method, path, allowed in routes:
        url = concrete(path)
        for role, jar in jars.items():
            client.cookies.clear()
            client.cookies.update(jar)
            headers = {"accept": "application/json", "x-csrftoken": jar["csrftoken"]}
            response = await client.request(method, url, headers=headers, **({} if method == "GET" else {"json": {}}))
            code = error_code(response)
            if response.status_code >= 500:
                problems.append(f"{role} {method} {path}: {response.status_code}")
            elif role is None and (response.status_code, code) != (401, "auth.required"):
                problems.append(f"anonymous {method} {path}: {response.status_code} {code}")
            elif role is not None and role not in allowed and (response.status_code, code) != (403, "auth.role_forbidden"):
                problems.append(f"{role.value} (not allowed) {method} {path}: {response.status_code} {code}")
            elif role is not None and role in allowed and (response.status_code == 401 or code == "auth.role_forbidden"):
                problems.append(f"{role.value} (allowed) {method} {path}: refused {response.status_code} {code}")
    assert problems == [], "\n".join(problems)
