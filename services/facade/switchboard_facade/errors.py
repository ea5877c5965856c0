"""Errors at the HTTP edge, in the client's dialect.

Every failure becomes OpenAI's ``{"error": {"message", "type", "param", "code"}}``
(or Anthropic's ``{"type": "error", "error": {"type", "message"}}`` on the
Anthropic endpoints) with the status a client SDK expects. An error about the
chat body a request became is told in the terms of the dialect the client spoke
(:func:`in_terms`: its fields, not chat's).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import orjson

from switchboard.v1 import common_pb2
from switchboard_common.errors import Kind, ServiceError
from switchboard_facade.replies import Reply
from switchboard_facade.request_id import new_request_id
from switchboard_translate.anthropic import error_type_for_status
from switchboard_translate.error_terms import ErrorTerms

log = logging.getLogger(__name__)

#: kind → (OpenAI error type, Anthropic error type); the HTTP status is the kind's (ServiceError.http_status).
_KINDS: dict[int, tuple[str, str]] = {
    Kind.ERROR_KIND_INVALID_REQUEST: ("invalid_request_error", "invalid_request_error"),
    Kind.ERROR_KIND_AUTHENTICATION: ("authentication_error", "authentication_error"),
    Kind.ERROR_KIND_PERMISSION: ("permission_error", "permission_error"),
    Kind.ERROR_KIND_MODEL_NOT_FOUND: ("invalid_request_error", "not_found_error"),
    Kind.ERROR_KIND_RATE_LIMITED: ("rate_limit_error", "rate_limit_error"),
    Kind.ERROR_KIND_BUDGET_EXCEEDED: ("budget_exceeded", "rate_limit_error"),
    Kind.ERROR_KIND_UPSTREAM: ("upstream_error", "api_error"),
    Kind.ERROR_KIND_UPSTREAM_UNREACHABLE: ("upstream_unreachable", "api_error"),
    Kind.ERROR_KIND_UPSTREAM_TIMEOUT: ("upstream_timeout", "timeout_error"),
    Kind.ERROR_KIND_NO_HEALTHY_DEPLOYMENT: ("service_unavailable", "overloaded_error"),
    Kind.ERROR_KIND_INTERNAL: ("service_unavailable", "api_error"),
    Kind.ERROR_KIND_NOT_FOUND: ("not_found_error", "not_found_error"),
    Kind.ERROR_KIND_CONFLICT: ("conflict_error", "invalid_request_error"),
    Kind.ERROR_KIND_POLICY: ("policy_error", "invalid_request_error"),
    Kind.ERROR_KIND_SERVICE_UNAVAILABLE: ("service_unavailable", "api_error"),
}


def in_terms(err: ServiceError, terms: ErrorTerms | None) -> ServiceError:
    """``err`` naming the fields of the client's dialect instead of chat's (``err`` itself when ``terms`` is None
    or changes nothing)."""
    if terms is None:
        return err
    error = err.error
    param, message = terms.param(error.param), terms.message(error.message)
    if param == error.param and message == error.message:
        return err
    told = common_pb2.Error()
    told.CopyFrom(error)
    told.param, told.message = param, message
    result = ServiceError.from_proto(told)
    result.detail = err.detail
    return result


def status_for(err: ServiceError) -> int:
    return err.http_status


def openai_error_body(err: ServiceError) -> dict[str, object]:
    etype = _KINDS.get(err.kind, ("api_error", ""))[0]
    e = err.error
    body: dict[str, object] = {"message": e.message, "type": etype, "param": e.param or None, "code": e.code or None}
    if e.provider:
        body["provider"] = e.provider
        body["upstream"] = True
    return {"error": body}


#: Where Anthropic's API answers with another status than OpenAI's for the same failure.
_ANTHROPIC_STATUS: dict[int, int] = {Kind.ERROR_KIND_MODEL_NOT_FOUND: 404}


def anthropic_status_for(err: ServiceError) -> int:
    return err.error.http_status or _ANTHROPIC_STATUS.get(err.kind) or status_for(err)


def anthropic_error_body(err: ServiceError) -> dict[str, object]:
    if err.error.http_status:
        # An explicit status (413, 402...) decides the type, as Anthropic's clients expect.
        etype = error_type_for_status(err.error.http_status)
    else:
        etype = _KINDS.get(err.kind, ("", "api_error"))[1]
    return {"type": "error", "error": {"type": etype, "message": err.error.message}}


def error_headers(err: ServiceError, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    headers = dict(err.error.headers)
    if err.error.retry_after_seconds > 0:
        headers["retry-after"] = str(max(1, int(err.error.retry_after_seconds + 0.999)))
    if extra:
        headers.update(extra)
    return headers


def error_response(err: ServiceError, headers: Mapping[str, str] | None = None, dialect: str = "openai") -> Reply:
    if err.detail:
        log.warning("a service failed a request", extra={"request_id": (headers or {}).get("x-request-id", ""),
                                                         "code": err.error.code, "detail": err.detail})
    if dialect == "anthropic":
        body, status = anthropic_error_body(err), anthropic_status_for(err)
    else:
        body, status = openai_error_body(err), status_for(err)
    return Reply(orjson.dumps(body), status, error_headers(err, headers))


def internal_error_response(request_id: str, dialect: str = "openai") -> Reply:
    """The 500 of a request that failed in the gateway itself (a bug): in the client's dialect, with its id."""
    message = (f"The gateway failed while answering this request (an internal error); its log has the details "
               f"under request id {request_id}.")
    headers = id_headers(request_id, dialect)
    if dialect == "anthropic":
        body: dict[str, object] = {"type": "error", "error": {"type": "api_error", "message": message}}
    else:
        body = {"error": {"message": message, "type": "api_error", "param": None, "code": "internal_error"}}
    return Reply(orjson.dumps(body), 500, headers)


#: Paths that speak Anthropic's dialect (Messages and the ``/anthropic`` base path); every other path speaks OpenAI's.
ANTHROPIC_PREFIXES = ("/v1/messages", "/anthropic/")


def dialect_for_path(path: str) -> str:
    """The error dialect of a path, for answers given before a route is known (edge limits, internal errors)."""
    return "anthropic" if path.startswith(ANTHROPIC_PREFIXES) else "openai"


def id_headers(request_id: str, dialect: str) -> dict[str, str]:
    """The request-id headers of an answer: Anthropic's clients read ``request-id`` too."""
    if dialect == "anthropic":
        return {"x-request-id": request_id, "x-switchboard-request-id": request_id, "request-id": request_id}
    return {"x-request-id": request_id, "x-switchboard-request-id": request_id}


def edge_error(path: str, status: int, message: str, code: str) -> tuple[bytes, list[tuple[str, str]]]:
    """Body and headers of an answer the HTTP edge gives itself (a request refused before any route ran)."""
    dialect = dialect_for_path(path)
    err = ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, message, code=code, http_status=status)
    reply = error_response(err, id_headers(new_request_id(), dialect), dialect)
    return bytes(reply.body), [*reply.header_map.items(), ("content-type", "application/json")]


def invalid(message: str, param: str | None = None, code: str = "invalid_request") -> ServiceError:
    return ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, message, param=param or "", code=code)


def error_event_payload(error: common_pb2.Error) -> bytes:
    """The in-stream error event OpenAI clients understand (the SDK raises on it)."""
    return orjson.dumps({"error": {"message": error.message, "type": "upstream_error",
                                   "param": None, "code": error.code or "upstream_error"}})
