"""``POST /v1/completions`` (and ``/completions``): OpenAI's legacy text completions, through any deployment
whose provider has them (OpenAI, Azure OpenAI, OpenAI-compatible servers), with the key's limits, budgets and
ledger as for chat. The answer is the provider's ``text_completion`` object, as it sent it, naming the model the
client asked for."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_facade import flow
from switchboard_facade.errors import invalid
from switchboard_facade.fast_lane import hot, through_framework
from switchboard_facade.flow import Parsed
from switchboard_facade.gateway import Gateway
from switchboard_facade.http_input import Incoming
from switchboard_facade.replies import Reply
from switchboard_facade.routes.embeddings import as_provider_sent
from switchboard_router.client import Operation

router = APIRouter()


def _tokens(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(t, int) and not isinstance(t, bool)
                                                            for t in value)


def _prompts(value: Any) -> int:
    """How many prompts ``prompt`` holds (a string or token ids: one; a list of them: each); 0 when it is none."""
    if isinstance(value, str) or _tokens(value):
        return 1
    if isinstance(value, list) and value and all(isinstance(item, str) or _tokens(item) for item in value):
        return len(value)
    return 0


def _count(body: dict[str, Any], name: str) -> int:
    value = body.get(name, 1)
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


class CompletionsEndpoint:
    """Legacy completions: the body goes to the router as it is (with its output cap bounded by the budget)."""

    errors = "openai"

    def parse(self, body: dict[str, Any], incoming: Incoming) -> Parsed:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise invalid("'model' is required: the public name of a model whose provider has /v1/completions.",
                          "model", "missing_model")
        prompts = _prompts(body.get("prompt"))
        if not prompts:
            raise invalid("'prompt' is required: a string, a list of strings, or token ids.", "prompt",
                          "missing_prompt")
        # A budget hold covers one answer: several prompts, choices or candidates in one request could pass it.
        if prompts > 1:
            raise invalid("Send one prompt per request (a list of several is not served): the key's budget holds "
                          "one answer at a time.", "prompt", "several_prompts")
        for name in ("n", "best_of"):
            if _count(body, name) > 1:
                raise invalid(f"'{name}' above 1 is not served: the key's budget holds one answer at a time; send "
                              "one request per answer.", name, "several_answers")
        if body.get("stream"):
            raise invalid("Streamed legacy completions are not served; send stream: false, or use "
                          "/v1/chat/completions to stream.", "stream", "stream_not_supported")
        return Parsed(body, as_provider_sent(model), Operation.TEXT_COMPLETE)


COMPLETIONS = CompletionsEndpoint()


async def handle_completions(gw: Gateway, incoming: Incoming) -> Reply:
    return await flow.serve(gw, incoming, COMPLETIONS)


@router.post("/v1/completions")
@router.post("/completions")
@hot(handle_completions)
async def completions(request: Request) -> Response:
    return await through_framework(request, handle_completions)
