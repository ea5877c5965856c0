"""Chat Completions stream chunks, as Responses API streaming events.

Feed ``chat.completion.chunk`` dicts in arrival order; get ``(event_name,
payload)`` pairs to frame as ``event: <name>\\ndata: <json>``. The event order
follows OpenAI's: ``response.created`` and ``response.in_progress`` first; for
each output item ``response.output_item.added``, its content part, the deltas,
the ``.done`` events and ``response.output_item.done``; finally
``response.completed`` (or ``response.incomplete`` when the model ran out of
tokens) with the full response and its usage. Every event carries a
``sequence_number`` that starts at 0 and grows by one.

Chat streams can interleave nothing within one item but may switch between
reasoning, text and tool calls; each switch closes the open item and opens the
next, so items never overlap, as in OpenAI's own streams.

Reasoning streams as ``reasoning_text`` content, or, when the request asked for
a summary (``reasoning.summary``), as the item's summary: its first text opens
``response.reasoning_summary_part.added``, then come
``response.reasoning_summary_text.delta`` events, and at the end
``response.reasoning_summary_text.done`` and ``response.reasoning_summary_part.done``,
in OpenAI's order. Claude's signatures (``thinking_blocks`` deltas) are gathered
into the finished item's ``encrypted_content``. A tool call carrying Gemini's
thought signature is preceded by a reasoning item of its own (added and done at
once) whose ``encrypted_content`` carries it: the signature comes with the
call, after any thinking item has closed.

Log probabilities (when the request asked for them) come with the text they
belong to: each ``response.output_text.delta`` carries its tokens', and
``response.output_text.done``, the finished part and the finished item carry
the whole text's (:mod:`.responses_logprobs`).

A stream that fails (:meth:`ChatChunksToResponseEvents.fail`) ends with
``response.failed`` whose response holds the output produced so far: finished
items as they were sent, the item still open marked ``incomplete`` with its
text or arguments so far.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .custom_input import CustomInputUnwrapper
from .reasoning_replay import call_signature
from .responses_api import (
    custom_tool_names,
    message_item,
    new_item_id,
    output_text_part,
    reasoning_item,
    refusal_item,
    response_envelope,
    responses_usage,
    status_for_finish,
    summary_text_part,
    tool_call_item,
    wants_summary,
)
from .responses_logprobs import chat_logprobs, delta_logprobs

Event = tuple[str, dict[str, Any]]
_REASONING, _TEXT, _REFUSAL = "reasoning", "text", "refusal"
_DELTA_EVENT = {
    _REASONING: "response.reasoning_text.delta",
    _TEXT: "response.output_text.delta",
    _REFUSAL: "response.refusal.delta",
}


def _part(kind: str, text: str, logprobs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The content part of an item of this kind holding ``text`` (and the chat ``logprobs`` of its tokens)."""
    if kind == _REASONING:
        return {"type": "reasoning_text", "text": text}
    if kind == _REFUSAL:
        return {"type": "refusal", "refusal": text}
    return output_text_part(text, logprobs)


@dataclass(slots=True)
class _TextItem:
    """An open reasoning, text or refusal item and the text streamed into it so far."""

    output_index: int
    item_id: str
    kind: str
    parts: list[str] = field(default_factory=list)
    #: Reasoning: the signed thinking blocks so far, and the thinking text no signature covers yet.
    blocks: list[dict[str, Any]] = field(default_factory=list)
    unsigned: list[str] = field(default_factory=list)
    #: Reasoning as a summary: its summary part was opened (with its first text).
    summary_open: bool = False
    #: Text: the chat ``logprobs.content`` entries of its tokens so far.
    logprobs: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _CallItem:
    output_index: int
    item_id: str
    call_id: str
    name: str
    custom: bool
    unwrapper: CustomInputUnwrapper | None
    parts: list[str] = field(default_factory=list)
    closed: bool = False


