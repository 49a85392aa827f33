"""The OpenAPI documents as served: Litestar's, with our error body in place of its default one.

Litestar documents a handler's 400 (and any other declared error) with its own exception shape
(`status_code`, `detail`, `extra`), but every error this app answers has the shape error_handlers.py
gives it: `code`, `detail`, `fields`. The document must say what the API really sends (the schemathesis
test in tests/integration/system checks it), so the served documents are corrected as they are rendered.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin

ERROR_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["code", "detail", "fields"],
    "properties": {
        "code": {"type": "string", "description": "a stable machine code, e.g. waitlist.invalid"},
        "detail": {"type": "string", "description": "a sentence for the person"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}, "description": "field name -> what is wrong with it"},
    },
}


def with_error_bodies(document: dict[str, Any]) -> dict[str, Any]:
    """Every documented 4xx/5xx answer carries ERROR_BODY (in place; applying it twice changes nothing)."""
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for status, response in operation.get("responses", {}).items():
                if str(status)[:1] in {"4", "5"}:
                    response["content"] = {"application/json": {"schema": ERROR_BODY}}
    return document


class JsonDocument(JsonRenderPlugin):
    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, with_error_bodies(openapi_schema))


class YamlDocument(YamlRenderPlugin):
    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, with_error_bodies(openapi_schema))
