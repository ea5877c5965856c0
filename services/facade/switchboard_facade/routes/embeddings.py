"""``POST /v1/embeddings`` (and ``/embeddings``): OpenAI embeddings through any deployment that has them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_facade import flow
from switchboard_facade.errors import invalid
from switchboard_facade.fast_lane import hot, through_framework
from switchboard_facade.flow import Dialect, Parsed
from switchboard_facade.gateway import Gateway
from switchboard_facade.http_input import Incoming
from switchboard_facade.replies import Reply
from switchboard_router.client import Operation

router = APIRouter()


def checked_input(body: dict[str, Any], what: str, inputs: str) -> dict[str, Any]:
    """``body`` with its ``model`` (``what`` names the kind of model) and ``input`` (``inputs`` says what it may
    be) checked, and any ``stream`` removed: these answers come whole. Raises the 400 of a bad body."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid(f"'model' is required: the public name of {what}.", "model", "missing_model")
    data = body.get("input")
    if not isinstance(data, (str, list)) or not data:
        raise invalid(f"'input' is required: {inputs}.", "input", "missing_input")
    body.pop("stream", None)
    return body


def _validate(body: dict[str, Any]) -> dict[str, Any]:
    return checked_input(body, "an embedding model", "a string or a non-empty list of strings or token arrays")


#: OpenAI's answer goes back as the provider gave it (embeddings, legacy completions, moderations).
PASS_THROUGH = Dialect(errors="openai", render=lambda body, usage: body)


class EmbeddingsEndpoint:
    """OpenAI embeddings: the body goes to the router as it is; the list comes back as it is."""

    errors = "openai"

    def parse(self, body: dict[str, Any], incoming: Incoming) -> Parsed:
        return Parsed(_validate(body), PASS_THROUGH, Operation.EMBED)


EMBEDDINGS = EmbeddingsEndpoint()


async def handle_embeddings(gw: Gateway, incoming: Incoming) -> Reply:
    return await flow.serve(gw, incoming, EMBEDDINGS)


@router.post("/v1/embeddings")
@router.post("/embeddings")
@router.post("/cursor/embeddings")
@hot(handle_embeddings)
async def embeddings(request: Request) -> Response:
    return await through_framework(request, handle_embeddings)
