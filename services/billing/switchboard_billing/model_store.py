"""Models added at run time: stored in billing's database, priced here, watched by every router replica.

Billing keeps them because it already prices the catalog and both of the other
parties already call it: the facade (the admin API writes here) and the router
(which watches here, :meth:`ModelStore.changes`). One table holds the
deployments, one row counts the changes; every write bumps the count in its
transaction, and each billing replica polls the count (every half second) to
see another replica's writes, so a change reaches every router within a second.

Credentials (``api_key``, AWS and Vertex secrets) are write-only: sealed with
:class:`~switchboard_common.credential_cipher.CredentialCipher` (the key in
``SWITCHBOARD_ENCRYPTION_KEY``; on the embedded SQLite default a key made once
in the data directory), shown as their last four characters, and opened only on
the way to the router.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from switchboard.v1 import billing_pb2
from switchboard_billing.models import StoredModelRow, StoredModelsRevisionRow
from switchboard_billing.sqlite_transactions import reading
from switchboard_common import audit_chain
from switchboard_common.credential_cipher import CredentialCipher, CredentialError, describe
from switchboard_common.errors import Kind, ServiceError
from switchboard_rules.catalog import Stored

log = logging.getLogger(__name__)

_MODELS = StoredModelRow.__table__  # type: ignore[attr-defined]  # SQLModel sets __table__ at class creation
_REVISION = StoredModelsRevisionRow.__table__  # type: ignore[attr-defined]  # idem
_COLUMNS = ("model_id", "model_name", "config_json", "litellm_params_json", "model_info_json", "sealed_secrets",
            "secret_hints_json", "created_at_ms", "updated_at_ms", "created_by", "updated_by")


#: Billing's audit log (models added at run time).
AUDIT = audit_chain.tables("billing")
#: Makes the audit row of a change: (action, model id, the row before, the row after) -> the change.
Recorder = Callable[[str, str, Mapping[str, Any], Mapping[str, Any]], audit_chain.Change]


def _loads(text: str) -> dict[str, Any]:
    value = orjson.loads(text or "{}")
    return value if isinstance(value, dict) else {}


class ModelStore:
    """The stored deployments of this billing replica's database, kept in memory and refreshed on change."""

    def __init__(self, engine: AsyncEngine, cipher: CredentialCipher | None, poll_seconds: float = 0.5) -> None:
        self.engine = engine
        self.cipher = cipher
        self.poll_seconds = poll_seconds
        self.revision = -1
        self.rows: dict[str, dict[str, Any]] = {}
        self._changed = asyncio.Event()
        self._lock = asyncio.Lock()
        #: This process's audit appends wait here rather than on the database's lock (see audit_chain).
        self._append = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None
        self._ending = False

    async def start(self) -> None:
        await self.refresh()
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.refresh()
            except Exception as exc:  # the database may be briefly unreachable; the next round tries again
                log.warning("stored models not refreshed", extra={"error": str(exc)})

    async def refresh(self) -> bool:
        """Reads the stored deployments again when their revision moved; True when it did."""
        async with self._lock:
            async with reading(self.engine) as conn:
                revision = (await conn.execute(sa.select(_REVISION.c.revision).where(_REVISION.c.id == 1))).scalar()
                if revision is None or revision == self.revision:
                    return False
                rows = (await conn.execute(sa.select(*(_MODELS.c[name] for name in _COLUMNS)))).mappings().all()
            self.rows = {row["model_id"]: dict(row) for row in rows}
            self.revision = int(revision)
            self._changed.set()
            self._changed = asyncio.Event()
            return True

    # -- reads ----------------------------------------------------------------------------------

    def stored(self) -> list[Stored]:
        """(public model name, deployment) of every stored deployment, in creation order, without credentials:
        what billing prices."""
        rows = sorted(self.rows.values(), key=lambda r: (r["created_at_ms"], r["model_id"]))
        return [(row["model_name"], {**_loads(row["config_json"]), "id": row["model_id"]}) for row in rows]

    def view(self, row: Mapping[str, Any], *, open_secrets: bool = False) -> billing_pb2.StoredModel:
        """A stored deployment as the RPCs answer it: credentials as hints, opened only when asked (the router)."""
        model = billing_pb2.StoredModel(
            model_id=row["model_id"], model_name=row["model_name"], config_json=row["config_json"],
            litellm_params_json=row["litellm_params_json"], model_info_json=row["model_info_json"],
            secret_hints=_loads(row["secret_hints_json"]), created_at_ms=row["created_at_ms"],
            updated_at_ms=row["updated_at_ms"], created_by=row["created_by"], updated_by=row["updated_by"])
        if open_secrets:
            model.secrets.update(self._open(row))
        return model

    def views(self, *, open_secrets: bool = False) -> billing_pb2.StoredModels:
        rows = sorted(self.rows.values(), key=lambda r: (r["created_at_ms"], r["model_id"]))
        return billing_pb2.StoredModels(models=[self.view(r, open_secrets=open_secrets) for r in rows],
                                        revision=self.revision)

    def _open(self, row: Mapping[str, Any]) -> dict[str, str]:
        if not row["sealed_secrets"]:
            return {}
        if self.cipher is None:
            log.error("a stored model's credentials cannot be opened: SWITCHBOARD_ENCRYPTION_KEY is not set",
                      extra={"model_id": row["model_id"]})
            return {}
        try:
            return self.cipher.open(row["sealed_secrets"])
        except CredentialError as exc:
            log.error("a stored model's credentials cannot be opened", extra={"model_id": row["model_id"],
                                                                             "error": str(exc)})
            return {}

    async def changes(self) -> AsyncIterator[int]:
        """The revision now, then after every change, for as long as the caller reads (or until
        :meth:`end_watchers`)."""
        while not self._ending:
            event = self._changed
            yield self.revision
            await event.wait()

    def end_watchers(self) -> None:
        """Ends every :meth:`changes` (on shutdown, so that routers move to another replica at once)."""
        self._ending = True
        self._changed.set()

    # -- writes ---------------------------------------------------------------------------------

    async def put(self, model: billing_pb2.StoredModel, *, create_only: bool, update_only: bool, actor: str,
                  check: Callable[[list[Stored]], None], audit: Recorder | None = None) -> dict[str, Any]:
        """Creates or replaces one deployment after ``check`` accepted the stored set it makes; credentials not
        given keep their stored values. Raises ServiceError (ALREADY_EXISTS, NOT_FOUND, INVALID_REQUEST).
        ``audit`` makes the change's audit row, appended in the change's transaction."""
        await self.refresh()
        existing = self.rows.get(model.model_id)
        if existing is not None and create_only:
            raise ServiceError(Kind.ERROR_KIND_CONFLICT,
                               f"A model with id {model.model_id!r} already exists; use /model/update to change "
                               "it, or another model_info.id.", code="model_exists", param="model_info.id")
        if existing is None and update_only:
            raise ServiceError(Kind.ERROR_KIND_NOT_FOUND,
                               f"No model with id {model.model_id!r} was added at run time; /model/info lists "
                               "the ids.", code="model_not_found", param="id")
        stored = self._open(existing) if existing is not None else {}
        secrets = {key: value for key, value in {**stored, **model.secrets}.items() if value}  # "" drops one
        sealed = ""
        if existing is not None and secrets == stored:
            # Unchanged credentials keep their sealed text: sealing again gives other bytes, which the audit
            # log would show as a credential change.
            sealed = existing["sealed_secrets"]
        elif secrets:
            if self.cipher is None:
                raise ServiceError(Kind.ERROR_KIND_INVALID_REQUEST,
                                   "This gateway cannot store provider credentials: set SWITCHBOARD_ENCRYPTION_KEY "
                                   "on the billing service, or give the credential as os.environ/<VARIABLE>.",
                                   code="credentials_not_storable", param="litellm_params.api_key")
            sealed = self.cipher.seal(secrets)
        now = int(time.time() * 1000)
        row: dict[str, Any] = {
            "model_id": model.model_id, "model_name": model.model_name, "config_json": model.config_json or "{}",
            "litellm_params_json": model.litellm_params_json or "{}",
            "model_info_json": model.model_info_json or "{}", "sealed_secrets": sealed,
            "secret_hints_json": orjson.dumps(describe(secrets)).decode(),
            "created_at_ms": existing["created_at_ms"] if existing is not None else now, "updated_at_ms": now,
            "created_by": existing["created_by"] if existing is not None else actor, "updated_by": actor,
        }
        others = [(r["model_name"], {**_loads(r["config_json"]), "id": r["model_id"]})
                  for r in sorted(self.rows.values(), key=lambda r: (r["created_at_ms"], r["model_id"]))
                  if r["model_id"] != model.model_id]
        check([*others, (row["model_name"], {**_loads(row["config_json"]), "id": row["model_id"]})])
        async with self._append, self.engine.begin() as conn:
            if audit is not None:
                action = "model.create" if existing is None else "model.update"
                await audit_chain.append(conn, AUDIT, audit(action, model.model_id, existing or {}, row))
            if existing is None:
                await conn.execute(_MODELS.insert().values(**row))
            else:
                await conn.execute(_MODELS.update().where(_MODELS.c.model_id == model.model_id).values(**row))
            await conn.execute(_REVISION.update().where(_REVISION.c.id == 1)
                               .values(revision=_REVISION.c.revision + 1))
        await self.refresh()
        return row

    async def delete(self, model_id: str, audit: Recorder | None = None) -> dict[str, Any]:
        await self.refresh()
        existing = self.rows.get(model_id)
        if existing is None:
            raise ServiceError(Kind.ERROR_KIND_NOT_FOUND,
                               f"No model with id {model_id!r} was added at run time; /model/info lists the ids.",
                               code="model_not_found", param="id")
        async with self._append, self.engine.begin() as conn:
            if audit is not None:
                await audit_chain.append(conn, AUDIT, audit("model.delete", model_id, existing, {}))
            await conn.execute(_MODELS.delete().where(_MODELS.c.model_id == model_id))
            await conn.execute(_REVISION.update().where(_REVISION.c.id == 1)
                               .values(revision=_REVISION.c.revision + 1))
        await self.refresh()
        return existing


def cipher_for(setting: str, data_dir: Any, embedded: bool) -> CredentialCipher | None:
    """The cipher of ``SWITCHBOARD_ENCRYPTION_KEY``; without one, on the embedded default (SQLite in the data
    directory), a key made once in ``<data dir>/model-credentials.key``; else None (credentials refused)."""
    cipher = CredentialCipher.from_setting(setting)
    if cipher is not None or not embedded:
        return cipher
    from pathlib import Path

    from switchboard_common.settings import load_or_create_secret

    path = Path(data_dir) / "model-credentials.key"
    if not path.exists():
        load_or_create_secret(path, prefix=CredentialCipher.generate_key(), nbytes=0)
    return CredentialCipher([path.read_text(encoding="utf-8").strip()])
