"""Put the original values back into a whole (non-streamed) completion.

Only tokens the vault issued are replaced; any other ``[[...]]`` text, including a
placeholder-shaped token the user wrote themselves, is left exactly as the model produced it.
Inside tool-call arguments (JSON text) the original is inserted JSON-escaped, so the arguments
stay valid JSON whatever characters the original holds (quotes, backslashes, newlines of a key).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from switchboard_router.privacy.placeholders import PLACEHOLDER_RE

Vault = Mapping[str, str]


def json_escape(value: str) -> str:
    """``value`` as it must appear between the quotes of a JSON string."""
    return json.dumps(value, ensure_ascii=False)[1:-1]


def restore_text(text: str, vault: Vault) -> str:
    """Replace every vault placeholder in plain text by its original value."""
    if not vault or "[[" not in text:
        return text
    return PLACEHOLDER_RE.sub(lambda match: vault.get(match.group(), match.group()), text)


def restore_json_text(text: str, vault: Vault) -> str:
    """Replace vault placeholders inside JSON text, inserting the originals JSON-escaped."""
    if not vault or "[[" not in text:
        return text

    def replace(match: Any) -> str:
        original = vault.get(match.group())
        return match.group() if original is None else json_escape(original)

    return PLACEHOLDER_RE.sub(replace, text)


def _restore_call(call: Any, vault: Vault) -> Any:
    if not isinstance(call, dict):
        return call
    function = call.get("function") if "function" in call else call
    if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
        return call
    new_function = {**function, "arguments": restore_json_text(function["arguments"], vault)}
    return {**call, "function": new_function} if "function" in call else new_function


def _restore_content(content: Any, vault: Vault) -> Any:
    if isinstance(content, str):
        return restore_text(content, vault)
    if isinstance(content, list):
        return [
            {**part, "text": restore_text(part["text"], vault)}
            if isinstance(part, dict) and isinstance(part.get("text"), str)
            else part
            for part in content
        ]
    return content


def restore_message(message: Any, vault: Vault) -> Any:
    """A copy of an assistant message (or a stream delta) with originals restored."""
    if not isinstance(message, dict) or not vault:
        return message
    restored = dict(message)
    if "content" in restored:
        restored["content"] = _restore_content(restored["content"], vault)
    for field in ("refusal", "reasoning_content"):
        if isinstance(restored.get(field), str):
            restored[field] = restore_text(restored[field], vault)
    if isinstance(restored.get("tool_calls"), list):
        restored["tool_calls"] = [_restore_call(call, vault) for call in restored["tool_calls"]]
    if isinstance(restored.get("function_call"), dict):
        restored["function_call"] = _restore_call(restored["function_call"], vault)
    return restored


def restore_completion(completion: dict[str, Any], vault: Vault) -> dict[str, Any]:
    """A copy of an OpenAI chat completion (or legacy text completion) with every vault placeholder restored;
    input untouched."""
    choices = completion.get("choices")
    if not vault or not isinstance(choices, list):
        return completion
    new_choices = []
    for choice in choices:
        if isinstance(choice, dict) and isinstance(choice.get("message"), dict):
            choice = {**choice, "message": restore_message(choice["message"], vault)}
        elif isinstance(choice, dict) and isinstance(choice.get("text"), str):
            choice = {**choice, "text": restore_text(choice["text"], vault)}
        new_choices.append(choice)
    return {**completion, "choices": new_choices}
