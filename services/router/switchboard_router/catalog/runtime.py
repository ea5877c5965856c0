"""The router's live catalog: the config file (re-read on SIGHUP) and the models added at run time.

Models added through the admin API are stored by billing; the router follows them
(:class:`~switchboard_billing.client.ModelWatch`) and rebuilds its catalog on every
change, so a model added on any facade is served by every router replica within a
second, and one deleted stops being served as fast. The file stays the source of
what it declares: a broken file edit is rejected (the running catalog stays), and a
stored deployment the router cannot serve is left out alone (:func:`load_catalog`).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import orjson

from switchboard_billing.client import StoredModels
from switchboard_router.catalog.config import Catalog, CatalogError, load_catalog
from switchboard_router.catalog.probe import live_catalog
from switchboard_rules.catalog import Stored

log = logging.getLogger(__name__)


def stored_of(models: StoredModels) -> list[Stored]:
    """Billing's stored deployments as the catalog reads them, their opened credentials put back in."""
    out: list[Stored] = []
    for model in models.models:
        try:
            config = orjson.loads(model.config_json or "{}")
        except orjson.JSONDecodeError:
            log.error("a stored model's settings are not JSON; left out", extra={"deployment": model.model_id})
            continue
        out.append((model.model_name, {**config, **dict(model.secrets), "id": model.model_id}))
    return out


class CatalogLoader:
    """Builds the catalog from the file and the latest stored deployments, one build at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stored: list[Stored] = []
        self._lock = asyncio.Lock()
        self._seen = self._stamp()

    def _stamp(self) -> tuple[int, int, int] | None:
        """What identifies the file's content as the last build read it (a ConfigMap update swaps the file)."""
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size, stat.st_ino

    def file_changed(self) -> bool:
        """Whether the file changed since it was last looked at: billing re-reads it by itself, and a router
        left on the old catalog would serve models billing no longer prices (or miss new ones)."""
        stamp = self._stamp()
        if stamp == self._seen:
            return False
        self._seen = stamp
        return True

    async def build(self) -> Catalog:
        """The catalog now; raises CatalogError when the file is broken."""
        async with self._lock:
            return await live_catalog(load_catalog(self.path, self.stored))

    async def rebuilt(self, why: str) -> Catalog | None:
        """The catalog rebuilt after a change (``why`` for the logs); None when the file is broken now (the
        running catalog stays)."""
        try:
            return await self.build()
        except CatalogError as exc:
            log.error(f"{why} rejected; keeping the running catalog", extra={"error": str(exc)})
            return None

    def take(self, models: StoredModels) -> None:
        self.stored = stored_of(models)
