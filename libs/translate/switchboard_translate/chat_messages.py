"""Chat messages as every provider adapter can take them.

Clients resend history in shapes a strict provider rejects: Responses-style
content parts (``input_text``, ``output_text``, ``input_image``) inside chat
messages, Anthropic ``tool_use`` / ``tool_result`` blocks, assistant turns whose
``content`` is null with no tool call, ``developer`` roles. This module turns
them into plain Chat Completions messages:

- user content stays a list of parts (text, image_url, file, input_audio);
- system, assistant and tool content become one string;
- ``tool_use`` blocks become the assistant's ``tool_calls`` and ``tool_result``
  blocks become ``role: tool`` messages, ids kept one to one;
- an assistant turn with neither text nor tool calls is dropped;
- ``developer`` becomes ``system`` (every provider knows ``system``);
- ``cache_control`` marks (prompt-cache breakpoints, the Anthropic convention
  OpenAI-dialect clients use) are kept: on user parts where they were, and on
  the message itself where its content becomes one string or one tool result.
"""

from __future__ import annotations

from typing import Any

import orjson

from .errors import InvalidRequest

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_TEXT_PARTS = frozenset({"text", "input_text", "output_text"})


def dumps(value: object) -> str:
    """Compact JSON text, as models write tool arguments."""
    return orjson.dumps(value).decode()


def cache_mark(item: object) -> Any:
    """The ``cache_control`` mark of a part, block, tool or message (None when unmarked)."""
    return item.get("cache_control") if isinstance(item, dict) else None


def last_cache_mark(items: object) -> Any:
    """The mark of the last marked item of a list (what a message whose parts are joined carries)."""
    marks = [mark for mark in map(cache_mark, items) if mark] if isinstance(items, list) else []
    return marks[-1] if marks else None


def content_part(part: object, where: str) -> dict[str, Any] | None:
    """One content part in the chat shape; None for parts that carry nothing for the model."""
    converted = _content_part(part, where)
    mark = cache_mark(part)
    if converted is not None and mark and "cache_control" not in converted:
        converted["cache_control"] = mark
    return converted


def _content_part(part: object, where: str) -> dict[str, Any] | None:
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, dict):
        raise InvalidRequest(f'\'{where}\' must be a content part object such as {{"type": "text"}}.', where)
    kind = part.get("type")
    if kind in _TEXT_PARTS:
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidRequest(f"'{where}.text' must be a string.", where + ".text")
        return {"type": "text", "text": text}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal", ""))}
    if kind == "image_url":
        image = part.get("image_url")
        if isinstance(image, str):
            image = {"url": image}
        if not isinstance(image, dict) or not isinstance(image.get("url"), str):
            raise InvalidRequest(f"'{where}.image_url.url' must be the image URL or data URL.", where + ".image_url")
        return {"type": "image_url", "image_url": image}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise InvalidRequest(
                f"'{where}.image_url' is required: send the image as a URL or data URL (file_id is not supported).",
                where + ".image_url",
            )
        given: dict[str, Any] = {"url": url}
        if part.get("detail") in ("low", "high", "auto"):
            given["detail"] = part["detail"]
        return {"type": "image_url", "image_url": given}
    if kind == "image":
        return {"type": "image_url", "image_url": {"url": _anthropic_image_url(part, where)}}
    if kind == "input_file":
        file: dict[str, Any] = {
            k: part[k] for k in ("file_data", "file_id", "filename") if isinstance(part.get(k), str)
        }
        if not file:
            raise InvalidRequest(f"'{where}' must carry file_data (base64) or file_id.", where)
        return {"type": "file", "file": file}
    if kind in ("file", "input_audio"):
        return dict(part)
    if kind in ("thinking", "redacted_thinking", "reasoning"):
        return None
    raise InvalidRequest(
        f"'{where}.type' is '{kind}'; supported content parts are text, image_url, input_text, output_text, "
        "input_image, input_file and Anthropic text/image/tool_use/tool_result blocks.",
        where + ".type",
    )


def _anthropic_image_url(part: dict[str, Any], where: str) -> str:
    source = part.get("source")
    if isinstance(source, dict):
        if source.get("type") == "base64" and isinstance(source.get("data"), str):
            return f"data:{source.get('media_type', 'image/png')};base64,{source['data']}"
        if source.get("type") == "url" and isinstance(source.get("url"), str):
            return str(source["url"])
    raise InvalidRequest(f"'{where}.source' must be a base64 or url image source.", where + ".source")


