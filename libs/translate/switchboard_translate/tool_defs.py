"""Tool definitions and tool choice, from every published shape to Chat Completions.

Clients mix shapes inside one ``tools`` array: Cursor's Ask mode sends nested
chat tools next to flat Responses-style ones, agent mode sends flat tools and
grammar-backed ``custom`` tools (ApplyPatch), and some clients write tools the
Anthropic way (``input_schema``). Providers accept only the nested chat shape,
so everything becomes ``{"type": "function", "function": {...}}``.

A custom tool has no JSON schema: the model answers with raw text. It becomes a
function taking one string parameter ``input``; its name is remembered so the
output side can unwrap ``{"input": "..."}`` back into the raw text the client
expects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidRequest

CUSTOM_INPUT_PARAM = "input"
_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
_BUILTIN_RESPONSES_TOOLS = frozenset(
    {
        "web_search",
        "web_search_preview",
        "file_search",
        "computer_use_preview",
        "code_interpreter",
        "image_generation",
        "mcp",
        "local_shell",
        "shell",
        "apply_patch",
    }
)


@dataclass(slots=True)
class ToolSet:
    """Canonical tools plus what the output side must remember about them."""

    tools: list[dict[str, Any]] = field(default_factory=list)
    custom_tools: set[str] = field(default_factory=set)
    non_chat_shapes: bool = False


def normalize_tools(raw: object, param: str = "tools") -> ToolSet:
    """Every tool definition as a nested chat function tool."""
    if raw is None:
        return ToolSet()
    if not isinstance(raw, list):
        raise InvalidRequest(f"'{param}' must be an array of tool definitions.", param)
    result = ToolSet()
    for i, tool in enumerate(raw):
        where = f"{param}[{i}]"
        if not isinstance(tool, dict):
            raise InvalidRequest(f"'{where}' must be an object describing one tool.", where)
        _append_tool(result, tool, where)
        mark = tool.get("cache_control")
        if mark and result.tools:
            # A prompt-cache breakpoint after this tool's definition (see prompt_cache.py).
            result.tools[-1]["cache_control"] = mark
    return result


def _append_tool(result: ToolSet, tool: dict[str, Any], where: str) -> None:
    kind = tool.get("type")
    nested = tool.get("function")
    if kind in (None, "function") and isinstance(nested, dict):
        result.tools.append({"type": "function", "function": _function_body(nested, where + ".function")})
        return
    result.non_chat_shapes = True
    if "input_schema" in tool and kind in (None, "custom"):
        # Anthropic client tool: {name, description, input_schema}.
        result.tools.append(
            {"type": "function", "function": _function_body(tool, where, schema_key="input_schema")}
        )
    elif kind == "custom":
        name = _tool_name(tool, where)
        result.tools.append({"type": "function", "function": _custom_as_function(tool, name)})
        result.custom_tools.add(name)
    elif kind in (None, "function"):
        result.tools.append({"type": "function", "function": _function_body(tool, where)})
    elif kind in _BUILTIN_RESPONSES_TOOLS:
        raise InvalidRequest(
            f"'{where}.type' is the hosted tool '{kind}', which this gateway does not run; "
            "define it as a function tool and execute it in the client.",
            where + ".type",
        )
    else:
        raise InvalidRequest(
            f"'{where}.type' is '{kind}'; supported tool types are 'function' and 'custom'.",
            where + ".type",
        )


def _tool_name(tool: dict[str, Any], where: str) -> str:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"'{where}.name' is required: every tool needs a non-empty string name.", where + ".name")
    return name


def _function_body(tool: dict[str, Any], where: str, schema_key: str = "parameters") -> dict[str, Any]:
    body: dict[str, Any] = {"name": _tool_name(tool, where)}
    description = tool.get("description")
    if isinstance(description, str) and description:
        body["description"] = description
    parameters = tool.get(schema_key)
    if parameters is None:
        parameters = dict(_EMPTY_PARAMETERS)
    elif not isinstance(parameters, dict):
        raise InvalidRequest(f"'{where}.{schema_key}' must be a JSON Schema object.", f"{where}.{schema_key}")
    body["parameters"] = parameters
    strict = tool.get("strict")
    if isinstance(strict, bool):
        body["strict"] = strict
    return body


def _custom_as_function(tool: dict[str, Any], name: str) -> dict[str, Any]:
    input_description = "The raw input for this tool, exactly as the tool expects it (not JSON-encoded)."
    fmt = tool.get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "grammar" and isinstance(fmt.get("definition"), str):
        syntax = fmt.get("syntax") or "lark"
        input_description += f" It must match this {syntax} grammar:\n{fmt['definition']}"
    body: dict[str, Any] = {"name": name}
    description = tool.get("description")
    if isinstance(description, str) and description:
        body["description"] = description
    body["parameters"] = {
        "type": "object",
        "properties": {CUSTOM_INPUT_PARAM: {"type": "string", "description": input_description}},
        "required": [CUSTOM_INPUT_PARAM],
        "additionalProperties": False,
    }
    return body


def normalize_tool_choice(raw: object, param: str = "tool_choice") -> object:
    """Tool choice in the chat shape; chat, Responses and Anthropic spellings are accepted."""
    if raw is None or raw in ("auto", "none", "required"):
        return raw
    if raw == "any":
        return "required"
    if not isinstance(raw, dict):
        raise InvalidRequest(f"'{param}' must be 'auto', 'none', 'required' or an object naming a function.", param)
    kind = raw.get("type")
    if kind in ("function", "custom", "tool"):
        nested = raw.get("function")
        name = nested.get("name") if isinstance(nested, dict) else raw.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"'{param}' names no tool: give the tool's name.", param)
        return {"type": "function", "function": {"name": name}}
    if kind in ("auto", "none"):
        return kind
    if kind == "any":
        return "required"
    if kind == "allowed_tools":
        nested = raw.get("allowed_tools")
        spec: dict[str, Any] = nested if isinstance(nested, dict) else raw
        listed = spec.get("tools")
        tools: list[Any] = listed if isinstance(listed, list) else []
        allowed = []
        for tool in tools:
            if isinstance(tool, dict):
                nested = tool.get("function")
                name = nested.get("name") if isinstance(nested, dict) else tool.get("name")
                if isinstance(name, str):
                    allowed.append({"type": "function", "function": {"name": name}})
        return {"type": "allowed_tools", "allowed_tools": {"mode": spec.get("mode", "auto"), "tools": allowed}}
    raise InvalidRequest(f"'{param}.type' is '{kind}'; use 'function' with the tool's name.", param + ".type")
