"""OpenAI's ``allowed_tools`` tool choice, for the providers that have no such choice.

``tool_choice: {"type": "allowed_tools", "allowed_tools": {"mode": "auto" | "required", "tools": [...]}}``
keeps the whole ``tools`` list in the request (so that a prompt cache over it still
holds) and lets the model call only the tools it lists. Anthropic's Messages API,
Bedrock's Converse API and Gemini (which limits calls to named functions only while
forcing a call) cannot say that, so each is sent only the allowed tools, with the
plain choice the mode stands for: ``"required"`` (call one of them) or ``"auto"``.
The Responses API writes the same choice flat (``{"type": "allowed_tools", "mode",
"tools"}``, each tool ``{"type": "function", "name"}``); both shapes are read.
"""

from __future__ import annotations

from typing import Any


def offered_tools(body: dict[str, Any]) -> tuple[list[Any], Any]:
    """The tools of ``body`` a provider without ``allowed_tools`` is sent, and the tool choice to send with them
    (the body's own tools and choice, unless the choice is ``allowed_tools``)."""
    tools = list(body.get("tools") or ())
    choice = body.get("tool_choice")
    if not isinstance(choice, dict) or choice.get("type") != "allowed_tools":
        return tools, choice
    nested = choice.get("allowed_tools")
    spec: dict[str, Any] = nested if isinstance(nested, dict) else choice
    allowed = {_name(tool) for tool in spec.get("tools") or () if isinstance(tool, dict)}
    allowed.discard(None)
    kept = [tool for tool in tools if isinstance(tool, dict) and _name(tool) in allowed]
    return kept, "required" if spec.get("mode") == "required" else "auto"


def _name(tool: dict[str, Any]) -> str | None:
    """A tool's (or an allowed-tools entry's) function name, nested (chat) or flat (Responses)."""
    function = tool.get("function")
    name = function.get("name") if isinstance(function, dict) else tool.get("name")
    return name if isinstance(name, str) else None
