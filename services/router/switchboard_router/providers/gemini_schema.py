"""JSON Schema → the OpenAPI-subset schema Gemini accepts for tools and structured output.

Gemini's ``Schema`` object rejects keys it does not know (``additionalProperties``,
``$schema``, ``$ref``, ``const``...) with a 400, while OpenAI clients, pydantic and
zod emit them freely. So the schema is rewritten: references are inlined,
``const`` becomes a one-value ``enum``, ``["string", "null"]`` becomes a nullable
string, ``anyOf`` with a null branch becomes ``nullable``, and every key outside
the supported set is dropped.
"""

from __future__ import annotations

from typing import Any

_KEPT_KEYS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "default",
        "minimum",
        "maximum",
        "propertyOrdering",
        "required",
    }
)
#: Formats Gemini accepts on strings; others are dropped (it rejects e.g. "uri").
_STRING_FORMATS = frozenset({"enum", "date-time"})
_MAX_DEPTH = 32


def to_gemini_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` that Gemini accepts."""
    definitions = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    return _clean(schema, definitions, 0)


def _resolve(ref: str, definitions: dict[str, Any]) -> dict[str, Any]:
    name = ref.rsplit("/", 1)[-1]
    target = definitions.get(name)
    if isinstance(target, dict):
        return target
    raise ValueError(f"tool schema reference {ref!r} cannot be resolved")


def _clean(schema: dict[str, Any], definitions: dict[str, Any], depth: int) -> dict[str, Any]:
    if depth > _MAX_DEPTH:
        raise ValueError("tool schema is nested too deeply (recursive $ref?) for Gemini")
    if "$ref" in schema:
        merged = {**_resolve(schema["$ref"], definitions), **{k: v for k, v in schema.items() if k != "$ref"}}
        return _clean(merged, definitions, depth + 1)

    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _KEPT_KEYS:
            out[key] = value
    if "const" in schema:
        out["enum"] = [schema["const"]]

    kind = schema.get("type")
    if isinstance(kind, list):
        non_null = [t for t in kind if t != "null"]
        if len(non_null) < len(kind):
            out["nullable"] = True
        if len(non_null) == 1:
            out["type"] = non_null[0]
        else:
            out.pop("type", None)
            out["anyOf"] = [{"type": t} for t in non_null]

    all_of = schema.get("allOf")
    if isinstance(all_of, list):
        for branch in all_of:
            if isinstance(branch, dict):
                out.update(_clean(branch, definitions, depth + 1))

    for union_key in ("anyOf", "oneOf"):
        branches = schema.get(union_key)
        if not isinstance(branches, list):
            continue
        kept = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
        if len(kept) < len(branches):
            out["nullable"] = True
        if len(kept) == 1:
            out.update(_clean(kept[0], definitions, depth + 1))
        else:
            out["anyOf"] = [_clean(b, definitions, depth + 1) for b in kept]

    if "enum" in out:
        # Gemini enums are strings only.
        out["enum"] = [str(v) for v in out["enum"]]
        out["type"] = "string"
    if out.get("type") == "string" and "format" in out and out["format"] not in _STRING_FORMATS:
        del out["format"]

    properties = schema.get("properties")
    if isinstance(properties, dict):
        out["properties"] = {name: _clean(sub, definitions, depth + 1) for name, sub in properties.items()}
        if "required" in out:
            out["required"] = [name for name in out["required"] if name in properties]
    elif "properties" not in out:
        out.pop("required", None)
    items = schema.get("items")
    if isinstance(items, dict):
        out["items"] = _clean(items, definitions, depth + 1)
    return out
