"""Provider-specific deployment settings that the catalog checks when it loads.

Every key of a deployment that the catalog does not know itself goes to the
deployment's ``extra`` for its adapter to read. The settings below are checked
here, so that a typo fails the load (naming the place) instead of a request:

- ``prompt_cache`` (any provider): ``auto`` or ``off``, see
  :mod:`switchboard_router.providers.cache_marks`;
- ``vertex_project``, ``vertex_location``, ``vertex_credentials`` (``vertex``):
  see :mod:`switchboard_router.providers.vertex`.
"""

from __future__ import annotations

import re
from typing import Any

from switchboard_rules.catalog import CatalogError

#: A Google Cloud location: ``global`` or a region such as ``europe-west4``.
_LOCATION = re.compile(r"^(global|[a-z]+-[a-z]+[0-9]+)$")


def checked_options(provider: str, extra: dict[str, Any], where: str) -> dict[str, Any]:
    """``extra`` with the settings above checked and written in one form; raises CatalogError."""
    from switchboard_router.providers.cache_marks import MODES, OFF

    out = dict(extra)
    if "prompt_cache" in out:
        mode = out["prompt_cache"]
        if mode is False:  # YAML reads a bare ``off`` as false
            mode = OFF
        if mode not in MODES:
            raise CatalogError(f"{where}.prompt_cache: {mode!r} is not one of {', '.join(MODES)}")
        out["prompt_cache"] = mode
    if provider == "vertex":
        for key in ("vertex_project", "vertex_location"):
            if not isinstance(out.get(key), str) or not out[key]:
                raise CatalogError(f"{where}.{key}: a Vertex AI deployment needs its Google Cloud project and "
                                  "location (vertex_project, vertex_location such as europe-west4 or global)")
        if not _LOCATION.match(out["vertex_location"]):
            raise CatalogError(f"{where}.vertex_location: {out['vertex_location']!r} is not a Google Cloud location "
                              "(global, or a region such as europe-west4)")
        credentials = out.get("vertex_credentials")
        if credentials is not None and not isinstance(credentials, (str, dict)):
            raise CatalogError(f"{where}.vertex_credentials: the path of a service-account JSON file, or its JSON")
    return out
