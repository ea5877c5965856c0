"""Chat Completions answers made safe for Cursor.

Cursor's agent reads ``tool_call.function.name`` on every tool call, including
every streamed delta, and crashes when it is missing; most providers send the
name and id only on a call's first delta. :class:`CursorResponseFixer`
remembers name and id per (choice, tool-call index) and fills them into later
deltas. Calls of custom (grammar) tools go back as function calls whose
``arguments`` carry the raw input, with the ``{"input": ...}`` wrapper the
gateway added on the way in taken off again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from .chat_messages import dumps
from .custom_input import CustomInputUnwrapper, unwrap_custom_arguments


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


@dataclass(slots=True)
class _CallState:
    id: str
    name: str
    unwrapper: CustomInputUnwrapper | None


class CursorResponseFixer:
    """Repairs tool calls in completions and stream chunks for one request."""

    __slots__ = ("_calls", "_custom_tools", "_repeat_identity")

    def __init__(self, custom_tools: set[str] | frozenset[str] = frozenset(), *, repeat_identity: bool = True) -> None:
        """``repeat_identity`` repeats id and name on every delta of a call, as Cursor needs.

        Generic OpenAI clients (the official SDKs among them) *append* every
        ``name`` and ``id`` fragment they receive, so for them pass ``False``:
        id and name then appear once, on the call's first delta, and later
        deltas still carry a ``function`` object.
        """
        self._custom_tools = frozenset(custom_tools)
        self._calls: dict[tuple[int, int], _CallState] = {}
        self._repeat_identity = repeat_identity

    def fix_completion(self, completion: dict[str, Any]) -> dict[str, Any]:
        """A non-streamed completion whose tool calls all carry id, type and function name."""
        choices = completion.get("choices")
        if not isinstance(choices, list):
            return completion
        fixed_choices = []
        for choice in choices:
            message = choice.get("message") if isinstance(choice, dict) else None
            calls = message.get("tool_calls") if isinstance(message, dict) else None
            if not calls or not isinstance(message, dict):
                fixed_choices.append(choice)
                continue
            fixed_message = dict(message)
            fixed_message["tool_calls"] = [self._fix_full_call(c) for c in calls if isinstance(c, dict)]
            fixed_choices.append({**choice, "message": fixed_message})
        return {**completion, "choices": fixed_choices}

    def _fix_full_call(self, call: dict[str, Any]) -> dict[str, Any]:
        name, arguments = _name_and_arguments(call)
        if name in self._custom_tools and call.get("type") != "custom":
            arguments = unwrap_custom_arguments(arguments)
        elif not arguments:
            arguments = "{}"  # Cursor parses function arguments as JSON
        return {
            "id": call.get("id") or new_call_id(),
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }

    def fix_chunk(self, chunk: dict[str, Any]) -> dict[str, Any]:
        """A stream chunk whose tool-call deltas all carry index, id, type and function name."""
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices:
            return chunk
        fixed_choices = []
        for position, choice in enumerate(choices):
            if not isinstance(choice, dict):
                fixed_choices.append(choice)
                continue
            choice_index = choice.get("index", position)
            delta = choice.get("delta")
            calls = delta.get("tool_calls") if isinstance(delta, dict) else None
            fixed_calls = [self._fix_delta_call(choice_index, c, i) for i, c in enumerate(calls or [])]
            if choice.get("finish_reason") is not None:
                fixed_calls.extend(self._finish_choice(choice_index))
            if not fixed_calls:
                fixed_choices.append(choice)
                continue
            fixed_delta = dict(delta) if isinstance(delta, dict) else {}
            fixed_delta["tool_calls"] = fixed_calls
            fixed_choices.append({**choice, "delta": fixed_delta})
        return {**chunk, "choices": fixed_choices}

    def flush(self) -> dict[str, Any] | None:
        """A last chunk with custom-tool input still held back, for streams that ended without finish_reason."""
        owed: list[tuple[int, dict[str, Any]]] = []
        for choice_index in sorted({key[0] for key in self._calls}):
            owed.extend((choice_index, call) for call in self._finish_choice(choice_index))
        if not owed:
            return None
        choices = [
            {"index": i, "delta": {"tool_calls": [c for ci, c in owed if ci == i]}, "finish_reason": None}
            for i in sorted({ci for ci, _ in owed})
        ]
        return {"object": "chat.completion.chunk", "choices": choices}

    def _fix_delta_call(self, choice_index: int, call: Any, position: int) -> dict[str, Any]:
        if not isinstance(call, dict):
            call = {}
        tc_index = call.get("index", position)
        key = (choice_index, tc_index)
        state = self._calls.get(key)
        first = state is None
        name, arguments = _name_and_arguments(call)
        if state is None:
            is_custom_call = call.get("type") == "custom"
            unwrapper = CustomInputUnwrapper() if name in self._custom_tools and not is_custom_call else None
            state = _CallState(id=call.get("id") or new_call_id(), name=name, unwrapper=unwrapper)
            self._calls[key] = state
        elif name and not state.name:
            state.name = name
            if name in self._custom_tools and call.get("type") != "custom":
                state.unwrapper = CustomInputUnwrapper()
        if state.unwrapper is not None:
            arguments = state.unwrapper.feed(arguments)
        if first or self._repeat_identity:
            return _delta(tc_index, state, arguments)
        return {"index": tc_index, "type": "function", "function": {"arguments": arguments}}

    def _finish_choice(self, choice_index: int) -> list[dict[str, Any]]:
        owed = []
        for (ci, tc_index), state in sorted(self._calls.items()):
            if ci != choice_index or state.unwrapper is None:
                continue
            rest = state.unwrapper.finish()
            state.unwrapper = None
            if rest:
                owed.append(
                    _delta(tc_index, state, rest)
                    if self._repeat_identity
                    else {"index": tc_index, "type": "function", "function": {"arguments": rest}}
                )
        return owed


def _delta(tc_index: int, state: _CallState, arguments: str) -> dict[str, Any]:
    return {
        "index": tc_index,
        "id": state.id,
        "type": "function",
        "function": {"name": state.name, "arguments": arguments},
    }


def _name_and_arguments(call: dict[str, Any]) -> tuple[str, str]:
    """Name and argument text of a function-shaped or custom-shaped tool call (full or delta)."""
    custom = call.get("custom")
    if call.get("type") == "custom" and isinstance(custom, dict):
        raw = custom.get("input", "")
        return str(custom.get("name") or ""), raw if isinstance(raw, str) else ""
    function = call.get("function")
    if not isinstance(function, dict):
        return "", ""
    arguments = function.get("arguments", "")
    if not isinstance(arguments, str):
        arguments = dumps(arguments)
    return str(function.get("name") or ""), arguments
