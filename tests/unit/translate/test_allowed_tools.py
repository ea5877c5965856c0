"""OpenAI's allowed_tools choice, as the providers without it are sent it: only the allowed tools, a plain choice."""

from __future__ import annotations

from typing import Any

from switchboard_translate.allowed_tools import offered_tools


def _tool(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}


def test_only_the_allowed_tools_are_offered_with_the_choice_the_mode_stands_for() -> None:
    tools = [_tool("get_weather"), _tool("get_time"), _tool("read_file")]
    allowed = [{"type": "function", "function": {"name": name}} for name in ("read_file", "get_time")]
    nested = {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": allowed}}
    assert offered_tools({"tools": tools, "tool_choice": nested}) == ([tools[1], tools[2]], "required")
    # The Responses API writes it flat; a mode other than "required" lets the model choose.
    flat = {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "get_weather"}]}
    assert offered_tools({"tools": tools, "tool_choice": flat}) == ([tools[0]], "auto")
    assert offered_tools({"tools": tools, "tool_choice": {"type": "allowed_tools", "allowed_tools": {
        "tools": [{"type": "function", "function": {"name": "unknown"}}]}}}) == ([], "auto")


def test_any_other_choice_leaves_the_tools_and_the_choice_as_sent() -> None:
    tools = [_tool("get_weather")]
    for choice in (None, "auto", "none", "required", {"type": "function", "function": {"name": "get_weather"}}):
        assert offered_tools({"tools": tools, "tool_choice": choice}) == (tools, choice)
    assert offered_tools({}) == ([], None)
