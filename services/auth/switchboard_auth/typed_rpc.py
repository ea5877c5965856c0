"""The decorator of auth's RPC bodies: a ServiceError they raise becomes a typed gRPC abort."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

import grpc

from switchboard_common.errors import ServiceError, abort

R = TypeVar("R")


def rpc(method: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """Turns a ServiceError raised by an RPC body into a typed gRPC abort."""

    @wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> R:
        try:
            return await method(self, request, context)
        except ServiceError as err:
            await abort(context, err)
            raise

    return wrapper
