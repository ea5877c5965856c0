"""Typed errors across gRPC.

A service raises :class:`ServiceError`; the server interceptor-free helper
:func:`abort` turns it into a gRPC status whose code matches the kind, with the
serialized ``switchboard.v1.Error`` in the ``switchboard-error-bin`` trailing
metadata. A client turns the resulting ``grpc.aio.AioRpcError`` back into a
``ServiceError`` with :func:`from_rpc_error`, so the facade can answer in the
client's dialect without guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc

from switchboard.v1 import common_pb2

ERROR_METADATA_KEY = "switchboard-error-bin"
Kind = common_pb2.ErrorKind

_GRPC_CODE: dict[int, grpc.StatusCode] = {
    Kind.ERROR_KIND_INVALID_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
    Kind.ERROR_KIND_AUTHENTICATION: grpc.StatusCode.UNAUTHENTICATED,
    Kind.ERROR_KIND_PERMISSION: grpc.StatusCode.PERMISSION_DENIED,
    Kind.ERROR_KIND_MODEL_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Kind.ERROR_KIND_RATE_LIMITED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Kind.ERROR_KIND_BUDGET_EXCEEDED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Kind.ERROR_KIND_UPSTREAM: grpc.StatusCode.UNKNOWN,
    Kind.ERROR_KIND_UPSTREAM_UNREACHABLE: grpc.StatusCode.UNAVAILABLE,
    Kind.ERROR_KIND_UPSTREAM_TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    Kind.ERROR_KIND_NO_HEALTHY_DEPLOYMENT: grpc.StatusCode.UNAVAILABLE,
    Kind.ERROR_KIND_INTERNAL: grpc.StatusCode.INTERNAL,
    Kind.ERROR_KIND_NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Kind.ERROR_KIND_CONFLICT: grpc.StatusCode.ALREADY_EXISTS,
    Kind.ERROR_KIND_POLICY: grpc.StatusCode.FAILED_PRECONDITION,
    Kind.ERROR_KIND_SERVICE_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
}


#: The HTTP status of each kind (common.proto's ErrorKind says which); an error's own http_status wins.
_HTTP_STATUS: dict[int, int] = {
    Kind.ERROR_KIND_INVALID_REQUEST: 400,
    Kind.ERROR_KIND_AUTHENTICATION: 401,
    Kind.ERROR_KIND_PERMISSION: 403,
    Kind.ERROR_KIND_MODEL_NOT_FOUND: 400,
    Kind.ERROR_KIND_RATE_LIMITED: 429,
    Kind.ERROR_KIND_BUDGET_EXCEEDED: 429,
    Kind.ERROR_KIND_UPSTREAM: 502,
    Kind.ERROR_KIND_UPSTREAM_UNREACHABLE: 502,
    Kind.ERROR_KIND_UPSTREAM_TIMEOUT: 504,
    Kind.ERROR_KIND_NO_HEALTHY_DEPLOYMENT: 503,
    Kind.ERROR_KIND_INTERNAL: 503,
    Kind.ERROR_KIND_NOT_FOUND: 404,
    Kind.ERROR_KIND_CONFLICT: 409,
    Kind.ERROR_KIND_POLICY: 400,
    Kind.ERROR_KIND_SERVICE_UNAVAILABLE: 503,
}


class ServiceError(Exception):
    """An error with a kind the HTTP edge knows how to present."""

    def __init__(
        self,
        kind: common_pb2.ErrorKind,
        message: str,
        *,
        code: str = "",
        param: str = "",
        http_status: int = 0,
        retry_after_seconds: float = 0.0,
        provider: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        #: What only the logs may say about the failure (never sent to a client).
        self.detail = ""
        self.error = common_pb2.Error(
            kind=kind,
            message=message,
            code=code,
            param=param,
            http_status=http_status,
            retry_after_seconds=retry_after_seconds,
            provider=provider,
            headers=dict(headers or {}),
        )

    @classmethod
    def from_proto(cls, error: common_pb2.Error) -> ServiceError:
        self = cls.__new__(cls)
        Exception.__init__(self, error.message)
        self.detail = ""
        self.error = error
        return self

    @property
    def kind(self) -> int:
        return self.error.kind

    @property
    def message(self) -> str:
        return self.error.message

    @property
    def http_status(self) -> int:
        """The HTTP status an OpenAI-dialect client gets for it."""
        return self.error.http_status or _HTTP_STATUS.get(self.error.kind, 500)

    def __repr__(self) -> str:
        return f"ServiceError({Kind.Name(self.error.kind)}, {self.error.message!r})"


def grpc_code_for(kind: int) -> grpc.StatusCode:
    return _GRPC_CODE.get(kind, grpc.StatusCode.UNKNOWN)


async def abort(context: grpc.aio.ServicerContext[Any, Any], err: ServiceError) -> None:
    """Ends the RPC with the error's status code and the typed detail attached."""
    context.set_trailing_metadata(((ERROR_METADATA_KEY, err.error.SerializeToString()),))
    await context.abort(grpc_code_for(err.kind), err.message)


def from_rpc_error(exc: grpc.aio.AioRpcError, service: str) -> ServiceError:
    """Recovers the typed error of a failed call; an untyped failure means the
    service itself is down (SERVICE_UNAVAILABLE) or broken (INTERNAL), an error naming it."""
    for key, value in exc.trailing_metadata() or ():
        if key == ERROR_METADATA_KEY and isinstance(value, bytes):
            return ServiceError.from_proto(common_pb2.Error.FromString(value))
    code = exc.code()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return service_unavailable(service, timed_out=code == grpc.StatusCode.DEADLINE_EXCEEDED)
    return service_failed(service, f"{code.name}: {exc.details()}", code.name)


def service_unavailable(service: str, timed_out: bool = False) -> ServiceError:
    """The error of a call the service could not take (down, unreachable) or did not answer in time: a kind of its
    own (gRPC UNAVAILABLE, HTTP 503), so that a gRPC caller sees a status it may retry, not INTERNAL."""
    what = "did not answer in time" if timed_out else "is unavailable"
    return ServiceError(
        Kind.ERROR_KIND_SERVICE_UNAVAILABLE,
        f"The {service} service {what}; the gateway cannot serve requests that need it. "
        "Retry shortly; if it persists, check that the service is running.",
        code=f"{service}_unavailable",
        http_status=503,
    )


def database_unavailable(service: str) -> ServiceError:
    """The error of a call the service took but could not serve because its database is out of reach (a service
    it depends on: SERVICE_UNAVAILABLE)."""
    return ServiceError(
        Kind.ERROR_KIND_SERVICE_UNAVAILABLE,
        f"The {service} service cannot reach its database; the gateway cannot serve requests that need it. "
        "Retry shortly; if it persists, check the database.",
        code=f"{service}_database_unavailable",
        http_status=503,
    )


def service_failed(service: str, detail: str, status: str = "UNKNOWN") -> ServiceError:
    """The error of a call the service failed without a typed error (a bug or crash inside it).

    ``detail`` (the exception's text: it may name tables, hosts or libraries) is kept off the message, which
    reaches clients, and on the error as ``detail`` for the log line of whoever answers the client."""
    err = ServiceError(
        Kind.ERROR_KIND_INTERNAL,
        f"The {service} service failed ({status}); its log has the details. Retry shortly; if it persists, "
        "tell the operator the request id.",
        code=f"{service}_error",
        http_status=503,
    )
    err.detail = detail
    return err
