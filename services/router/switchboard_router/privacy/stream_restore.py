"""Restore placeholders in a streamed answer, chunk by chunk, exactly.

A placeholder may arrive split across chunks (``[[EMA`` + ``IL_1]]``). ``StreamRestorer`` emits
everything that cannot be the start of a vault placeholder at once and holds back only a suffix
that is a proper prefix of one (at most the longest placeholder's length minus one character),
so the concatenated output equals ``restore_text`` of the concatenated input for every possible
split, and the stream is never delayed by more than that suffix.

``ChatStreamRestorer`` applies one ``StreamRestorer`` per stream field of OpenAI chat chunks:
``content``, ``refusal``, ``reasoning_content`` and each tool call's ``arguments`` (by choice
index and tool-call index; arguments are restored JSON-escaped). Held text is released in the
chunk that carries the choice's ``finish_reason``, or by ``flush_chunk`` at the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from switchboard_router.privacy.restore import restore_json_text, restore_text

FieldKey = tuple[int, str, int]  # (choice index, field name, tool-call index or -1)
_TEXT_FIELDS = ("content", "refusal", "reasoning_content")


class _PrefixIndex:
    """Proper prefixes of every vault placeholder, shared by the restorers of one stream."""

    __slots__ = ("max_hold", "prefixes")

    def __init__(self, vault: Mapping[str, str]) -> None:
        self.prefixes = frozenset(token[:size] for token in vault for size in range(1, len(token)))
        self.max_hold = max((len(token) for token in vault), default=1) - 1


class StreamRestorer:
    """Restores one text field of a stream; ``feed`` each fragment, then ``flush`` once at the end."""

    __slots__ = ("_index", "_json_escaped", "_pending", "_vault")

    def __init__(
        self, vault: Mapping[str, str], *, json_escaped: bool = False, _index: _PrefixIndex | None = None
    ) -> None:
        self._vault = vault
        self._json_escaped = json_escaped
        self._index = _index if _index is not None else _PrefixIndex(vault)
        self._pending = ""

    @property
    def pending(self) -> str:
        """Text held back because it may be the start of a placeholder."""
        return self._pending

    def _restore(self, text: str) -> str:
        return restore_json_text(text, self._vault) if self._json_escaped else restore_text(text, self._vault)

    def _hold_start(self, buffer: str) -> int:
        """Earliest position whose suffix is a proper prefix of a placeholder (len(buffer) if none)."""
        size = len(buffer)
        prefixes = self._index.prefixes
        position = buffer.find("[", max(0, size - self._index.max_hold))
        while position != -1:
            if buffer[position:] in prefixes:
                return position
            position = buffer.find("[", position + 1)
        return size

    def feed(self, text: str) -> str:
        """Restored text that is safe to emit now."""
        if not self._vault:
            return text
        buffer = self._pending + text if self._pending else text
        hold = self._hold_start(buffer)
        self._pending = buffer[hold:]
        return self._restore(buffer[:hold]) if hold else ""

    def flush(self) -> str:
        """Whatever is still held (an unfinished placeholder prefix is emitted as written)."""
        rest, self._pending = self._pending, ""
        return self._restore(rest)


class ChatStreamRestorer:
    """Restores OpenAI chat-completion chunks (dicts) of one stream."""

    def __init__(self, vault: Mapping[str, str]) -> None:
        self._vault = vault
        self._index = _PrefixIndex(vault) if vault else None
        self._fields: dict[FieldKey, StreamRestorer] = {}

    def _feed(self, key: FieldKey, text: str) -> str:
        restorer = self._fields.get(key)
        if restorer is None:
            restorer = StreamRestorer(self._vault, json_escaped=key[1] == "arguments", _index=self._index)
            self._fields[key] = restorer
        return restorer.feed(text)

    def _release(self, choice_index: int, delta: dict[str, Any]) -> None:
        """Append every field's held text of one choice to ``delta`` (in place; delta is our copy)."""
        for key, restorer in self._fields.items():
            if key[0] != choice_index or not restorer.pending:
                continue
            rest = restorer.flush()
            if key[1] != "arguments":
                delta[key[1]] = (delta.get(key[1]) or "") + rest
                continue
            calls = delta.setdefault("tool_calls", [])
            for position, call in enumerate(calls):
                if isinstance(call, dict) and call.get("index", 0) == key[2]:
                    function = dict(call.get("function") or {})
                    function["arguments"] = (function.get("arguments") or "") + rest
                    calls[position] = {**call, "function": function}
                    break
            else:
                calls.append({"index": key[2], "function": {"arguments": rest}})

    def _restore_delta(self, choice_index: int, delta: dict[str, Any]) -> dict[str, Any]:
        restored = dict(delta)
        for field in _TEXT_FIELDS:
            if isinstance(delta.get(field), str):
                restored[field] = self._feed((choice_index, field, -1), delta[field])
        if delta.get("thinking_blocks"):
            # A signature or a redacted block ends the thinking block: its held-back text goes out before it.
            held = self._fields.get((choice_index, "reasoning_content", -1))
            if held is not None and held.pending:
                restored["reasoning_content"] = (restored.get("reasoning_content") or "") + held.flush()
        if isinstance(delta.get("tool_calls"), list):
            calls = []
            for call in delta["tool_calls"]:
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                    key = (choice_index, "arguments", call.get("index", 0))
                    call = {**call, "function": {**function, "arguments": self._feed(key, function["arguments"])}}
                calls.append(call)
            restored["tool_calls"] = calls
        return restored

    def restore_chunk(self, chunk: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``chunk`` with restored deltas; a finishing choice also gets its held text."""
        choices = chunk.get("choices")
        if not self._vault or not isinstance(choices, list):
            return chunk
        new_choices = []
        for choice in choices:
            if isinstance(choice, dict):
                index = choice.get("index", 0)
                delta = choice.get("delta")
                new_delta = self._restore_delta(index, delta) if isinstance(delta, dict) else {}
                if choice.get("finish_reason") is not None:
                    self._release(index, new_delta)
                if isinstance(delta, dict) or new_delta:
                    choice = {**choice, "delta": new_delta}
            new_choices.append(choice)
        return {**chunk, "choices": new_choices}

    def flush_chunk(self, template: dict[str, Any]) -> dict[str, Any] | None:
        """A last chunk (id/model/created copied from ``template``) carrying any held text, or None."""
        indexes = sorted({key[0] for key, restorer in self._fields.items() if restorer.pending})
        if not indexes:
            return None
        choices = []
        for index in indexes:
            delta: dict[str, Any] = {}
            self._release(index, delta)
            choices.append({"index": index, "delta": delta, "finish_reason": None})
        head: dict[str, Any] = {key: template[key] for key in ("id", "object", "created", "model") if key in template}
        return {**head, "choices": choices}
