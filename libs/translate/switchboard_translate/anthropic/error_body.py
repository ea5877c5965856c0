"""Anthropic's error JSON, for the facade's ``/v1/messages`` endpoint.

Anthropic clients (their SDKs, Claude Code) read ``error.type`` to decide what
to do, and the type follows from the HTTP status; so the facade's errors,
whatever their origin, are answered in this shape on that endpoint.
"""

from __future__ import annotations

from typing import Any

_TYPE_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type_for_status(status: int) -> str:
    """Anthropic's error ``type`` for an HTTP status (other 4xx are ``invalid_request_error``, 5xx ``api_error``)."""
    if status in _TYPE_BY_STATUS:
        return _TYPE_BY_STATUS[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def anthropic_error(status: int, message: str, *, request_id: str | None = None) -> dict[str, Any]:
    """The body Anthropic answers an error with: ``{"type": "error", "error": {"type", "message"}}``."""
    body: dict[str, Any] = {"type": "error", "error": {"type": error_type_for_status(status), "message": message}}
    if request_id:
        body["request_id"] = request_id
    return body


def anthropic_error_from_openai(
    status: int, openai_error: dict[str, Any], *, request_id: str | None = None
) -> dict[str, Any]:
    """An OpenAI error body (``{"error": {"message", "type", ...}}``) re-shaped as Anthropic's."""
    nested = openai_error.get("error")
    error: dict[str, Any] = nested if isinstance(nested, dict) else openai_error
    return anthropic_error(status, str(error.get("message") or f"HTTP {status}"), request_id=request_id)
