"""Errors that speak: each carries a machine code, a human sentence and, for bad input, the fields.

Services raise these; `telehealth.lib.error_handlers` turns them into `{"code", "detail", "fields"}`.
"""

from __future__ import annotations


class DomainError(Exception):
    status_code = 409

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        fields: dict[str, str] | None = None,
        keep_evidence: bool = False,
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.fields = fields or {}
        self.extra = extra or {}  # more for the client, e.g. the slots still free after losing a race
        # A refusal that must leave a trace (a failed sign-in's counter, a denied read's audit row) sets
        # this; the request's transaction then commits what the service wrote before refusing.
        self.keep_evidence = keep_evidence


class InvalidInput(DomainError):
    """The request is well-formed but a value is not acceptable (names the field)."""

    status_code = 422


class RuleRefused(DomainError):
    """A rule of the domain refuses the action (e.g. `plan.dose_above_cap`)."""

    status_code = 422


class Conflict(DomainError):
    """The action lost a race or the record moved on (e.g. a stale status)."""

    status_code = 409


class NotAuthenticated(DomainError):
    status_code = 401


class Forbidden(DomainError):
    status_code = 403


class NotFound(DomainError):
    status_code = 404


class Gone(DomainError):
    """A link that worked once and no longer does (used, expired or withdrawn)."""

    status_code = 410


class TooManyRequests(DomainError):
    status_code = 429


class ServiceUnavailable(DomainError):
    status_code = 503


class BadRequest(DomainError):
    """The request cannot be read at all (e.g. a webhook whose signature does not verify)."""

    status_code = 400
