"""Tool-call ids, mapped one to one between the dialects.

Anthropic accepts ``tool_use`` ids matching ``^[a-zA-Z0-9_-]+$``; OpenAI ids are
any string. Ids Anthropic accepts pass through unchanged, so ids that Anthropic
itself made (``toolu_...``) and OpenAI's (``call_...``) are never rewritten.
Any other id is wrapped as ``sbx_`` + its base64url (an alphabet Anthropic
accepts), and every id that already starts with ``sbx_`` is wrapped too, so
:func:`tool_id_from_anthropic` inverts :func:`tool_id_to_anthropic` exactly.
"""

from __future__ import annotations

import base64
import binascii
import re

_ANTHROPIC_ID = re.compile(r"[A-Za-z0-9_-]+")
_PREFIX = "sbx_"


def tool_id_to_anthropic(tool_id: str) -> str:
    """An Anthropic-valid id standing for the OpenAI ``tool_id``."""
    if _ANTHROPIC_ID.fullmatch(tool_id) and not tool_id.startswith(_PREFIX):
        return tool_id
    return _PREFIX + base64.urlsafe_b64encode(tool_id.encode()).decode().rstrip("=")


def tool_id_from_anthropic(tool_id: str) -> str:
    """The OpenAI id an Anthropic id stands for (the inverse of :func:`tool_id_to_anthropic`)."""
    if not tool_id.startswith(_PREFIX):
        return tool_id
    encoded = tool_id[len(_PREFIX) :]
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return tool_id
