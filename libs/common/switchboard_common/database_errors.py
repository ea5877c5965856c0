"""A service whose database is out of reach answers that, typed, instead of failing as if it had a bug.

When PostgreSQL restarts, fails over or refuses connections, every RPC that
touches it raises a driver error. Left alone, gRPC answers UNKNOWN and logs a
traceback per call; callers then tell their clients the service "failed".
:class:`DatabaseUnreachable` (a server interceptor for auth and billing) turns
those errors into the typed 503 of :func:`~switchboard_common.errors.database_unavailable`
and logs one warning line with the error's class, so clients learn to retry
and the log says what happened. Errors that mean a wrong query or wrong data
(integrity, data, programming errors) are left alone: they are bugs.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import sqlalchemy.exc

from switchboard_common.errors import abort, database_unavailable

log = logging.getLogger(__name__)

#: Driver errors (asyncpg's, raised outside SQLAlchemy's wrapping) that mean the connection, not the query.
_CONNECTION_ERROR_NAMES = frozenset({
    "InterfaceError", "InternalClientError", "ConnectionDoesNotExistError", "ConnectionFailureError",
    "CannotConnectNowError", "TooManyConnectionsError", "AdminShutdownError", "CrashShutdownError",
    "InvalidCatalogNameError", "ObjectNotInPrerequisiteStateError",
})


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached or dropped the connection (not a bad query)."""
    if isinstance(exc, sqlalchemy.exc.DBAPIError):
        return not isinstance(exc, sqlalchemy.exc.IntegrityError | sqlalchemy.exc.DataError
                              | sqlalchemy.exc.ProgrammingError)
    if isinstance(exc, sqlalchemy.exc.TimeoutError | ConnectionError | TimeoutError):
        return True
    return type(exc).__module__.startswith("asyncpg") and type(exc).__name__ in _CONNECTION_ERROR_NAMES


class DatabaseUnreachable(grpc.aio.ServerInterceptor):
    """Answers an RPC that failed because ``service``'s database is out of reach with a typed 503."""

    def __init__(self, service: str) -> None:
        self.service = service

    async def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
                                handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        des, ser = handler.request_deserializer, handler.response_serializer
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(self._unary(handler.unary_unary, method), des, ser)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(self._unary(handler.stream_unary, method), des, ser)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(self._streaming(handler.unary_stream, method), des, ser)
        return grpc.stream_stream_rpc_method_handler(self._streaming(handler.stream_stream, method), des, ser)

    async def _answer(self, context: grpc.aio.ServicerContext[Any, Any], method: str, exc: BaseException) -> None:
        log.warning("database unreachable", extra={"method": method, "error": type(exc).__name__})
        await abort(context, database_unavailable(self.service))

    def _unary(self, behavior: Callable[..., Awaitable[Any]], method: str) -> Callable[..., Awaitable[Any]]:
        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                return await behavior(request, context)
            except Exception as exc:
                if not is_unreachable(exc):
                    raise
                await self._answer(context, method, exc)
        return unary

    def _streaming(self, behavior: Callable[..., Any], method: str) -> Callable[..., AsyncIterator[Any]]:
        async def streaming(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            try:
                answer = behavior(request, context)
                if inspect.isasyncgen(answer):
                    async for message in answer:
                        yield message
                else:  # a handler that writes its messages with context.write()
                    await answer
            except Exception as exc:
                if not is_unreachable(exc):
                    raise
                await self._answer(context, method, exc)
        return streaming
