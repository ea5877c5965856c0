"""OpenAI Chat Completions request → Bedrock Converse request body.

Converse wants strictly alternating user/assistant turns, system text apart,
tool results as ``toolResult`` blocks inside a user turn, and images as raw
bytes (base64 in JSON) with a format name. The OpenAI shape allows
consecutive same-role messages and ``tool`` messages, so turns are merged.
A ``json_schema`` response format becomes ``outputConfig.textFormat`` (the schema
as a JSON string); what Converse cannot do is refused before anything is sent:
several choices and log probabilities (see :mod:`switchboard_translate.chat_params`)
and ``json_object`` (it takes only a schema, see
:mod:`switchboard_translate.response_format`).

Reasoning reaches Claude models only, as their extended thinking in
``additionalModelRequestFields`` (Converse passes model-specific fields through
there), by Claude's own rule (:mod:`switchboard_translate.anthropic.thinking`);
the signed thinking an earlier assistant turn carries in ``thinking_blocks`` (as
the Anthropic translation answers it) goes back as that turn's leading
``reasoningContent`` blocks. Any other model is refused a reasoning request: the
gateway knows no way to ask it to think.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from switchboard_router.providers.openai_shapes import plain_text
from switchboard_translate.anthropic import default_max_tokens_for
from switchboard_translate.anthropic.thinking import claude_thinking_budget, drop_sampling_refused_with_thinking
from switchboard_translate.chat_params import CONVERSE, CONVERSE_CLAUDE, is_claude
from switchboard_translate.errors import InvalidRequest
from switchboard_translate.response_format import JSON_OBJECT_ADVICE, response_format_type


def cache_point() -> dict[str, Any]:
    """Where a client marked a prompt prefix as cacheable (``cache_control`` on a part or message,
    the Anthropic convention carried in OpenAI bodies), Converse wants a cache point block."""
    return {"cachePoint": {"type": "default"}}


_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}


def converse_body(body: dict[str, Any], *, model: str, default_max_tokens: int | None = None) -> dict[str, Any]:
    """The JSON body of a Converse / ConverseStream call to ``model`` (its id goes in the URL).

    ``default_max_tokens`` (else Claude's default for the model) bounds a Claude
    answer that thinks when the request names no output limit: thinking is
    spent from it.
    """
    claude = is_claude(model)
    refusal = (CONVERSE_CLAUDE if claude else CONVERSE).refusal(body)
    if refusal is not None:
        raise refusal
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for message in body.get("messages") or []:
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system += _system_blocks(content)
            system = _with_cache_point(message, system)
        elif role == "user":
            _append_turn(messages, "user", _with_cache_point(message, _user_blocks(content)))
        elif role == "assistant":
            _append_turn(messages, "assistant", _with_cache_point(message, _assistant_blocks(message)))
        elif role == "tool":
            _append_turn(messages, "user", _with_cache_point(message, [_tool_result_block(message)]))
        else:
            raise ValueError(f"unsupported message role {role!r}")

    request: dict[str, Any] = {"messages": messages}
    if system:
        request["system"] = system
    inference = _inference_config(body)
    if inference:
        request["inferenceConfig"] = inference
    tool_config = _tool_config(body, messages)
    if tool_config:
        request["toolConfig"] = tool_config
    output_config = _output_config(body)
    if output_config:
        request["outputConfig"] = output_config
    if claude:
        _claude_thinking(body, request, default_max_tokens or default_max_tokens_for(model))
    return request


def _claude_thinking(body: dict[str, Any], request: dict[str, Any], default_max_tokens: int) -> None:
    """Claude's extended thinking, by the rule the Anthropic translation follows, in ``additionalModelRequestFields``;
    the bound it is spent from is sent as ``maxTokens`` also when the request named none."""
    inference = request.get("inferenceConfig") or {}
    max_tokens = inference.get("maxTokens") or default_max_tokens
    last_assistant: list[dict[str, Any]] = next(
        (m["content"] for m in reversed(request["messages"]) if m["role"] == "assistant"), [])
    budget = claude_thinking_budget(
        body, max_tokens,
        tool_forced=bool({"any", "tool"} & set((request.get("toolConfig") or {}).get("toolChoice") or {})),
        unsigned_tool_turn=any("toolUse" in block for block in last_assistant)
        and "reasoningContent" not in last_assistant[0],
    )
    if budget is None:
        return
    request["additionalModelRequestFields"] = {"thinking": {"type": "enabled", "budget_tokens": budget}}
    inference["maxTokens"] = max_tokens
    drop_sampling_refused_with_thinking(inference, temperature="temperature", top_p="topP")
    request["inferenceConfig"] = inference


def _output_config(body: dict[str, Any]) -> dict[str, Any] | None:
    """Converse's structured output for a ``json_schema`` response format; ``json_object`` is refused."""
    kind = response_format_type(body)
    if kind == "json_object":
        raise InvalidRequest('Bedrock\'s Converse API holds an answer only to a JSON schema, not to response_format '
                             f'{{"type": "json_object"}} (any JSON object): {JSON_OBJECT_ADVICE}', "response_format")
    if kind != "json_schema":
        return None
    spec = body["response_format"].get("json_schema") or {}
    definition: dict[str, Any] = {"schema": orjson.dumps(spec.get("schema") or {"type": "object"}).decode()}
    for key in ("name", "description"):
        if isinstance(spec.get(key), str) and spec[key]:
            definition[key] = spec[key]
    return {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": definition}}}


def _append_turn(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if not blocks:
        return
    if messages and messages[-1]["role"] == role:
        previous = messages[-1]["content"]
        # Tool results must lead a user turn; a user text that follows them goes after.
        results = [b for b in blocks if "toolResult" in b]
        others = [b for b in blocks if "toolResult" not in b]
        lead = [b for b in previous if "toolResult" in b]
        rest = [b for b in previous if "toolResult" not in b]
        messages[-1]["content"] = lead + results + rest + others
    else:
        messages.append({"role": role, "content": blocks})


def _with_cache_point(message: dict[str, Any], blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if blocks and message.get("cache_control") and "cachePoint" not in blocks[-1]:
        return [*blocks, cache_point()]
    return blocks


def _system_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content or []:
        if part.get("type") in ("text", "input_text") and part.get("text"):
            blocks.append({"text": part["text"]})
            if part.get("cache_control"):
                blocks.append(cache_point())
    return blocks


def _user_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content or []:
        kind = part.get("type")
        if kind in ("text", "input_text"):
            if not part.get("text"):
                continue
            blocks.append({"text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url", "") if isinstance(image, dict) else str(image or "")
            blocks.append(_image_block(url))
        else:
            raise ValueError(f"Bedrock does not accept content parts of type {kind!r}")
        if part.get("cache_control"):
            blocks.append(cache_point())
    return blocks


def _image_block(url: str) -> dict[str, Any]:
    if not url.startswith("data:"):
        raise ValueError("Bedrock takes images inline only: send them as data: URLs (base64)")
    header, _, data = url[5:].partition(",")
    mime = header.split(";")[0].lower()
    image_format = _IMAGE_FORMATS.get(mime)
    if image_format is None or not header.endswith(";base64"):
        raise ValueError(f"unsupported image for Bedrock: {mime or 'unknown type'} (use base64 png, jpeg, gif or webp)")
    try:
        base64.b64decode(data, validate=True)
    except binascii.Error as exc:
        raise ValueError("image data URL is not valid base64") from exc
    return {"image": {"format": image_format, "source": {"bytes": data}}}


def _reasoning_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The turn's ``thinking_blocks`` (Anthropic's shape, as answers carry them) as Converse ``reasoningContent``:
    a signed thinking block as ``reasoningText`` with its signature, a redacted one as ``redactedContent``."""
    blocks: list[dict[str, Any]] = []
    for block in message.get("thinking_blocks") or ():
        if not isinstance(block, dict):
            continue
        if block.get("type") == "redacted_thinking" and block.get("data"):
            blocks.append({"reasoningContent": {"redactedContent": block["data"]}})
        elif block.get("type") == "thinking" and (block.get("thinking") or block.get("signature")):
            text: dict[str, Any] = {"text": block.get("thinking") or ""}
            if block.get("signature"):
                text["signature"] = block["signature"]
            blocks.append({"reasoningContent": {"reasoningText": text}})
    return blocks


def _assistant_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = _reasoning_blocks(message)
    text = plain_text(message.get("content"))
    if text:
        blocks.append({"text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        arguments = function.get("arguments") or "{}"
        try:
            tool_input = orjson.loads(arguments)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"tool call {call.get('id')!r} has arguments that are not JSON") from exc
        blocks.append(
            {"toolUse": {"toolUseId": call.get("id", ""), "name": function.get("name", ""), "input": tool_input}}
        )
    return blocks


def _tool_result_block(message: dict[str, Any]) -> dict[str, Any]:
    text = plain_text(message.get("content"))
    return {
        "toolResult": {
            "toolUseId": message.get("tool_call_id", ""),
            # Converse rejects blank text blocks.
            "content": [{"text": text if text.strip() else "(empty)"}],
        }
    }


def _inference_config(body: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        config["maxTokens"] = int(max_tokens)
    if body.get("temperature") is not None:
        config["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        config["topP"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    return config


def _tool_config(body: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    tools = [t for t in body.get("tools") or [] if t.get("type", "function") == "function"]
    choice = body.get("tool_choice")
    history_uses_tools = any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])
    if not tools or (choice == "none" and not history_uses_tools):
        # Converse has no "none" choice; without tools the model cannot call one.
        return None
    specs = []
    for tool in tools:
        function = tool.get("function") or {}
        spec: dict[str, Any] = {
            "name": function["name"],
            "inputSchema": {"json": function.get("parameters") or {"type": "object", "properties": {}}},
        }
        if function.get("description"):
            spec["description"] = function["description"]
        specs.append({"toolSpec": spec})
        if tool.get("cache_control"):
            specs.append(cache_point())
    config: dict[str, Any] = {"tools": specs}
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        config["toolChoice"] = {"tool": {"name": choice["function"]["name"]}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    return config
