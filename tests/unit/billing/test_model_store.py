"""The store of models added at run time: credentials sealed and write-only, changes seen by another replica
of the same database, watchers woken, and a catalog priced with the stored models and wildcard names."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from switchboard.v1 import billing_pb2
from switchboard_billing.ledger import Ledger
from switchboard_billing.model_store import ModelStore
from switchboard_billing.priced_models import CatalogSource, parse_models
from switchboard_common.credential_cipher import CredentialCipher
from switchboard_common.database import make_engine
from switchboard_common.errors import Kind, ServiceError

CIPHER = CredentialCipher([CredentialCipher.generate_key()])


def model(model_id: str, name: str = "runtime", **secrets: str) -> billing_pb2.StoredModel:
    return billing_pb2.StoredModel(model_id=model_id, model_name=name, secrets=secrets, config_json=orjson.dumps(
        {"provider": "openai", "model": "gpt-4o-mini"}).decode())


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[ModelStore, ModelStore]]:
    """Two replicas' stores on one database."""
    dsn = f"sqlite:///{tmp_path / 'billing.db'}"
    engines = [make_engine(dsn), make_engine(dsn)]
    await Ledger(engines[0]).migrate()
    pair = (ModelStore(engines[0], CIPHER, poll_seconds=0.05), ModelStore(engines[1], CIPHER, poll_seconds=0.05))
    for store in pair:
        await store.start()
    yield pair
    for store, engine in zip(pair, engines, strict=True):
        await store.close()
        await engine.dispose()


def _accept(stored: object) -> None:
    return None


async def test_credentials_are_sealed_shown_as_hints_and_opened_only_when_asked(
        stores: tuple[ModelStore, ModelStore]) -> None:
    store = stores[0]
    row = await store.put(model("m1", api_key="sk-secret-1234"), create_only=True, update_only=False, actor="master",
                          check=_accept)
    assert "sk-secret-1234" not in str(row)
    view = store.view(row)
    assert dict(view.secret_hints) == {"api_key": "...1234"} and not view.secrets
    assert dict(store.view(row, open_secrets=True).secrets) == {"api_key": "sk-secret-1234"}
    assert store.stored() == [("runtime", {"provider": "openai", "model": "gpt-4o-mini", "id": "m1"})]
    # An update without the credential keeps it; "" drops it.
    await store.put(model("m1"), create_only=False, update_only=True, actor="k", check=_accept)
    assert dict(store.views(open_secrets=True).models[0].secrets) == {"api_key": "sk-secret-1234"}
    await store.put(model("m1", api_key=""), create_only=False, update_only=True, actor="k", check=_accept)
    assert not store.views(open_secrets=True).models[0].secrets


async def test_another_replica_sees_a_change_and_wakes_its_watchers(stores: tuple[ModelStore, ModelStore]) -> None:
    writer, reader = stores
    changes = reader.changes()
    first = await anext(changes)
    waiting = asyncio.ensure_future(anext(changes))
    await writer.put(model("m2"), create_only=True, update_only=False, actor="master", check=_accept)
    assert await asyncio.wait_for(waiting, 5) > first
    assert [name for name, _ in reader.stored()] == ["runtime"]
    await writer.delete("m2")
    assert await asyncio.wait_for(anext(changes), 5) > first
    assert reader.stored() == []
    reader.end_watchers()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(changes), 5)


async def test_what_the_store_refuses(stores: tuple[ModelStore, ModelStore], tmp_path: Path) -> None:
    store = stores[0]
    await store.put(model("m3"), create_only=True, update_only=False, actor="master", check=_accept)
    with pytest.raises(ServiceError) as taken:
        await store.put(model("m3"), create_only=True, update_only=False, actor="master", check=_accept)
    assert taken.value.error.code == "model_exists"
    with pytest.raises(ServiceError) as unknown:
        await store.put(model("nope"), create_only=False, update_only=True, actor="master", check=_accept)
    assert unknown.value.error.code == "model_not_found"

    def refuse(stored: object) -> None:
        raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST, "no")

    with pytest.raises(ServiceError):
        await store.put(model("m4"), create_only=True, update_only=False, actor="master", check=refuse)
    assert "m4" not in store.rows  # refused before anything was written
    keyless = ModelStore(store.engine, None)
    await keyless.refresh()
    with pytest.raises(ServiceError) as sealed:
        await keyless.put(model("m5", api_key="sk-x"), create_only=True, update_only=False, actor="m", check=_accept)
    assert "SWITCHBOARD_ENCRYPTION_KEY" in sealed.value.message


class _Stored:
    def __init__(self, stored: list[tuple[str, dict[str, object]]]) -> None:
        self.revision = 1
        self._stored = stored

    def stored(self) -> list[tuple[str, dict[str, object]]]:
        return self._stored


def test_the_catalog_prices_stored_models_and_wildcard_names(tmp_path: Path) -> None:
    config = tmp_path / "switchboard.yaml"
    config.write_text("models:\n  - name: openai/*\n    deployments:\n      - provider: openai\n        model: '*'\n")
    store = _Stored([("runtime", {"id": "r1", "provider": "openai", "model": "gpt-4o",
                                  "input_cost_per_million": "1", "output_cost_per_million": "2"})])
    source = CatalogSource(config, store=store)
    catalog = source.current()
    runtime = catalog.deployment("r1")
    assert runtime is not None and runtime.stored and runtime.pricing.overrides["input"] == 1
    resolved = catalog.resolve("openai/gpt-4o-mini")
    assert resolved is not None and resolved.deployments[0].pricing.model == "gpt-4o-mini"
    assert resolved.deployments[0].max_output_tokens > 0
    assert catalog.deployment("openai/*/0", "gpt-4o-mini").pricing.model == "gpt-4o-mini"  # type: ignore[union-attr]
    assert [d.id for d in catalog.candidates("openai/o3")] == ["openai/*/0"]
    store._stored = []
    store.revision = 2
    assert source.current().deployment("r1") is None  # a store change reprices at once
    assert parse_models({"models": []}).resolve("anything") is None


def test_the_file_wins_over_a_stored_deployment_that_no_longer_fits(tmp_path: Path) -> None:
    config = tmp_path / "switchboard.yaml"
    config.write_text("models:\n  - name: file-model\n    deployments:\n      - id: taken\n        provider: openai\n"
                      "        model: gpt-4o\n")
    store = _Stored([("runtime", {"id": "taken", "provider": "openai", "model": "gpt-4o-mini"}),
                     ("runtime", {"id": "fine", "provider": "openai", "model": "gpt-4o-mini"})])
    catalog = CatalogSource(config, store=store).current()
    assert catalog.deployment("taken").public_model == "file-model"  # type: ignore[union-attr]
    assert [d.id for d in catalog.candidates("runtime")] == ["fine"]
