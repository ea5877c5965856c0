"""The fields of a completion body every door checks the same way: the facade for HTTP callers, the router
for internal services that call it directly over gRPC.

A field out of its range is the caller's mistake and gets a 400 naming it —
never a provider error, and never a crash deep in a translation. The output
bounds' range keeps the most a request may cost (what budgets hold) a number.
"""

from __future__ import annotations

from typing import Any

import orjson

#: Output bounds a client may set.
OUTPUT_BOUNDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
#: Their largest accepted value: large enough for any model.
MAX_OUTPUT_TOKENS = 2**31 - 1


class FieldError(ValueError):
    """A field the caller got wrong: its message, the field (``param``) and a machine-readable code."""

    def __init__(self, message: str, param: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def check_common_fields(body: dict[str, Any]) -> None:
    """Raises :class:`FieldError` when an output bound is not a whole number from 1 to :data:`MAX_OUTPUT_TOKENS`,
    when the model's name holds a NUL character (it is recorded with the request's usage), or when
    ``stream_options`` is not an object."""
    model = body.get("model")
    if isinstance(model, str) and "\x00" in model:
        raise FieldError("'model' must not contain NUL (\\u0000) characters.", "model", "invalid_text")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise FieldError("'stream_options' must be an object such as {\"include_usage\": true}.", "stream_options",
                         "invalid_type")
    for name in OUTPUT_BOUNDS:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_OUTPUT_TOKENS:
            raise FieldError(f"'{name}' must be a whole number from 1 to {MAX_OUTPUT_TOKENS} "
                             f"(got {_shown(value)}).", name, "invalid_value")


def usage_asked(body: dict[str, Any]) -> bool:
    """Whether a chat body asks for a stream's usage chunk (``stream_options.include_usage``): the router relays
    the provider's usage chunk, and the facade sends the billed one before the error of a broken stream, on it."""
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


def check_chat_messages(body: dict[str, Any]) -> None:
    """Raises :class:`FieldError` unless ``messages`` is a non-empty list of objects (a chat completion's)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise FieldError("'messages' must be a non-empty array of message objects such as "
                         "{\"role\": \"user\", \"content\": \"hi\"}.", "messages", "invalid_type")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise FieldError(f"'messages[{i}]' must be an object with a role and content.", f"messages[{i}]",
                             "invalid_type")


def _shown(value: Any) -> str:
    text = orjson.dumps(value).decode() if isinstance(value, (int, float, str, bool)) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."
