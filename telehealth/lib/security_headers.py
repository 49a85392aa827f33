"""Security headers on every response: no framing, no referrer, no third-party anything, no caching of
pages that may hold health data."""

from __future__ import annotations

from collections.abc import Iterable

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"


def content_security_policy(payment_page_origin: str = STRIPE_CHECKOUT_ORIGIN) -> str:
    """Everything from us only; forms may also lead to the payment processor's checkout page (a form
    whose answer redirects there counts as a form action)."""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
        f"connect-src 'self'; form-action 'self' {payment_page_origin}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    )


CONTENT_SECURITY_POLICY = content_security_policy()


class SecurityHeadersMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, *, hsts: bool, payment_page_origin: str = STRIPE_CHECKOUT_ORIGIN) -> None:
        ours = [
            ("content-security-policy", content_security_policy(payment_page_origin)),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
            ("x-content-type-options", "nosniff"),
            ("permissions-policy", "geolocation=(), microphone=(self), camera=(self), interest-cohort=()"),
            ("cross-origin-opener-policy", "same-origin"),
        ]
        if hsts:
            ours.append(("strict-transport-security", "max-age=63072000; includeSubDomains"))
        # Encoded once: setting each through MutableScopeHeaders encoded and searched the list again per response.
        static = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in ours]
        self._static = Ours(static)
        self._pages = Ours([*static, (b"cache-control", b"no-store")])

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        ours = self._static if scope["path"].startswith("/static/") else self._pages

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = ours.put_on(message.get("headers", ()))
            await send(message)

        await next_app(scope, receive, send_with_headers)


class Ours:
    """Our encoded headers for one kind of answer, with their names (lower case) worked out once."""

    __slots__ = ("headers", "names")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.headers = headers
        self.names = frozenset(name for name, _ in headers)

    def put_on(self, headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """The response's headers with ours in place of any of the same names: a handler's own Cache-Control or
        policy gives way to ours, as it always has."""
        return [header for header in headers if header[0].lower() not in self.names] + self.headers
