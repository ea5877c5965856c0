"""``POST /v1/embeddings`` (and ``/embeddings``): OpenAI embeddings through any deployment that has them.

The answer is the provider's, naming the model the client asked for (as chat
answers do: :mod:`switchboard_translate.answer_model`); legacy completions and
moderations answer the same way (:func:`as_provider_sent`).
"""

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
from switchboard_translate.answer_model import AnswerModel

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


def as_provider_sent(model: str) -> Dialect:
    """OpenAI's answer as the provider gave it (embeddings, legacy completions, moderations), naming ``model``, the
    model the client asked for, instead of the provider's id."""
    answer_model = AnswerModel(model)
    return Dialect(errors="openai", render=lambda body, usage: answer_model.name_bytes(body))


class EmbeddingsEndpoint:
    """OpenAI embeddings: the body goes to the router as it is; the list comes back as it is, naming the model
    asked for."""

    errors = "openai"

    def parse(self, body: dict[str, Any], incoming: Incoming) -> Parsed:
        body = _validate(body)
        return Parsed(body, as_provider_sent(body["model"]), Operation.EMBED)


EMBEDDINGS = EmbeddingsEndpoint()


async def handle_embeddings(gw: Gateway, incoming: Incoming) -> Reply:
    return await flow.serve(gw, incoming, EMBEDDINGS)


@router.post("/v1/embeddings")
@router.post("/embeddings")
@router.post("/cursor/embeddings")
@hot(handle_embeddings)
async def embeddings(request: Request) -> Response:
    return await through_framework(request, handle_embeddings)
