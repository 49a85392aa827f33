"""Cross-site request forgery: unsafe methods must come from our own pages, with a token bound to the session.

Two checks on every POST, PUT, PATCH and DELETE (routes marked `exclude_from_csrf`, such as Stripe's signed
webhook, skip both, as does /health):

1. Where it came from. A browser names the page's origin in `Origin` on every cross-origin unsafe request and,
   in current browsers, says `Sec-Fetch-Site`. We refuse a `Sec-Fetch-Site` of `cross-site` or `same-site`
   (a sibling subdomain is not us: the app never posts across hosts) and an `Origin` other than
   PUBLIC_BASE_URL's. `Origin: null` passes to the token check: under our `Referrer-Policy: no-referrer`
   Chromium sends exactly that on our own forms. A request with neither header is not a browser's cross-site
   form or fetch (browsers send `Origin` then), so it goes on to the token check too: API clients and the
   test client send neither.
2. The token. The `csrftoken` cookie (`__Host-csrftoken` over https) holds `nonce + HMAC(SECRET_KEY, nonce,
   session cookie)`; the form field `_csrf_token` or the `x-csrftoken` header must repeat it, and its HMAC must
   match the session cookie the request carries. A token planted by someone else (a cookie set from a sibling
   subdomain, or one from the attacker's own visit) fails for the victim's session, and a token stops working
   when the session changes (sign-in, the second factor's new token, sign-out): the response that changes the
   session cookie also sets a new token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import urlsplit

from litestar import Request
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.enums import RequestEncodingType, ScopeType
from litestar.exceptions import PermissionDeniedException
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from telehealth.accounts.middleware import request_cookie
from telehealth.accounts.sessions import session_cookie_name
from telehealth.settings import Settings

CSRF_COOKIE = "csrftoken"
CSRF_HEADER = "x-csrftoken"
CSRF_FORM_FIELD = "_csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REFUSED_FETCH_SITES = frozenset({"cross-site", "same-site"})
EXEMPT_PATHS = ("/health", "/ready")
_NONCE_HEX = 32


def csrf_cookie_name(settings: Settings) -> str:
    return f"__Host-{CSRF_COOKIE}" if settings.uses_tls else CSRF_COOKIE


def _signature(secret: str, nonce: str, session_token: str) -> str:
    return hmac.new(secret.encode(), f"csrf|{nonce}|{session_token}".encode(), hashlib.sha256).hexdigest()


def issue_token(secret: str, session_token: str) -> str:
    """A new token for the session whose cookie is `session_token` ("" for a visitor not signed in)."""
    nonce = secrets.token_hex(_NONCE_HEX // 2)
    return nonce + _signature(secret, nonce, session_token)


def token_fits_session(secret: str, token: str | None, session_token: str) -> bool:
    if not token or len(token) <= _NONCE_HEX:
        return False
    nonce, signature = token[:_NONCE_HEX], token[_NONCE_HEX:]
    return hmac.compare_digest(signature, _signature(secret, nonce, session_token))


def public_origin(public_base_url: str) -> str:
    """`scheme://host[:port]` as a browser writes it in `Origin` (lower case, default port left out)."""
    parts = urlsplit(public_base_url)
    scheme, host, port = parts.scheme.lower(), (parts.hostname or "").lower(), parts.port
    if ":" in host:
        host = f"[{host}]"
    if port is None or (scheme, port) in {("http", 80), ("https", 443)}:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def cross_site_reason(headers: Any, settings: Settings) -> str | None:
    """Why an unsafe request is refused as coming from another site, or None."""
    fetch_site = (headers.get("sec-fetch-site") or "").lower()
    if fetch_site in REFUSED_FETCH_SITES:
        return f"Sec-Fetch-Site is {fetch_site}"
    origin = headers.get("origin")
    # "null" is what Chromium sends on our own form posts, because our pages say Referrer-Policy: no-referrer;
    # Sec-Fetch-Site above still tells a cross-site one, and the token check follows either way.
    if origin is not None and origin != "null" and origin.lower() != public_origin(settings.public_base_url):
        return "Origin is not this service's address"
    return None


class CsrfMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)
    exclude_opt_key = "exclude_from_csrf"
    should_bypass_for_scope = staticmethod(lambda scope: scope["path"] in EXEMPT_PATHS)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        settings: Settings = scope["litestar_app"].state.settings
        request: Request[Any, Any, Any] = scope["litestar_app"].request_class(scope=scope, receive=receive)
        session_token = request_cookie(scope, session_cookie_name(settings)) or ""
        cookie_token = request_cookie(scope, csrf_cookie_name(settings))
        current = cookie_token if token_fits_session(settings.secret_key, cookie_token, session_token) else None

        if request.method not in SAFE_METHODS:
            if reason := cross_site_reason(request.headers, settings):
                raise PermissionDeniedException(f"CSRF check failed: {reason}")
            submitted = request.headers.get(CSRF_HEADER)
            content_type, _ = request.content_type
            if not submitted and content_type in {RequestEncodingType.URL_ENCODED, RequestEncodingType.MULTI_PART}:
                submitted = (await request.form()).get(CSRF_FORM_FIELD)
            if current is None or not isinstance(submitted, str) or not hmac.compare_digest(submitted, current):
                raise PermissionDeniedException("CSRF token verification failed")

        token = current or issue_token(settings.secret_key, session_token)
        ScopeState.from_scope(scope).csrf_token = token  # what templates put in `csrf_input`
        await next_app(scope, receive, self._send_with_token(send, settings, token=token, is_new=current is None))

    @staticmethod
    def _send_with_token(send: Send, settings: Settings, *, token: str, is_new: bool) -> Send:
        session_name = f"{session_cookie_name(settings)}=".encode()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                new_session = [value for value in headers.getall("set-cookie", []) if value.encode("latin-1").startswith(session_name)]
                if new_session:  # the session changes in this response: a token for the new one
                    _set_token_cookie(headers, settings, issue_token(settings.secret_key, _cookie_value(new_session[-1])))
                elif is_new:
                    _set_token_cookie(headers, settings, token)
            await send(message)

        return send_wrapper


def _cookie_value(set_cookie: str) -> str:
    """The value a Set-Cookie header leaves in the browser ("" for a cookie it deletes)."""
    attributes = [part.strip().lower() for part in set_cookie.split(";")[1:]]
    if "max-age=0" in attributes:
        return ""
    return set_cookie.split(";", 1)[0].split("=", 1)[1].strip().strip('"')


def _set_token_cookie(headers: MutableScopeHeaders, settings: Settings, token: str) -> None:
    # Readable by scripts on purpose (none of ours need it, but API clients echo it), SameSite=Lax, and under
    # https `__Host-`: Secure, Path=/, no Domain, so no sibling host can overwrite it.
    cookie = Cookie(key=csrf_cookie_name(settings), value=token, path="/", secure=settings.uses_tls, httponly=False, samesite="lax")
    headers.add("set-cookie", cookie.to_header(header=""))
