"""Assistant history for providers that insist on seeing earlier reasoning.

Clients such as Cursor resend the conversation without the ``reasoning_content``
the model produced. DeepSeek (thinking mode), Kimi/Moonshot and GLM reject such
history with a 400 ("reasoning_content ... must be passed back", "reasoning_content
is missing in assistant tool call message"), while an empty string satisfies
them and keeps thinking on. Other providers, OpenAI included, must not receive
the field, so this is opt-in: the provider adapter applies it for deployments
that need it.
"""

from __future__ import annotations

from typing import Any


def backfill_reasoning_content(body: dict[str, Any], *, tool_call_turns_only: bool = False) -> dict[str, Any]:
    """``body`` with ``reasoning_content: ""`` on assistant turns that lack it.

    ``tool_call_turns_only`` limits the fill to assistant turns with tool calls
    (enough for Kimi); DeepSeek wants it on every assistant turn. Existing
    reasoning is never touched; the input body is not mutated.
    """
    messages = body.get("messages")
    if not isinstance(messages, list):
        return body
    changed = False
    filled: list[Any] = []
    for message in messages:
        if (
            isinstance(message, dict)
            and message.get("role") == "assistant"
            and message.get("reasoning_content") is None
            and (message.get("tool_calls") or not tool_call_turns_only)
        ):
            message = {**message, "reasoning_content": ""}
            changed = True
        filled.append(message)
    return {**body, "messages": filled} if changed else body
