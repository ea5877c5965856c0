"""The RPCs of models added at run time: checked against the catalog, stored, listed and watched.

A write is checked as the catalog would read it: the deployment alone (its own
settings, named plainly), then with the config file and every other stored
deployment (ids, names, fallbacks, prices), so that what is stored always loads.
The config file's deployments are not changed here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import grpc

from switchboard.v1 import billing_pb2
from switchboard_billing.model_audit import recorder
from switchboard_billing.model_store import ModelStore
from switchboard_billing.priced_models import CatalogSource, parse_models
from switchboard_common.errors import Kind, ServiceError
from switchboard_common.identity import ServiceIdentity
from switchboard_rules.catalog import CatalogError, Stored

_ALONE = "models[0].deployments[0]"


class ModelAdmin:
    def __init__(self, store: ModelStore, source: CatalogSource, identity: ServiceIdentity) -> None:
        self.store = store
        self.source = source
        self.identity = identity

    def _file_ids(self) -> set[str]:
        catalog = self.source.current()
        return {dep_id for dep_id, dep in catalog.by_id.items() if not dep.stored}

    def _check(self, stored: list[Stored]) -> None:
        name, config = stored[-1]
        try:
            parse_models({"models": [{"name": name, "deployments": [config]}]})
        except CatalogError as exc:
            text = str(exc).replace(_ALONE + ".", "").replace(_ALONE, "the deployment")
            raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, f"Model {name!r} cannot be served: {text}",
                               code="invalid_model", param="litellm_params") from None
        try:
            self.source.check(stored)
        except CatalogError as exc:
            raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST,
                               f"Model {name!r} does not fit the catalog: {exc}", code="invalid_model",
                               param="model_name") from None

    def _not_the_files(self, model_id: str, verb: str) -> None:
        if model_id in self._file_ids():
            raise ServiceError(Kind.ERROR_KIND_POLICY,
                               f"Deployment {model_id!r} is declared in the config file ({self.source.path}); "
                               f"{verb} it there (the file stays the source of what it declares).",
                               code="declared_in_config", param="id")

    async def put(self, request: billing_pb2.PutModelRequest) -> billing_pb2.StoredModel:
        model = request.model
        if not model.model_id or not model.model_name:
            raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, "model_id and model_name are required",
                               param="model_name")
        if model.model_id in self._file_ids():
            if request.create_only:
                raise ServiceError(Kind.ERROR_KIND_CONFLICT,
                                   f"{model.model_id!r} is the id of a deployment of the config file; choose "
                                   "another model_info.id.", code="model_exists", param="model_info.id")
            self._not_the_files(model.model_id, "change")
        row = await self.store.put(model, create_only=request.create_only, update_only=request.update_only,
                                   actor=request.actor, check=self._check, audit=recorder(request))
        return self.store.view(row)

    async def delete(self, request: billing_pb2.DeleteModelRequest) -> billing_pb2.StoredModel:
        self._not_the_files(request.model_id, "delete")
        return self.store.view(await self.store.delete(request.model_id, recorder(request)))

    async def learn(self, models: Iterable[str] = (), deployment_ids: Iterable[str] = ()) -> None:
        """Reads the store again at once when a request names a model or deployment this replica does not know:
        another replica may have stored it less than a poll ago (and a router already serve it), and a hold or a
        price must not miss it."""
        catalog = self.source.current()
        if any(catalog.resolve(m) is None for m in models if m) or \
                any(catalog.deployment(d) is None for d in deployment_ids if d):
            if await self.store.refresh():
                self.source.current()

    def listing(self) -> billing_pb2.StoredModels:
        return self.store.views()

    async def watch(self, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[billing_pb2.StoredModels]:
        """Every stored deployment now and after each change; credentials opened for the router alone."""
        router = self.identity.caller(context.invocation_metadata()) == "router"
        async for _revision in self.store.changes():
            yield self.store.views(open_secrets=router)
