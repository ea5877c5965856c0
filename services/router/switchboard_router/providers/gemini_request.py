"""OpenAI Chat Completions request → Gemini ``generateContent`` request body.

The differences that matter: Gemini names the roles ``user`` and ``model``,
keeps system text apart (``systemInstruction``), identifies a function result
by the function's NAME rather than a call id (so ids are mapped back to names
from the assistant turn that made the call), wants tool schemas in its own
OpenAPI subset, and puts sampling settings in ``generationConfig``: among
them log probabilities (``responseLogprobs``, ``logprobs``: the top alternatives)
and the thinking budget (:mod:`switchboard_router.providers.gemini_thinking`). Several
choices, and thinking on a model that cannot think, are refused (see
:mod:`switchboard_translate.chat_params`).
"""

from __future__ import annotations

import mimetypes
from typing import Any

import orjson

from switchboard_router.providers.gemini_schema import to_gemini_schema
from switchboard_router.providers.gemini_thinking import thinking_config
from switchboard_router.providers.openai_shapes import plain_text
from switchboard_translate.allowed_tools import offered_tools
from switchboard_translate.chat_params import param_support
from switchboard_translate.logprobs import requested_logprobs
from switchboard_translate.reasoning_replay import call_signature

#: Gemini 3 rejects a replayed function call without its thought signature; this documented
#: placeholder lets histories that did not come from Gemini (or lost the signature) through.
SKIP_SIGNATURE = "skip_thought_signature_validator"

_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


def generate_content_body(body: dict[str, Any], *, model: str) -> dict[str, Any]:
    """The JSON body of a generateContent / streamGenerateContent call."""
    return generate_content_marked(body, model=model)[0]


def generate_content_marked(body: dict[str, Any], *, model: str) -> tuple[dict[str, Any], int | None]:
    """The generateContent body, and how many of its ``contents`` the client marked for caching: the
    contents up to its last ``cache_control`` mark (0: only the system instruction or tools are marked;
    None: no mark). A marked message merged with the unmarked one after it (a tool result and the user's
    text, both ``user`` to Gemini) ends the marked contents before it."""
    refusal = param_support("gemini", model).refusal(body)
    if refusal is not None:
        raise refusal
    system_parts: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    #: OpenAI tool call id → function name, filled from assistant turns as they are read.
    call_names: dict[str, str] = {}
    needs_signature = model.split("/")[-1].startswith("gemini-3")
    #: (contents, parts of the last content) right after the last marked message; None: none marked.
    marked: tuple[int, int] | None = (0, 0) if any(_is_marked(t) for t in body.get("tools") or ()) else None
    for message in body.get("messages") or []:
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            text = plain_text(content)
            if text:
                system_parts.append({"text": text})
        elif role == "user":
            _append(contents, "user", _user_parts(content))
        elif role == "assistant":
            _append(contents, "model", _model_parts(message, call_names, needs_signature))
        elif role == "tool":
            _append(contents, "user", [_function_response(message, call_names)])
        else:
            raise ValueError(f"unsupported message role {role!r}")
        if _is_marked(message):
            marked = (len(contents), len(contents[-1]["parts"]) if contents else 0)
    marked_contents = None
    if marked is not None:
        count, parts = marked
        marked_contents = count - 1 if count and len(contents[count - 1]["parts"]) > parts else count

    request: dict[str, Any] = {"contents": contents}
    if system_parts:
        request["systemInstruction"] = {"parts": system_parts}
    # An allowed_tools choice sends only the allowed functions: Gemini names callable ones only in ANY mode.
    offered, choice = offered_tools(body)
    tools = _function_declarations(offered)
    if tools:
        request["tools"] = [{"functionDeclarations": tools}]
        tool_config = _tool_config(choice)
        if tool_config:
            request["toolConfig"] = tool_config
    generation = _generation_config(body, model)
    if generation:
        request["generationConfig"] = generation
    return request, marked_contents


