"""Provider-specific deployment settings that the catalog checks when it loads.

Every key of a deployment that the catalog does not know itself goes to the
deployment's ``extra`` for its adapter to read. The settings below are checked
here, so that a typo fails the load (naming the place) instead of a request:

- ``prompt_cache`` (any provider): ``auto`` or ``off``, see
  :mod:`switchboard_router.providers.cache_marks`; ``explicit`` for Gemini models
  (``gemini``, and ``vertex`` but for Claude), with ``prompt_cache_ttl`` in seconds,
  see :mod:`switchboard_router.providers.gemini_cache`;
- ``vertex_project``, ``vertex_location``, ``vertex_credentials`` (``vertex``):
  see :mod:`switchboard_router.providers.vertex`.
"""

from __future__ import annotations

import re
from typing import Any

from switchboard_rules.catalog import CatalogError
from switchboard_rules.prompt_cache import EXPLICIT, MAX_TTL_SECONDS, MIN_TTL_SECONDS
from switchboard_translate.chat_params import is_claude

#: A Google Cloud location: ``global`` or a region such as ``europe-west4``.
_LOCATION = re.compile(r"^(global|[a-z]+-[a-z]+[0-9]+)$")


def checked_options(provider: str, model: str, extra: dict[str, Any], where: str) -> dict[str, Any]:
    """``extra`` with the settings above checked and written in one form; raises CatalogError."""
    out = dict(extra)
    if "prompt_cache" in out:
        out["prompt_cache"] = _prompt_cache_mode(provider, model, out["prompt_cache"], where)
    if "prompt_cache_ttl" in out:
        out["prompt_cache_ttl"] = _prompt_cache_ttl(out, where)
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


def _prompt_cache_mode(provider: str, model: str, mode: Any, where: str) -> str:
    from switchboard_router.providers.cache_marks import MODES, OFF

    if mode is False:  # YAML reads a bare ``off`` as false
        mode = OFF
    gemini = provider == "gemini" or (provider == "vertex" and not is_claude(model))
    if mode == EXPLICIT and not gemini:
        raise CatalogError(f"{where}.prompt_cache: explicit caching is Gemini's (provider gemini, or vertex with a "
                           f"Gemini model); for this deployment write one of {', '.join(MODES)}")
    if mode not in (*MODES, EXPLICIT):
        raise CatalogError(f"{where}.prompt_cache: {mode!r} is not one of {', '.join((*MODES, EXPLICIT))}")
    return str(mode)


def _prompt_cache_ttl(options: dict[str, Any], where: str) -> int:
    ttl = options["prompt_cache_ttl"]
    if options.get("prompt_cache") != EXPLICIT:
        raise CatalogError(f"{where}.prompt_cache_ttl: it is the lifetime of explicit caches; set prompt_cache: "
                           "explicit too, or remove it")
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not MIN_TTL_SECONDS <= ttl <= MAX_TTL_SECONDS:
        raise CatalogError(f"{where}.prompt_cache_ttl: {ttl!r} is not a whole number of seconds from "
                           f"{MIN_TTL_SECONDS} to {MAX_TTL_SECONDS}")
    return ttl
