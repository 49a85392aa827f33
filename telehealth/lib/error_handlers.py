"""Every error becomes `{"code", "detail", "fields"}` for the API, or a calm page for a browser.

Database outages answer 503 (the transaction was rolled back, nothing half-written); anything unexpected
answers a generic 500 and is logged without request data.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException, ValidationException
from litestar.response import Redirect, Template
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from telehealth.lib.errors import DomainError

logger = logging.getLogger("telehealth.errors")

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, PoolTimeoutError, ConnectionError, OSError)
# SQLSTATEs of a server that is away rather than of a bad statement: connection exceptions (08), shutting
# down, crashed or still starting (57P01-57P03), too many connections (53300). asyncpg's errors for these
# reach us as plain DBAPIError, not OperationalError.
UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")


def database_unavailable(exc: BaseException) -> bool:
    """Whether an error means the database could not be reached, so the request answers 503."""
    if isinstance(exc, CONNECTION_ERRORS):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        for cause in (exc.orig, getattr(exc.orig, "__cause__", None)):
            state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
            if isinstance(state, str) and state.startswith(UNAVAILABLE_SQLSTATES):
                return True
    return False


def wants_json(request: Request[Any, Any, Any]) -> bool:
    path = request.url.path
    return path.startswith("/api/") or path.startswith("/schema") or "text/html" not in request.headers.get("accept", "")


def error_response(
    request: Request[Any, Any, Any],
    *,
    status: int,
    code: str,
    detail: str,
    fields: dict[str, str] | None = None,
    extra: dict[str, object] | None = None,
) -> Response[Any]:
    if wants_json(request):
        return Response(
            {**(extra or {}), "code": code, "detail": detail, "fields": fields or {}}, status_code=status, media_type=MediaType.JSON
        )
    if status == 401:
        return Redirect(path=f"/sign-in?next={quote(request.url.path)}")
    if code == "auth.two_factor_enrolment_required":
        return Redirect(path="/account/two-factor")
    if code == "auth.two_factor_required":
        return Redirect(path="/sign-in/two-factor")
    return Template(
        template_name="system/error.html",
        context={"status": status, "code": code, "detail": detail, "fields": fields or {}},
        status_code=status,
    )


_MISSING = re.compile(r"missing required field `([^`]+)`")
_UNKNOWN = re.compile(r"unknown field `([^`]+)`")
_AT_PATH = re.compile(r"^(.*?)(?: - at `\$\.?([^`]*)`)?$")


def _field_and_reason(key: str, message: str) -> tuple[str, str]:
    """Turn msgspec's sentences into (field, reason): `Object missing required field `x`` -> (x, is required)."""
    if match := _MISSING.search(message):
        return match.group(1), "is required"
    if match := _UNKNOWN.search(message):
        return match.group(1), "is not a known field"
    match = _AT_PATH.match(message)
    if match and match.group(2):
        return match.group(2), match.group(1).strip()
    return key, message


def _validation_fields(exc: ValidationException) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in exc.extra or []:
        if isinstance(item, dict):
            key = str(item.get("key") or item.get("source") or "body")
            field, reason = _field_and_reason(key, str(item.get("message", "is not valid")))
            fields[field] = reason
    return fields


def handle_domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    return error_response(request, status=exc.status_code, code=exc.code, detail=exc.detail, fields=exc.fields, extra=exc.extra)


def handle_validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    fields = _validation_fields(exc)
    if fields:  # the body parsed, but named fields are wrong: 422, as for the services' own checks
        return error_response(request, status=422, code="request.invalid", detail="Some fields are missing or not valid.", fields=fields)
    return error_response(request, status=400, code="request.invalid", detail=exc.detail or "The request body is not valid.")


def handle_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if status >= 500:
        return handle_unexpected(request, exc)
    if isinstance(exc, PermissionDeniedException) and "CSRF" in (exc.detail or ""):
        return error_response(
            request,
            status=403,
            code="csrf.invalid",
            detail="This form has expired or came from another site. Reload the page and try again.",
        )
    if isinstance(exc, NotAuthorizedException):
        return error_response(request, status=401, code="auth.required", detail="Sign in to continue.")
    codes = {
        400: "request.invalid",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "request.too_large",
        415: "request.unsupported_media_type",
        429: "rate_limited",
    }
    detail = exc.detail or "The request could not be handled."
    if status == 413:
        detail = "The request body is too large."
    elif status == 404:
        detail = "There is nothing at this address."
    return error_response(request, status=status, code=codes.get(status, f"http.{status}"), detail=detail)


def handle_database_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    logger.warning("database unavailable: %s", type(exc).__name__)
    response = error_response(
        request,
        status=503,
        code="service.unavailable",
        detail="The service is briefly unavailable. Please try again in a moment.",  # a crash can cut off a COMMIT it already made
    )
    response.headers["Retry-After"] = "5"
    return response


def handle_unstorable_value(request: Request[Any, Any, Any], exc: DataError) -> Response[Any]:
    """A value PostgreSQL refuses (too long for its column, a NUL character): the input's fault, not ours.
    The services check the fields they know; this is the net under them, so it is never a 500."""
    return error_response(
        request,
        status=422,
        code="request.unstorable_value",
        detail="A value is too long or contains characters that cannot be stored. Nothing was saved.",
    )


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if database_unavailable(exc):
        return handle_database_unavailable(request, exc)
    # The traceback names code, never request bodies; no health data reaches the log. The route's template
    # (`/sitter/{token:str}`), not the path: a path can carry a link token or an id.
    route = request.scope.get("path_template") or "(no route)"
    logger.error("unhandled error on %s %s", request.method, route, exc_info=exc)
    return error_response(request, status=500, code="server.error", detail="Something went wrong on our side. Nothing was saved.")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: handle_domain_error,
    ValidationException: handle_validation_error,
    HTTPException: handle_http_error,
    DataError: handle_unstorable_value,
    OperationalError: handle_database_unavailable,
    InterfaceError: handle_database_unavailable,
    PoolTimeoutError: handle_database_unavailable,
    Exception: handle_unexpected,
}