def parts_text(parts: list[dict[str, Any]]) -> str:
    """The text of chat parts joined, for roles whose content must be a string."""
    return "\n\n".join(p["text"] for p in parts if p.get("type") == "text")


def convert_parts(content: list[Any], where: str) -> list[dict[str, Any]]:
    parts = []
    for j, raw in enumerate(content):
        part = content_part(raw, f"{where}[{j}]")
        if part is not None:
            parts.append(part)
    return parts


def tool_result_text(content: object, where: str) -> str:
    """A tool's output as the string a ``role: tool`` message carries."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for j, raw in enumerate(content):
            if isinstance(raw, dict) and raw.get("type") not in _TEXT_PARTS and raw.get("type") != "refusal":
                continue  # images and files cannot ride in a chat tool message
            part = content_part(raw, f"{where}[{j}]")
            if part is not None:
                texts.append(part["text"])
        return "\n\n".join(texts)
    return dumps(content)


#: Key of a canonical tool message holding its images and files until :func:`place_tool_media` moves them.
_MEDIA = "_media"


def with_tool_media(tool_message: dict[str, Any], content: object, where: str) -> dict[str, Any]:
    """``tool_message`` with the images and files of the tool's ``content`` kept aside: a chat tool message
    carries only text, so :func:`place_tool_media` puts them in a user message right after the tool results
    (as an Anthropic tool_result's images are carried), instead of dropping them."""
    if isinstance(content, list):
        media = []
        for j, raw in enumerate(content):
            if isinstance(raw, dict) and raw.get("type") not in _TEXT_PARTS and raw.get("type") != "refusal":
                part = content_part(raw, f"{where}[{j}]")
                if part is not None and part.get("type") != "text":
                    media.append(part)
        if media:
            tool_message[_MEDIA] = media
    return tool_message


def place_tool_media(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Moves the media kept aside on tool messages into one user message after each run of tool messages (a
    user message between two results of one assistant turn would break the turn); in place, and returned."""
    i = 0
    while i < len(messages):
        if messages[i].get("role") != "tool":
            i += 1
            continue
        end = i
        while end < len(messages) and messages[end].get("role") == "tool":
            end += 1
        media = [part for message in messages[i:end] for part in message.pop(_MEDIA, ())]
        if media:
            messages.insert(end, {"role": "user", "content": media})
            end += 1
        i = end
    return messages


def normalize_tool_call(call: object, where: str) -> dict[str, Any]:
    """An assistant tool call with ``type: function``, a name and string arguments."""
    if not isinstance(call, dict):
        raise InvalidRequest(f"'{where}' must be a tool call object.", where)
    call_id = call.get("id")
    if call.get("type") == "custom" and isinstance(call.get("custom"), dict):
        custom = call["custom"]
        return {
            "id": call_id,
            "type": "function",
            "function": {"name": custom.get("name"), "arguments": dumps({"input": custom.get("input", "")})},
        }
    function = call.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(f"'{where}.function.name' is required in an assistant tool call.", where + ".function")
    arguments = function.get("arguments", "")
    if not isinstance(arguments, str):
        arguments = dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": function["name"], "arguments": arguments}}


def normalize_messages(raw: object, param: str = "messages") -> tuple[list[dict[str, Any]], bool]:
    """Chat messages in the canonical shape, and whether Anthropic blocks were seen."""
    if not isinstance(raw, list):
        raise InvalidRequest(f"'{param}' must be an array of message objects.", param)
    out: list[dict[str, Any]] = []
    saw_blocks = False
    for i, message in enumerate(raw):
        saw_blocks |= append_message(message, f"{param}[{i}]", out)
    return place_tool_media(out), saw_blocks


def append_message(message: object, where: str, out: list[dict[str, Any]]) -> bool:
    """Appends the canonical form of one message (zero, one or more messages) to ``out``.

    Returns whether the message carried Anthropic tool blocks.
    """
    if not isinstance(message, dict):
        raise InvalidRequest(f"'{where}' must be an object with 'role' and 'content'.", where)
    role = message.get("role")
    if role not in _ROLES:
        raise InvalidRequest(
            f"'{where}.role' is {role!r}; use one of system, developer, user, assistant, tool.", where + ".role"
        )
    content = message.get("content")
    saw_blocks = isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") in ("tool_use", "tool_result") for b in content
    )
    if role == "assistant":
        _assistant(message, where, out)
    elif role == "user":
        _user(message, where, out)
    else:
        _plain(message, "system" if role == "developer" else role, where, out)
    return saw_blocks


def _assistant(message: dict[str, Any], where: str, out: list[dict[str, Any]]) -> None:
    result = {k: v for k, v in message.items() if k not in ("content", "tool_calls")}
    raw_calls = message.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raise InvalidRequest(f"'{where}.tool_calls' must be an array of tool calls.", where + ".tool_calls")
    calls = [normalize_tool_call(c, f"{where}.tool_calls[{j}]") for j, c in enumerate(raw_calls)]
    content = message.get("content")
    text: str | None
    if content is None or isinstance(content, str):
        text = content
    elif isinstance(content, list):
        texts: list[str] = []
        thinking: list[str] = []
        for j, block in enumerate(content):
            block_where = f"{where}.content[{j}]"
            if isinstance(block, dict) and block.get("type") == "tool_use":
                calls.append(_tool_use_call(block, block_where))
            elif isinstance(block, dict) and block.get("type") == "thinking":
                thinking.append(str(block.get("thinking", "")))
            else:
                part = content_part(block, block_where)
                if part is not None and part["type"] == "text":
                    texts.append(part["text"])
        text = "\n\n".join(texts) if texts else None
        if thinking and "reasoning_content" not in result:
            result["reasoning_content"] = "\n\n".join(thinking)
    else:
        raise InvalidRequest(f"'{where}.content' must be a string, an array of parts, or null.", where + ".content")
    if not text and not calls and not message.get("function_call"):
        return  # an empty assistant turn carries nothing and strict providers reject it
    _keep_mark(result, content)
    result["content"] = text if text else None
    if calls:
        result["tool_calls"] = calls
    out.append(result)


def _tool_use_call(block: dict[str, Any], where: str) -> dict[str, Any]:
    call_id, name = block.get("id"), block.get("name")
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise InvalidRequest(f"'{where}' (tool_use) needs string 'id' and 'name'.", where)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": dumps(block.get("input", {}))}}


def _user(message: dict[str, Any], where: str, out: list[dict[str, Any]]) -> None:
    content = message.get("content")
    if isinstance(content, str):
        out.append(dict(message))
        return
    if not isinstance(content, list):
        raise InvalidRequest(f"'{where}.content' must be a string or an array of content parts.", where + ".content")
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        block_where = f"{where}.content[{j}]"
        if isinstance(block, dict) and block.get("type") == "tool_result":
            # Tool results must follow the assistant's calls directly, before any new user text.
            call_id = block.get("tool_use_id")
            if not isinstance(call_id, str):
                raise InvalidRequest(f"'{block_where}.tool_use_id' is required.", block_where + ".tool_use_id")
            text = tool_result_text(block.get("content"), block_where + ".content")
            tool_message: dict[str, Any] = with_tool_media({"role": "tool", "tool_call_id": call_id, "content": text},
                                                           block.get("content"), block_where + ".content")
            mark = cache_mark(block) or last_cache_mark(block.get("content"))
            if mark:
                tool_message["cache_control"] = mark
            out.append(tool_message)
            continue
        part = content_part(block, block_where)
        if part is not None:
            parts.append(part)
    if parts:
        result = {k: v for k, v in message.items() if k != "content"}
        result["content"] = parts
        out.append(result)


def _plain(message: dict[str, Any], role: str, where: str, out: list[dict[str, Any]]) -> None:
    content = message.get("content")
    result = dict(message)
    result["role"] = role
    if content is None:
        result["content"] = ""
    elif isinstance(content, list):
        if role == "tool":
            result["content"] = tool_result_text(content, where + ".content")
            with_tool_media(result, content, where + ".content")
        else:
            result["content"] = parts_text(convert_parts(content, where + ".content"))
        _keep_mark(result, content)
    elif not isinstance(content, str):
        raise InvalidRequest(f"'{where}.content' must be a string or an array of text parts.", where + ".content")
    out.append(result)


def _keep_mark(message: dict[str, Any], joined: object) -> None:
    """A message whose parts were joined into one string keeps the last part's cache mark on itself."""
    mark = last_cache_mark(joined) if isinstance(joined, list) else None
    if mark and not message.get("cache_control"):
        message["cache_control"] = mark
