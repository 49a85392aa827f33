"""Base for request and response bodies: msgspec Structs that refuse unknown fields."""

import msgspec


class RequestBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A request body: unknown fields are an error (a typo must not be silently ignored)."""


class ResponseBody(msgspec.Struct, kw_only=True):
    """A response body."""