class ChatChunksToResponseEvents:
    """Translates one chat completion stream into one Responses event stream."""

    def __init__(
        self,
        request: dict[str, Any],
        *,
        response_id: str | None = None,
        created_at: int | None = None,
    ) -> None:
        self._request = request
        self._custom_tools = custom_tool_names(request)
        #: The request asked for a reasoning summary: reasoning streams as one.
        self._summary = wants_summary(request)
        self._response_id = response_id or new_item_id("resp")
        self._created_at = created_at if created_at is not None else int(time.time())
        self._seq = 0
        self._started = False
        self._finished = False
        self._output: list[dict[str, Any] | None] = []
        self._text: _TextItem | None = None
        self._calls: dict[int, _CallItem] = {}
        self._open_call: _CallItem | None = None
        self._usage: dict[str, Any] | None = None
        self._finish_reason: object = None
        #: Whether the response ends incomplete, so that the text item open at the end is marked so too.
        self._cut = False

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        """Events for one chat chunk (possibly none)."""
        events: list[Event] = []
        if self._finished:
            return events
        if not self._started:
            self._start(events)
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # the Responses API has a single output sequence
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                self._text_delta(reasoning, kind=_REASONING, events=events)
            if isinstance(delta.get("thinking_blocks"), list):
                self._thinking_blocks(delta["thinking_blocks"], not reasoning, events)
            content = delta.get("content")
            if isinstance(content, str) and content:
                self._text_delta(content, kind=_TEXT, events=events, logprobs=chat_logprobs(choice))
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:
                self._text_delta(refusal, kind=_REFUSAL, events=events)
            for position, call in enumerate(delta.get("tool_calls") or []):
                if isinstance(call, dict):
                    self._call_delta(call, position, events)
            if choice.get("finish_reason") is not None:
                self._finish_reason = choice["finish_reason"]
        return events

    def finish(self) -> list[Event]:
        """Closes every open item and ends with ``response.completed`` (or ``.incomplete``)."""
        events: list[Event] = []
        if self._finished:
            return events
        if not self._started:
            self._start(events)
        status, reason = status_for_finish(self._finish_reason)
        self._cut = status == "incomplete"  # the text still open is the text the limit cut
        self._close_text(events)
        self._close_open_call(events)
        self._finished = True
        response = self._envelope(status, usage=responses_usage(self._usage), incomplete_reason=reason)
        self._emit(events, "response.completed" if status == "completed" else "response.incomplete", response=response)
        return events

    def fail(self, message: str, code: str = "server_error") -> list[Event]:
        """Ends the stream with ``response.failed`` (the provider failed mid-stream).

        Its response carries the output produced so far: the item still open is
        there too, ``incomplete``, with what it had received; nothing is closed
        with ``.done`` events, since it did not finish.
        """
        events: list[Event] = []
        if self._finished:
            return events
        if not self._started:
            self._start(events)
        self._finished = True
        response = self._envelope(
            "failed", usage=responses_usage(self._usage), error={"code": code, "message": message}, partial=True
        )
        self._emit(events, "response.failed", response=response)
        return events

    # -- items ---------------------------------------------------------------------------------

    def _start(self, events: list[Event]) -> None:
        self._started = True
        self._emit(events, "response.created", response=self._envelope("in_progress"))
        self._emit(events, "response.in_progress", response=self._envelope("in_progress"))

    def _text_item(self, kind: str, events: list[Event]) -> _TextItem:
        """The open item of ``kind``, opened now (closing any other open item) if there is none."""
        if self._text is not None and self._text.kind != kind:
            self._close_text(events)
        if self._text is None:
            self._close_open_call(events)
            self._open_text(kind, events)
        assert self._text is not None
        return self._text

    def _text_delta(
        self, text: str, *, kind: str, events: list[Event], logprobs: list[dict[str, Any]] | None = None
    ) -> None:
        item = self._text_item(kind, events)
        item.parts.append(text)
        if kind == _REASONING:
            item.unsigned.append(text)
            if self._summary:
                self._summary_delta(item, text, events)
                return
        extra: dict[str, Any] = {}
        if kind == _TEXT:
            item.logprobs.extend(logprobs or ())
            extra["logprobs"] = delta_logprobs(logprobs or [])
        self._emit(
            events,
            _DELTA_EVENT[kind],
            item_id=item.item_id,
            output_index=item.output_index,
            content_index=0,
            delta=text,
            **extra,
        )

    def _summary_delta(self, item: _TextItem, text: str, events: list[Event]) -> None:
        """Reasoning text as summary text; the summary's one part opens with its first text."""
        where = {"item_id": item.item_id, "output_index": item.output_index, "summary_index": 0}
        if not item.summary_open:
            item.summary_open = True
            self._emit(events, "response.reasoning_summary_part.added", **where, part=summary_text_part(""))
        self._emit(events, "response.reasoning_summary_text.delta", **where, delta=text)

    def _thinking_blocks(self, blocks: list[Any], with_text: bool, events: list[Event]) -> None:
        """Signatures and redacted blocks of a ``thinking_blocks`` delta, gathered on the reasoning item.

        A signature closes the thinking block whose text came before it; with
        ``with_text`` (no ``reasoning_content`` in the same delta) a block's own
        text is streamed as reasoning too.
        """
        for block in blocks:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "thinking":
                text = block.get("thinking")
                text = text if isinstance(text, str) else ""
                if with_text and text:
                    self._text_delta(text, kind=_REASONING, events=events)
                signature = block.get("signature")
                if isinstance(signature, str) and signature:
                    item = self._text_item(_REASONING, events)
                    signed = text or "".join(item.unsigned)
                    item.blocks.append({"type": "thinking", "thinking": signed, "signature": signature})
                    item.unsigned.clear()
            elif kind == "redacted_thinking" and isinstance(block.get("data"), str) and block["data"]:
                self._text_item(_REASONING, events).blocks.append({"type": "redacted_thinking", "data": block["data"]})

    def _open_text(self, kind: str, events: list[Event]) -> None:
        item = _TextItem(len(self._output), new_item_id("rs" if kind == _REASONING else "msg"), kind)
        self._text = item
        self._output.append(None)
        if kind == _REASONING:
            added = reasoning_item(item.item_id, None, "in_progress", summary=self._summary)
        else:
            added = message_item(item.item_id, "", "in_progress")
        self._emit(events, "response.output_item.added", output_index=item.output_index, item=added)
        if kind == _REASONING and self._summary:
            return  # a summary's part opens with its first text
        self._emit(
            events,
            "response.content_part.added",
            item_id=item.item_id,
            output_index=item.output_index,
            content_index=0,
            part=_part(kind, ""),
        )

    def _close_text(self, events: list[Event]) -> None:
        item = self._text
        if item is None:
            return
        self._text = None
        text = "".join(item.parts)
        if item.kind == _REASONING and self._summary:
            if item.summary_open:
                where = {"item_id": item.item_id, "output_index": item.output_index, "summary_index": 0}
                self._emit(events, "response.reasoning_summary_text.done", **where, text=text)
                self._emit(events, "response.reasoning_summary_part.done", **where, part=summary_text_part(text))
            done = reasoning_item(item.item_id, text, summary=True, blocks=item.blocks)
        else:
            common = {"item_id": item.item_id, "output_index": item.output_index, "content_index": 0}
            if item.kind == _REASONING:
                self._emit(events, "response.reasoning_text.done", **common, text=text)
                done = reasoning_item(item.item_id, text, blocks=item.blocks)
            elif item.kind == _REFUSAL:
                self._emit(events, "response.refusal.done", **common, refusal=text)
                done = refusal_item(item.item_id, text)
            else:
                self._emit(events, "response.output_text.done", **common, text=text,
                           logprobs=delta_logprobs(item.logprobs))
                done = message_item(item.item_id, text, "incomplete" if self._cut else "completed", item.logprobs)
            self._emit(events, "response.content_part.done", **common, part=_part(item.kind, text, item.logprobs))
        self._output[item.output_index] = done
        self._emit(events, "response.output_item.done", output_index=item.output_index, item=done)

    def _unfinished_text(self, item: _TextItem) -> dict[str, Any]:
        """The open text item as it stands when the stream fails: ``incomplete``, with its text so far."""
        text = "".join(item.parts)
        if item.kind == _REASONING:
            return reasoning_item(item.item_id, text, "incomplete", summary=self._summary, blocks=item.blocks)
        if item.kind == _REFUSAL:
            return refusal_item(item.item_id, text, "incomplete")
        return message_item(item.item_id, text, "incomplete", item.logprobs)

    def _call_delta(self, call: dict[str, Any], position: int, events: list[Event]) -> None:
        index = call.get("index", position)
        function = call.get("function") or {}
        fragment = function.get("arguments") or ""
        state = self._calls.get(index)
        if state is None:
            self._close_text(events)
            self._close_open_call(events)
            call_id = call.get("id") or new_item_id("call")
            signature = call_signature(call)
            if signature is not None:
                self._signature_item(call_id, signature, events)
            name = str(function.get("name") or "")
            custom = name in self._custom_tools
            state = _CallItem(
                output_index=len(self._output),
                item_id=new_item_id("ctc" if custom else "fc"),
                call_id=call_id,
                name=name,
                custom=custom,
                unwrapper=CustomInputUnwrapper() if custom else None,
            )
            self._calls[index] = state
            self._open_call = state
            self._output.append(None)
            added = tool_call_item(state.item_id, state.call_id, name, "", custom=custom, status="in_progress")
            self._emit(events, "response.output_item.added", output_index=state.output_index, item=added)
        elif not state.name and function.get("name"):
            state.name = str(function["name"])
        if not fragment:
            return
        if state.unwrapper is not None:
            fragment = state.unwrapper.feed(fragment)
        state.parts.append(fragment)
        if state.closed or not fragment:
            return  # a late fragment for a finished call still lands in the final output
        self._emit(
            events,
            "response.custom_tool_call_input.delta" if state.custom else "response.function_call_arguments.delta",
            item_id=state.item_id,
            output_index=state.output_index,
            delta=fragment,
        )

    def _signature_item(self, call_id: str, signature: str, events: list[Event]) -> None:
        """A finished reasoning item carrying the thought signature of the call about to open."""
        item_id, index = new_item_id("rs"), len(self._output)
        added = reasoning_item(item_id, None, "in_progress", summary=self._summary)
        done = reasoning_item(item_id, None, summary=self._summary, signatures={call_id: signature})
        self._output.append(done)
        self._emit(events, "response.output_item.added", output_index=index, item=added)
        self._emit(events, "response.output_item.done", output_index=index, item=done)

    def _close_open_call(self, events: list[Event]) -> None:
        state = self._open_call
        if state is None:
            return
        self._open_call = None
        state.closed = True
        if state.unwrapper is not None:
            rest = state.unwrapper.finish()
            state.unwrapper = None
            if rest:
                state.parts.append(rest)
                self._emit(
                    events,
                    "response.custom_tool_call_input.delta",
                    item_id=state.item_id,
                    output_index=state.output_index,
                    delta=rest,
                )
        full = "".join(state.parts)
        common = {"item_id": state.item_id, "output_index": state.output_index}
        if state.custom:
            self._emit(events, "response.custom_tool_call_input.done", **common, input=full)
        else:
            self._emit(events, "response.function_call_arguments.done", **common, arguments=full)
        done = tool_call_item(state.item_id, state.call_id, state.name, full, custom=state.custom)
        self._output[state.output_index] = done
        self._emit(events, "response.output_item.done", output_index=state.output_index, item=done)

    # -- envelope ------------------------------------------------------------------------------

    def _envelope(
        self,
        status: str,
        *,
        usage: dict[str, Any] | None = None,
        incomplete_reason: str | None = None,
        error: dict[str, Any] | None = None,
        partial: bool = False,
    ) -> dict[str, Any]:
        """The response object; ``partial`` puts the items still open in its output too (a failed stream's)."""
        output: list[dict[str, Any]] = []
        if status != "in_progress":
            late = {state.output_index: state for state in self._calls.values()}
            unfinished: dict[int, dict[str, Any]] = {}
            if partial and self._text is not None:
                unfinished[self._text.output_index] = self._unfinished_text(self._text)
            if partial and self._open_call is not None:
                call = self._open_call
                unfinished[call.output_index] = tool_call_item(
                    call.item_id, call.call_id, call.name, "".join(call.parts), custom=call.custom, status="incomplete"
                )
            for index, item in enumerate(self._output):
                item = item or unfinished.get(index)
                if item is None:
                    continue
                state = late.get(index)
                if state is not None:
                    # Late fragments for an already-closed call are folded into its final item.
                    item = {**item, ("input" if state.custom else "arguments"): "".join(state.parts)}
                output.append(item)
        return response_envelope(
            self._request,
            response_id=self._response_id,
            created_at=self._created_at,
            status=status,
            output=output,
            usage=usage,
            incomplete_reason=incomplete_reason,
            error=error,
        )

    def _emit(self, events: list[Event], name: str, **payload: Any) -> None:
        events.append((name, {"type": name, "sequence_number": self._seq, **payload}))
        self._seq += 1
