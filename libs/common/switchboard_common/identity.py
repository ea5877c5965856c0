"""Service identity: which Switchboard service is calling, proven by a token in the call's metadata.

Internal RPCs are not for anyone who can reach a port. Each service that
calls others (the facade, the router) presents its own token in the
``x-switchboard-service-token`` metadata of every call; each service that is
called (auth, billing, the router) knows the tokens of the callers it accepts,
by name. Auth and billing refuse any call without a known token
(UNAUTHENTICATED); the router tells the facade (trusted: it has authorized the
key and held its budget) from a key holder calling it directly; auth hands
decrypted provider credentials to the router alone.

Why tokens and not mTLS: the gateway must run the same way on a laptop, in
tests and on Kubernetes without a certificate authority; a token is a
Kubernetes Secret key, mounted only into the pods that present it. Put the
services behind a mesh with mTLS as well if the cluster has one.

Where tokens come from (the service's settings):

* ``SWITCHBOARD_SERVICE_TOKEN``: this service's own token;
  ``SWITCHBOARD_FACADE_TOKEN``, ``SWITCHBOARD_ROUTER_TOKEN``: the tokens of the
  callers it accepts (deploy/k8s wires each from the ``switchboard-service-tokens``
  Secret into exactly the pods that need it);
* unset (the embedded default, tests): a token per caller is created once in
  ``<data dir>/service-tokens/<name>`` (mode 0600) and read from there by the
  services that share the data directory.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc

from switchboard_common.settings import ServiceSettings, load_or_create_secret

#: The metadata key that carries a service token.
TOKEN_METADATA_KEY = "x-switchboard-service-token"
#: Services that call others, and so have a token.
CALLERS = ("facade", "router")
#: RPCs anyone may call: health checks and reflection (probes, grpcurl).
OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True, slots=True)
class ServiceIdentity:
    """This service's token, and the callers it accepts (name → SHA-256 of their token)."""

    name: str
    token: str = ""
    trusted: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """What every call this service makes carries."""
        return ((TOKEN_METADATA_KEY, self.token),) if self.token else ()

    def caller(self, metadata: Iterable[Any] | None) -> str | None:
        """The name of the service whose token ``metadata`` carries; None for anyone else."""
        token = _token_in(metadata)
        if not token:
            return None
        digest = _digest(token)
        for name, expected in self.trusted.items():
            if hmac.compare_digest(digest, expected):
                return name
        return None


def _token_in(metadata: Iterable[Any] | None) -> str:
    for item in metadata or ():
        key, value = (item.key, item.value) if hasattr(item, "key") else item
        if key == TOKEN_METADATA_KEY:
            return value.decode() if isinstance(value, bytes) else str(value)
    return ""


def load_identity(name: str, settings: ServiceSettings, accepts: Iterable[str] = ()) -> ServiceIdentity:
    """The identity of service ``name``: its token and the callers it accepts, from its settings, else from
    (created) files in its data directory."""
    directory = settings.ensure_data_dir() / "service-tokens"
    token = settings.service_token.strip()
    if not token and name in CALLERS:
        token = load_or_create_secret(directory / name)
    configured = {"facade": settings.facade_token.strip(), "router": settings.router_token.strip()}
    trusted = {caller: _digest(configured.get(caller) or load_or_create_secret(directory / caller))
               for caller in accepts}
    return ServiceIdentity(name, token, trusted)


def unauthenticated_service(method: str) -> str:
    return (f"{method} is an internal RPC of Switchboard: the caller must present a service token "
            f"({TOKEN_METADATA_KEY}); see docs/deploy.md, 'Service identity'.")


class RequireServiceToken(grpc.aio.ServerInterceptor):
    """Refuses every RPC but health and reflection unless it carries a trusted service token."""

    def __init__(self, identity: ServiceIdentity) -> None:
        self.identity = identity

    async def intercept_service(self, continuation: Any, handler_call_details: grpc.HandlerCallDetails) -> Any:
        method = handler_call_details.method
        if method.startswith(OPEN_METHOD_PREFIXES) or self.identity.caller(handler_call_details.invocation_metadata):
            return await continuation(handler_call_details)
        return _refusal(await continuation(handler_call_details), unauthenticated_service(method))


def _refusal(handler: grpc.RpcMethodHandler[Any, Any] | None, message: str) -> grpc.RpcMethodHandler[Any, Any] | None:
    """A handler of the same shape as ``handler`` that aborts with UNAUTHENTICATED."""
    if handler is None:
        return None

    async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def streaming(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield  # pragma: no cover  # an async generator, as streaming handlers are

    des, ser = handler.request_deserializer, handler.response_serializer
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary, des, ser)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(streaming, des, ser)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary, des, ser)
    return grpc.stream_stream_rpc_method_handler(streaming, des, ser)
