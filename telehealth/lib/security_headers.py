"""Security headers on every response: no framing, no referrer, no third-party anything, no caching of
pages that may hold health data."""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
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
        self.hsts = hsts
        self.policy = content_security_policy(payment_page_origin)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        is_static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                headers["Content-Security-Policy"] = self.policy
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "no-referrer"
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Permissions-Policy"] = "geolocation=(), microphone=(self), camera=(self), interest-cohort=()"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                if not is_static:
                    headers["Cache-Control"] = "no-store"
                if self.hsts:
                    headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
            await send(message)

        await next_app(scope, receive, send_with_headers)
