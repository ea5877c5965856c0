"""Unwraps ``{"input": "..."}`` tool arguments back into the raw text of a custom tool.

A custom (grammar) tool is offered to providers as a function with one string
parameter ``input``. The client that defined the custom tool expects the raw
text (for ApplyPatch, a patch starting ``*** Begin Patch``), so the output side
takes the JSON wrapper off. In a stream the arguments arrive in arbitrary
fragments, so the JSON string is decoded incrementally: text is released as
soon as it is known, and an escape split across fragments is held back until
it is complete. Arguments that do not start with ``{"input": "`` are collected
and handed over whole at the end.
"""

from __future__ import annotations

from typing import Any

import orjson

_PREFIX_TOKENS = ("{", '"input"', ":", '"')
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_PREFIX, _STRING, _DONE, _RAW = range(4)


def unwrap_custom_arguments(arguments: str) -> str:
    """The raw input inside complete arguments; the arguments themselves if they are no wrapper."""
    try:
        parsed: Any = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(parsed, dict) and isinstance(parsed.get("input"), str):
        return str(parsed["input"])
    return arguments


class CustomInputUnwrapper:
    """Feed argument fragments, get raw-input fragments."""

    __slots__ = ("_escape", "_high_surrogate", "_raw", "_state", "_token", "_token_pos")

    def __init__(self) -> None:
        self._raw: list[str] = []
        self._state = _PREFIX
        self._token = 0
        self._token_pos = 0
        self._escape = ""
        self._high_surrogate = ""

    def feed(self, fragment: str) -> str:
        """The raw text these argument characters complete (may be empty)."""
        if not fragment:
            return ""
        self._raw.append(fragment)
        out: list[str] = []
        for ch in fragment:
            if self._state == _STRING:
                self._string_char(ch, out)
            elif self._state == _PREFIX:
                self._prefix_char(ch)
            else:
                break
        return "".join(out)

    def finish(self) -> str:
        """What is still owed once the arguments are complete.

        Empty when the wrapper was decoded as it streamed; the whole unwrapped
        input (or the arguments verbatim) when the wrapper was not recognised.
        """
        if self._state in (_PREFIX, _RAW):
            self._state = _DONE
            return unwrap_custom_arguments("".join(self._raw))
        self._state = _DONE
        return ""

    def _prefix_char(self, ch: str) -> None:
        token = _PREFIX_TOKENS[self._token]
        if self._token_pos == 0 and ch in " \t\r\n":
            return
        if ch != token[self._token_pos]:
            self._state = _RAW
            return
        self._token_pos += 1
        if self._token_pos == len(token):
            self._token += 1
            self._token_pos = 0
            if self._token == len(_PREFIX_TOKENS):
                self._state = _STRING

    def _string_char(self, ch: str, out: list[str]) -> None:
        if self._escape:
            self._escape += ch
            if self._escape[1] != "u":
                self._emit(_SIMPLE_ESCAPES.get(ch, ch), out)
                self._escape = ""
            elif len(self._escape) == 6:
                hex_digits = self._escape[2:]
                try:
                    decoded = chr(int(hex_digits, 16))
                except ValueError:
                    decoded = self._escape
                self._escape = ""
                self._emit(decoded, out)
            return
        if ch == "\\":
            self._escape = ch
        elif ch == '"':
            self._flush_surrogate(out)
            self._state = _DONE
        else:
            self._emit(ch, out)

    def _emit(self, text: str, out: list[str]) -> None:
        if len(text) == 1 and "\ud800" <= text <= "\udbff":
            self._flush_surrogate(out)
            self._high_surrogate = text
            return
        if self._high_surrogate and len(text) == 1 and "\udc00" <= text <= "\udfff":
            pair = self._high_surrogate + text
            self._high_surrogate = ""
            out.append(pair.encode("utf-16", "surrogatepass").decode("utf-16"))
            return
        self._flush_surrogate(out)
        out.append(text)

    def _flush_surrogate(self, out: list[str]) -> None:
        if self._high_surrogate:
            out.append("\ufffd")  # a lone high surrogate cannot be encoded; replace it as JSON decoders do
            self._high_surrogate = ""