def _is_marked(item: Any) -> bool:
    """Whether a message (or one of its parts) or a tool carries a ``cache_control`` mark."""
    if not isinstance(item, dict):
        return False
    if item.get("cache_control"):
        return True
    content = item.get("content")
    return isinstance(content, list) and any(isinstance(p, dict) and p.get("cache_control") for p in content)


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _user_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content or []:
        kind = part.get("type")
        if kind in ("text", "input_text"):
            if part.get("text"):
                parts.append({"text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url")
            parts.append(_media_part(image.get("url", "") if isinstance(image, dict) else str(image or "")))
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            parts.append(
                {"inlineData": {"mimeType": f"audio/{audio.get('format', 'wav')}", "data": audio.get("data", "")}}
            )
        elif kind == "file":
            file = part.get("file") or {}
            file_id = file.get("file_id") or ""
            if not file.get("file_data") and file_id and not _is_uri(file_id):
                raise ValueError(f"the file id {file_id!r} names a file stored elsewhere (an OpenAI file id), "
                                 "which Gemini cannot read: send the file's bytes as file_data (a base64 data: "
                                 "URL), or a gs:// or Gemini Files API URI")
            parts.append(_media_part(file.get("file_data") or file_id))
        else:
            raise ValueError(f"Gemini does not accept content parts of type {kind!r}")
    return parts


def _is_uri(reference: str) -> bool:
    """Whether a file reference is one Gemini can fetch: a URL (gs://, https://) or a Files API name."""
    return "://" in reference or reference.startswith("files/")


def _media_part(url: str) -> dict[str, Any]:
    """A data: URL becomes inline bytes; anything else is passed by reference (gs://, https://, Files API)."""
    if url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        if not header.endswith(";base64"):
            raise ValueError("data: URLs sent to Gemini must be base64 encoded")
        return {"inlineData": {"mimeType": header.split(";")[0] or "application/octet-stream", "data": data}}
    if not url:
        raise ValueError("media part without a URL")
    mime, _ = mimetypes.guess_type(url.split("?")[0])
    return {"fileData": {"mimeType": mime or "image/jpeg", "fileUri": url}}


def _model_parts(message: dict[str, Any], call_names: dict[str, str], needs_signature: bool) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    text = plain_text(message.get("content"))
    if text:
        parts.append({"text": text})
    for position, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        name = function.get("name", "")
        call_names[call.get("id", "")] = name
        try:
            args = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"tool call {call.get('id')!r} has arguments that are not JSON") from exc
        part: dict[str, Any] = {"functionCall": {"name": name, "args": args if isinstance(args, dict) else {}}}
        signature = call_signature(call)
        if signature:
            part["thoughtSignature"] = signature
        elif needs_signature and position == 0:
            part["thoughtSignature"] = SKIP_SIGNATURE
        parts.append(part)
    return parts


def _function_response(message: dict[str, Any], call_names: dict[str, str]) -> dict[str, Any]:
    call_id = message.get("tool_call_id", "")
    name = call_names.get(call_id) or message.get("name")
    if not name:
        raise ValueError(f"tool message answers call {call_id!r}, which no earlier assistant message made")
    text = plain_text(message.get("content"))
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = text
    # Gemini wants an object; a bare value is wrapped.
    response = parsed if isinstance(parsed, dict) else {"result": parsed}
    return {"functionResponse": {"name": name, "response": response}}


def _function_declarations(tools: list[Any]) -> list[dict[str, Any]]:
    declarations = []
    for tool in tools:
        if tool.get("type", "function") != "function":
            continue
        function = tool.get("function") or {}
        declaration: dict[str, Any] = {"name": function["name"]}
        if function.get("description"):
            declaration["description"] = function["description"]
        parameters = function.get("parameters")
        # Gemini rejects an OBJECT schema without properties: a function without parameters omits them.
        if parameters and parameters.get("properties"):
            declaration["parameters"] = to_gemini_schema(parameters)
        declarations.append(declaration)
    return declarations


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if isinstance(choice, str) and choice in _TOOL_MODES:
        return {"functionCallingConfig": {"mode": _TOOL_MODES[choice]}}
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    return None


def _generation_config(body: dict[str, Any], model: str) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for source, target in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("seed", "seed"),
    ):
        if body.get(source) is not None:
            config[target] = body[source]
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        config["maxOutputTokens"] = int(max_tokens)
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_object":
        config["responseMimeType"] = "application/json"
    elif response_format.get("type") == "json_schema":
        config["responseMimeType"] = "application/json"
        schema = (response_format.get("json_schema") or {}).get("schema")
        if schema:
            config["responseSchema"] = to_gemini_schema(schema)
    top_logprobs = requested_logprobs(body)
    if top_logprobs is not None:
        config["responseLogprobs"] = True
        if top_logprobs:
            config["logprobs"] = top_logprobs
    thinking = thinking_config(body, model, config.get("maxOutputTokens"))
    if thinking is not None:
        config["thinkingConfig"] = thinking
    return config
