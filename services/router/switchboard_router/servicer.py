"""The Router gRPC servicer: who calls, then the call served (:mod:`switchboard_router.served`).

Every RPC first names its caller from the metadata (:func:`~switchboard_router.callers.caller_of`):
the facade by its service token, anyone else by a virtual key; a call with
neither fails with UNAUTHENTICATED and a message saying what to send.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from switchboard.v1 import router_pb2, router_pb2_grpc
from switchboard_common.errors import ServiceError, abort
from switchboard_common.identity import ServiceIdentity
from switchboard_router.callers import Caller, caller_of
from switchboard_router.described import describe
from switchboard_router.engine import Constraints, Engine
from switchboard_router.exchange import ExchangeContext, ExchangeHub
from switchboard_router.gate import Gate, constraints_of
from switchboard_router.operations import Operation
from switchboard_router.privacy_guard import PrivacyGuard
from switchboard_router.routing.access import allowed_models
from switchboard_router.served import CallServer
from switchboard_router.settlement import Settlement

log = logging.getLogger(__name__)


#: The servicer context of each RPC shape: grpc.aio.ServicerContext[its request, its answer].
_CompleteContext = grpc.aio.ServicerContext[router_pb2.CompleteRequest, router_pb2.CompleteResponse]
_StreamContext = grpc.aio.ServicerContext[router_pb2.CompleteRequest, router_pb2.StreamEvent]
_DescribeModelsContext = grpc.aio.ServicerContext[router_pb2.DescribeModelsRequest, router_pb2.DescribeModelsResponse]
_ListModelsContext = grpc.aio.ServicerContext[router_pb2.ListModelsRequest, router_pb2.ListModelsResponse]


class RouterServicer(router_pb2_grpc.RouterServicer):
    def __init__(self, engine: Engine, identity: ServiceIdentity, gate: Gate, settlement: Settlement) -> None:
        self.engine = engine
        self.identity = identity
        self.gate = gate
        self.guard = PrivacyGuard(engine)
        self.calls = CallServer(self.guard, gate, settlement)
        self.exchanges = ExchangeHub(self.calls, self.caller)

    def caller(self, context: grpc.aio.ServicerContext[Any, Any]) -> Caller:
        """The RPC's caller; raises the UNAUTHENTICATED ServiceError when it names none."""
        return caller_of(context.invocation_metadata(), self.identity)

    async def Complete(self, request: router_pb2.CompleteRequest,
                       context: _CompleteContext) -> router_pb2.CompleteResponse:
        return await self._unary(request, context, Operation.COMPLETE)

    async def Embed(self, request: router_pb2.CompleteRequest,
                    context: _CompleteContext) -> router_pb2.CompleteResponse:
        return await self._unary(request, context, Operation.EMBED)

    async def TextComplete(self, request: router_pb2.CompleteRequest,
                           context: _CompleteContext) -> router_pb2.CompleteResponse:
        return await self._unary(request, context, Operation.TEXT_COMPLETE)

    async def Moderate(self, request: router_pb2.CompleteRequest,
                       context: _CompleteContext) -> router_pb2.CompleteResponse:
        return await self._unary(request, context, Operation.MODERATE)

    async def _unary(self, request: router_pb2.CompleteRequest, context: _CompleteContext,
                     operation: Operation) -> router_pb2.CompleteResponse:
        try:
            return await self.calls.answer(request, operation, self.caller(context))
        except ServiceError as err:
            await abort(context, err)
            raise AssertionError("unreachable") from None

    async def StreamComplete(self, request: router_pb2.CompleteRequest,
                             context: _StreamContext) -> AsyncIterator[router_pb2.StreamEvent]:
        try:
            async for event in self.calls.events(request, self.caller(context)):
                yield event
        except ServiceError as err:
            await abort(context, err)

    async def Exchange(self, requests: AsyncIterator[router_pb2.ExchangeRequest],
                       context: ExchangeContext) -> None:
        await self.exchanges.serve(requests, context)

    async def _resolved(self, asked: router_pb2.RoutingConstraints, context: grpc.aio.ServicerContext[Any, Any]
                        ) -> tuple[router_pb2.RoutingConstraints, Constraints]:
        """The caller's constraints (a trusted caller's as sent, a key holder's from its key) and what they resolve
        to (the tier and jurisdictions after the client's asks); aborts the RPC with the refusal."""
        try:
            caller = self.caller(context)
            if not caller.trusted:
                key = await self.gate.verify(caller.api_key)
                asked = constraints_of(key, asked, list(key.models))
            return asked, self.guard.resolve(asked)
        except ServiceError as err:
            await abort(context, err)
            raise AssertionError("unreachable") from None

    async def DescribeModels(self, request: router_pb2.DescribeModelsRequest,
                             context: _DescribeModelsContext) -> router_pb2.DescribeModelsResponse:
        constraints, resolved = await self._resolved(request.constraints, context)
        catalog = self.engine.catalog
        names = allowed_models(catalog.models, list(constraints.allowed_models), catalog.access_groups)
        permitted = None
        if resolved.privacy_tier or resolved.jurisdictions:
            permitted = {d.id for name in names if catalog.models[name].deployments
                         for d in self.engine.permitted_deployments(name, resolved)}
        return describe(catalog, self.engine.health, names, permitted)

    async def ListModels(self, request: router_pb2.ListModelsRequest,
                         context: _ListModelsContext) -> router_pb2.ListModelsResponse:
        _, resolved = await self._resolved(request.constraints, context)
        catalog = self.engine.catalog
        listed = dict(catalog.listed(request.include_wildcards))
        out = router_pb2.ListModelsResponse()
        for name in self.engine.reachable_models(resolved, listed):
            entry = catalog.models.get(name) or catalog.resolve(name)
            assert entry is not None  # reachable: it resolves
            info = out.models.add(name=name, owned_by=entry.owned_by, wildcard=listed[name])
            for d in self.engine.permitted_deployments(name, resolved):
                info.deployments.add(
                    deployment_id=d.id, provider=d.provider, upstream_model=d.model, jurisdiction=d.jurisdiction,
                    privacy_tier=d.privacy_tier, health=self.engine.health.state(d.id),
                    context_window=d.context_window, max_output_tokens=d.max_output_tokens,
                )
        return out
