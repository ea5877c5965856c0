"""OpenAI's ``response_format`` as seen by providers that hold an answer only to a JSON schema.

``json_schema`` maps onto their schema-constrained output (Anthropic's
``output_config.format``, Bedrock Converse's ``outputConfig.textFormat``).
``json_object`` ("any JSON object") has no faithful equivalent there: Claude's
structured outputs want every object's properties listed
(``additionalProperties: false``), so "any object" cannot be written as a schema,
and Converse takes nothing but a schema. Their translations refuse it, before
anything is sent, with :data:`JSON_OBJECT_ADVICE`, rather than drop it and
answer in free text a client would try to parse.
"""

from __future__ import annotations

from typing import Any

#: A chat ``response_format`` that holds the answer to a schema (each dialect writes it in its own syntax: see
#: :mod:`.error_terms`).
JSON_SCHEMA_FORMAT = '{"type": "json_schema", "json_schema": {"name": "answer", "schema": {...}}}'
#: What a client refused ``json_object`` should send instead.
JSON_OBJECT_ADVICE = (f"send {JSON_SCHEMA_FORMAT} with the schema of the object you want, or leave response_format "
                      "out and ask for JSON in the prompt")


def response_format_type(body: dict[str, Any]) -> str | None:
    """``response_format.type`` (``text``, ``json_object``, ``json_schema``), or None when the body sets none."""
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    return kind if isinstance(kind, str) else None
