"""The authorization matrix, generated from the app's own route table.

Nothing here lists the guarded routes by hand: the test walks `app.routes`, reads every HTTP handler's
resolved guards (those set on the handler, its Controller, its Router and the app) and, for each handler
carrying a `requires_role(...)` guard, takes the roles it allows from `guard.allowed_roles` (the attribute
`requires_role` attaches for this test). A route added tomorrow is therefore covered tomorrow.

For every guarded (method, path) it sends one request as each of the five roles and one signed out, with
path parameters filled by random UUIDs (or a random token for `:str` parameters), the CSRF header, an empty
JSON body `{}` for POST/PUT/PATCH/DELETE, and the Accept header a real caller would send
(`application/json` under /api/, `text/html` for pages; see `wants_json` in telehealth/lib/error_handlers.py).
It proves:

- a role the guard does not allow is refused for its role: 403 `auth.role_forbidden` (for a page, the 403
  error page saying so) — never a 2xx, never a 5xx, never any other answer;
- a role the guard allows is never refused for its role (no 401, no `auth.*`/`csrf.*` code, no 403 page, no
  bounce to sign-in or to two-factor) and never gets a 5xx; 404/409/422 are expected, the ids being random;
- nobody signed in gets 401 `auth.required` (JSON) or a redirect to `/sign-in?next=...` (pages);
- every handler WITHOUT a role guard is in PUBLIC below with the reason it may be reached without a role,
  so adding an unguarded route fails this test until someone decides, in review, that it is public.

403 or 404? The role guard always answers 403: it runs before any lookup, so it cannot reveal whether an
id exists, and the set of URLs is public anyway (the OpenAPI document). Hiding existence with 404 is the
object-level rule in telehealth/accounts/authz.py (`load_patient_for`), applied only to roles the route
guard lets through (a therapist asking for a patient not on their care team); the matrix accepts that 404
for allowed roles, and never accepts a 404 in place of a role refusal.

The pharmacist dimension (test_a_pharmacist_reaches_only_their_own_pharmacys_batches): for every route a
pharmacist may call, a real batch of one pharmacy answers 404 `batch.not_found` to another pharmacy's pharmacist
and never 404 to its own, and nothing the other pharmacy gets shows the patient.

Not requested at all: /static (files), /schema (the OpenAPI documents), /dev/mailbox (development only,
refused elsewhere in its handler), /dev/clock (the demo clock, likewise) and the Stripe webhook (no session:
Stripe's signature is the check, covered in tests/integration/billing). See EXCLUDED.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.testing import AsyncTestClient

from telehealth.accounts.roles import Role
from telehealth.asgi import STRIPE_WEBHOOK_PATH
from tests.helpers import csrf_headers, make_person, sign_in

# Never requested: not part of the role model (see the module docstring).
EXCLUDED = (
    "/static/",  # static files, public by nature
    "/schema",  # the OpenAPI documents (/schema, /schema/openapi.json, ...)
    "/dev/mailbox",  # the development mailbox: its handler refuses outside development
    "/dev/clock",  # the demo clock: 404 for everyone where it is off (as here), staff only where on (tests/integration/devtools)
    STRIPE_WEBHOOK_PATH,  # signed by Stripe, no session and no CSRF: the signature is the check
)

# Handlers with no `requires_role` guard, and why each may be reached without one. Keyed "METHOD path" so a
# new method on a public path is a decision too. A new unguarded handler fails the test until listed here.
PUBLIC: dict[str, str] = {
    # --- monitoring: no session at all ---
    "GET /health": "liveness probe",
    "GET /ready": "readiness probe",
    "GET /metrics": "Prometheus scrape; bearer token or loopback, checked in the handler",
    # --- signing in and recovering an account: before any role is known ---
    "GET /": "landing page: redirects to the signed-in person's home or to /sign-in",
    "GET /sign-in": "sign-in form",
    "POST /sign-in": "sign-in form post",
    "POST /sign-out": "signing out (harmless without a session)",
    "POST /api/v1/auth/sign-in": "password step",
    "POST /api/v1/auth/password-reset": "asks for a reset email (answers the same for unknown emails)",
    "POST /api/v1/auth/password-reset/confirm": "the emailed single-use token is the key",
    "GET /password/forgot": "form",
    "POST /password/forgot": "form post, as the API above",
    "GET /password/reset": "form; the emailed token is the key",
    "POST /password/reset": "form post; the emailed token is the key",
    "POST /api/v1/auth/verify-email": "the emailed single-use token is the key",
    "GET /account/verify-email": "the emailed single-use token is the key",
    "POST /account/verify-email": "the emailed single-use token is the key",
    # --- self-service for any signed-in person, whatever the role (requires_sign_in / requires_password_step) ---
    "GET /api/v1/auth/me": "who am I (password step done, second factor possibly pending)",
    "POST /api/v1/auth/sign-out": "one's own session",
    "POST /api/v1/auth/two-factor/enrol": "one's own second factor",
    "POST /api/v1/auth/two-factor/confirm": "one's own second factor",
    "POST /api/v1/auth/two-factor/verify": "one's own second factor",
    "POST /api/v1/auth/step-up": "re-enter the password for a sensitive action, one's own session",
    "POST /api/v1/auth/verify-email/resend": "one's own email address",
    "GET /sign-in/two-factor": "one's own second factor",
    "POST /sign-in/two-factor": "one's own second factor",
    "GET /account/two-factor": "one's own second factor",
    "POST /account/two-factor": "one's own second factor",
    "POST /account/verify-email/resend": "one's own email address",
    "GET /api/v1/patients/{patient_id:uuid}": (
        "any signed-in person, then the object-level check load_patient_for (own record / clinic-wide / care "
        "team; 404 and audited otherwise)"
    ),
    # --- people without an account yet: the waiting list and invitations ---
    "GET /terms": "terms of service",
    "GET /waitlist": "join form",
    "POST /waitlist": "join form post",
    "GET /waitlist/entry": "one's entry; the emailed link token is the key",
    "POST /waitlist/entry/confirm": "the emailed link token is the key",
    "POST /waitlist/entry/leave": "the emailed link token is the key",
    "POST /waitlist/entry/rejoin": "the emailed link token is the key",
    "POST /api/v1/waitlist": "join",
    "POST /api/v1/waitlist/confirm": "the emailed link token is the key",
    "POST /api/v1/waitlist/leave": "the emailed link token is the key",
    "POST /api/v1/waitlist/rejoin": "the emailed link token is the key",
    "POST /api/v1/waitlist/status": "the emailed link token is the key",
    "GET /invitations/accept": "the invitation token is the key (creates the patient's account)",
    "POST /invitations/accept": "the invitation token is the key",
    "POST /api/v1/invitations/accept": "the invitation token is the key",
    # --- read before paying ---
    "GET /api/v1/billing/policy": "the refund policy in dollars",
    # --- the sitter's own link: sitters have no account; the hashed, single-purpose token is the key ---
    "GET /sitter/{token:str}": "sitter link",
    "POST /sitter/{token:str}/agreement": "sitter link",
    "POST /sitter/{token:str}/decline": "sitter link",
    "POST /sitter/{token:str}/excuse": "sitter link",
    "POST /sitter/{token:str}/presence": "sitter link",
    "POST /sitter/{token:str}/end": "sitter link",
    "GET /sitter/{token:str}/withdraw": "sitter link",
    "POST /sitter/{token:str}/withdraw": "sitter link",
    "GET /api/v1/sitter-links/{token:str}": "sitter link",
    "POST /api/v1/sitter-links/{token:str}/agreement": "sitter link",
    "POST /api/v1/sitter-links/{token:str}/decline": "sitter link",
    "POST /api/v1/sitter-links/{token:str}/excuse": "sitter link",
    "POST /api/v1/sitter-links/{token:str}/presence": "sitter link",
    "POST /api/v1/sitter-links/{token:str}/end": "sitter link",
    "POST /api/v1/sitter-links/{token:str}/withdraw": "sitter link",
}

# Cases the matrix finds wrong but that need more than a one-line guard change: ("METHOD path", role or None
# for signed out) -> why, and who follows it up. Each must still fail (a fixed gap must be removed from here).
KNOWN_GAPS: dict[tuple[str, Role | None], str] = {}

ROLE_REFUSAL_CODE = "auth.role_forbidden"
ROLE_REFUSAL_PAGE_TEXT = "Your role cannot open this page."  # the guard's detail, shown on the 403 page
ANONYMOUS = None


@dataclass(frozen=True)
class GuardedRoute:
    method: str
    path: str  # the template, e.g. /api/v1/plans/{plan_id:uuid}/sign
    allowed: frozenset[Role]

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def is_api(self) -> bool:
        return self.path.startswith("/api/")


def http_handlers(app: Litestar) -> list[tuple[str, str, HTTPRouteHandler]]:
    """Every (method, path template, handler) the app answers, OPTIONS/HEAD and EXCLUDED left out."""
    found = []
    for route in app.routes:
        if route.path.startswith(EXCLUDED):
            continue
        for handler in getattr(route, "route_handlers", []):
            if not isinstance(handler, HTTPRouteHandler):
                continue
            for method in sorted(set(handler.http_methods) - {"OPTIONS", "HEAD"}):
                found.append((method, route.path, handler))
    return found


def allowed_roles(handler: HTTPRouteHandler) -> frozenset[Role] | None:
    """The roles every `requires_role` guard on the handler (and its Controller/Router) lets through; None if
    it has no role guard. Several role guards stack, so a role must pass them all."""
    sets = [guard.allowed_roles for guard in handler.resolve_guards() if hasattr(guard, "allowed_roles")]
    return frozenset.intersection(*sets) if sets else None


def route_table(app: Litestar) -> tuple[list[GuardedRoute], list[str]]:
    """(the role-guarded routes, the "METHOD path" of every handler with no role guard)."""
    guarded, unguarded = [], []
    for method, path, handler in http_handlers(app):
        roles = allowed_roles(handler)
        if roles is None:
            unguarded.append(f"{method} {path}")
        else:
            guarded.append(GuardedRoute(method, path, roles))
    return guarded, unguarded


_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")


def concrete(path: str) -> str:
    """Fill path parameters: a random UUID for `:uuid`, a random token for `:str`."""

    def fill(match: re.Match[str]) -> str:
        kind = match.group(2) or "str"
        if kind == "uuid":
            return str(uuid.uuid4())
        if kind == "str":
            return secrets.token_urlsafe(12)
        if kind == "int":
            return str(secrets.randbelow(10**6) + 1)
        raise AssertionError(f"teach concrete() to fill a :{kind} parameter ({path})")

    return _PARAM.sub(fill, path)


def json_code(response) -> str | None:  # type: ignore[no-untyped-def]
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        return body.get("code") if isinstance(body, dict) else None
    return None


def refused_for_role(response) -> bool:  # type: ignore[no-untyped-def]
    if response.status_code != 403:
        return False
    return json_code(response) == ROLE_REFUSAL_CODE or ROLE_REFUSAL_PAGE_TEXT in response.text


def redirected_to(response) -> str | None:  # type: ignore[no-untyped-def]
    return response.headers.get("location") if 300 <= response.status_code < 400 else None


def verdict(route: GuardedRoute, url: str, role: Role | None, response) -> str | None:  # type: ignore[no-untyped-def]
    """None when the answer is right for this role, else what is wrong."""
    status, code, location = response.status_code, json_code(response), redirected_to(response)
    seen = f"{status} {code or location or ''}".strip()
    if status >= 500:
        return f"server error {seen}"
    if role is ANONYMOUS:
        if route.is_api:
            return None if (status, code) == (401, "auth.required") else f"expected 401 auth.required, got {seen}"
        expected = f"/sign-in?next={quote(url)}"
        return None if location == expected else f"expected a redirect to {expected}, got {seen}"
    if role not in route.allowed:
        return None if refused_for_role(response) else f"expected 403 {ROLE_REFUSAL_CODE}, got {seen}"
    # An allowed role: anything but a refusal for who they are (random ids may well give 404/409/422).
    if status == 401 or refused_for_role(response) or (code or "").startswith(("auth.", "csrf.")):
        return f"allowed, but refused: {seen}"
    if status == 403 and code is None:  # a 403 page does not say why: for an allowed role none is expected
        return f"allowed, but refused: {seen}"
    if location and location.startswith(("/sign-in", "/account/two-factor")):
        return f"allowed, but sent to {location}"
    return None


async def cookie_jars(client: AsyncTestClient, session_factory, settings, clock) -> dict[Role | None, dict[str, str]]:  # type: ignore[no-untyped-def]
    """One sign-in per role (and a signed-out visitor with only a CSRF cookie): the cookies to reuse."""
    jars: dict[Role | None, dict[str, str]] = {}
    for role in Role:
        client.cookies.clear()
        clock.advance(timedelta(seconds=30))  # a fresh TOTP step: a code is never accepted twice
        email = f"matrix-{role.value}@example.org"
        person = await make_person(session_factory, role=role, email=email, now=clock.now(), settings=settings)
        await sign_in(client, person, clock)
        await csrf_headers(client)
        jars[role] = dict(client.cookies)
    client.cookies.clear()
    await csrf_headers(client)
    jars[ANONYMOUS] = dict(client.cookies)
    client.cookies.clear()
    return jars


async def request_as(client: AsyncTestClient, jar: dict[str, str], route: GuardedRoute, url: str):  # type: ignore[no-untyped-def]
    client.cookies.clear()
    client.cookies.update(jar)
    headers = {"accept": "application/json" if route.is_api else "text/html", "x-csrftoken": jar["csrftoken"]}
    body = {} if route.method == "GET" else {"json": {}}
    return await client.request(route.method, url, headers=headers, follow_redirects=False, **body)


def label(role: Role | None) -> str:
    return "signed out" if role is ANONYMOUS else role.value


async def test_every_unguarded_route_is_deliberately_public(client: AsyncTestClient) -> None:
    guarded, unguarded = route_table(client.app)
    assert len(guarded) > 100, "the route walk found suspiciously few role-guarded handlers"
    assert all(route.allowed for route in guarded), [r.key for r in guarded if not r.allowed]  # no stacked guards that allow nobody

    not_listed = sorted(set(unguarded) - PUBLIC.keys())
    assert not_listed == [], (
        "handlers with no requires_role guard that are not in PUBLIC (guard them, or list them with the reason "
        f"they are public): {not_listed}"
    )
    stale = sorted(PUBLIC.keys() - set(unguarded))
    assert stale == [], f"PUBLIC lists handlers that are gone or now role-guarded (remove them): {stale}"


async def test_every_role_against_every_guarded_route(client: AsyncTestClient, session_factory, settings, clock) -> None:  # type: ignore[no-untyped-def]
    guarded, _ = route_table(client.app)
    jars = await cookie_jars(client, session_factory, settings, clock)

    problems: dict[tuple[str, Role | None], str] = {}
    outcomes: Counter[str] = Counter()
    for route in guarded:
        url = concrete(route.path)
        for role, jar in jars.items():
            response = await request_as(client, jar, route, url)
            outcomes[f"{'allowed' if role in route.allowed else 'refused' if role else 'anonymous'} {response.status_code}"] += 1
            if wrong := verdict(route, url, role, response):
                problems[(route.key, role)] = wrong

    cases = len(guarded) * len(jars)
    assert sum(outcomes.values()) == cases
    unexpected = {case: why for case, why in problems.items() if case not in KNOWN_GAPS}
    fixed = sorted(f"{key} as {label(role)}" for key, role in KNOWN_GAPS.keys() - problems.keys())
    report = "\n".join(f"{key} as {label(role)}: {why}" for (key, role), why in sorted(unexpected.items(), key=str))
    assert unexpected == {}, f"{len(unexpected)} of {cases} route x role cases are wrong:\n{report}\n({dict(outcomes)})"
    assert fixed == [], f"KNOWN_GAPS entries that now pass (remove them): {fixed}"


# --- The pharmacist dimension: whose pharmacy ---------------------------------------------------------------
# A role guard lets every pharmacist through; which pharmacy's batches they reach is the object-level rule in
# prescribing/pharmacy.py. Generated from the same route table: every route a pharmacist may call is covered.

PHARMACY_STEP_BODIES = {
    "reject": {"reason": "Out of stock"},
    "fill": {"lot_number": "L-7", "beyond_use_date": "2027-02-01", "units": 9},
    "ship": {"carrier": "UPS", "tracking_number": "1Z999"},
}
PATIENT_DETAILS = ("Lovelace", "1985-12-10", "12 Hudson St", "10013")


def pharmacist_urls(route: GuardedRoute, batch_id: str) -> list[tuple[str, dict | None]]:
    """(url, body) to try: a route naming a batch gets the real one (and each step for a `{action:str}`)."""
    from telehealth.prescribing.pharmacy_pages import BATCH_ACTIONS

    if "{batch_id:uuid}" not in route.path:
        return [(concrete(route.path), None)]
    path = route.path.replace("{batch_id:uuid}", batch_id)
    if "{action:str}" in path:
        return [(path.replace("{action:str}", step), PHARMACY_STEP_BODIES.get(step)) for step in BATCH_ACTIONS]
    assert "{" not in path, f"teach pharmacist_urls() to fill {route.path}"
    return [(path, PHARMACY_STEP_BODIES.get(path.rsplit("/", 1)[-1]))]


async def test_a_pharmacist_reaches_only_their_own_pharmacys_batches(
    client: AsyncTestClient, session_factory, settings, clock, stripe_fake
) -> None:  # type: ignore[no-untyped-def]
    """Every route a pharmacist may call: naming a batch of another pharmacy answers 404 `batch.not_found` (as an
    unknown id would), and never 404 to the batch's own pharmacy; no answer to the other pharmacy shows the patient."""
    from tests.integration.prescribing.helpers import intake_on_file, other_pharmacy, pharmacist, signed_plan, switch_to

    consult, plan = await signed_plan(client, session_factory, settings, clock, stripe_fake)
    await intake_on_file(session_factory, clock, consult.patient)
    batch_id = plan["batches"][0]["id"]
    people = {
        "other pharmacy": await pharmacist(
            session_factory, settings, clock, pharmacy_id=await other_pharmacy(session_factory, clock), email="theirs@example.org"
        ),
        "own pharmacy": await pharmacist(session_factory, settings, clock, pharmacy_id=consult.pharmacy_id, email="ours@example.org"),
    }
    jars = {}
    for who, person in people.items():
        await switch_to(client, person, clock)
        await csrf_headers(client)
        jars[who] = dict(client.cookies)
    routes = [route for route in route_table(client.app)[0] if Role.PHARMACIST in route.allowed]
    assert sum("{batch_id:uuid}" in route.path for route in routes) >= 7, [r.key for r in routes]  # API read, 5 steps, the page's step

    problems: dict[str, str] = {}
    for who, jar in jars.items():  # the other pharmacy first: the own one's steps move the batch on
        for route in routes:
            for url, body in pharmacist_urls(route, batch_id):
                client.cookies.clear()
                client.cookies.update(jar)
                headers = {"accept": "application/json" if route.is_api else "text/html", "x-csrftoken": jar["csrftoken"]}
                payload = {} if route.method == "GET" else {"json": body or {}} if route.is_api else {"data": body or {}}
                response = await client.request(route.method, url, headers=headers, follow_redirects=False, **payload)
                seen = f"{response.status_code} {json_code(response) or ''}".strip()
                if response.status_code >= 500:
                    problems[f"{route.method} {url} as {who}"] = f"server error {seen}"
                elif who == "other pharmacy":
                    if batch_id in url and (response.status_code != 404 or (route.is_api and json_code(response) != "batch.not_found")):
                        problems[f"{route.method} {url} as {who}"] = f"expected 404 batch.not_found, got {seen}"
                    if leaked := [detail for detail in PATIENT_DETAILS if detail in response.text]:
                        problems[f"{route.method} {url} as {who}"] = f"shows the patient: {leaked}"
                elif batch_id in url and response.status_code == 404:
                    problems[f"{route.method} {url} as {who}"] = f"own pharmacy refused: {seen}"
    assert problems == {}, "\n".join(f"{case}: {why}" for case, why in sorted(problems.items()))
