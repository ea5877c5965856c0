"""``POST /v1/moderations`` (and ``/moderations``): OpenAI moderations through a deployment whose provider has
them, with the key's limits, budgets and ledger as for chat; the answer names the model asked for. ``model`` may
be left out, as OpenAI allows: the public model ``omni-moderation-latest`` is asked for then."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_facade import flow
from switchboard_facade.fast_lane import hot, through_framework
from switchboard_facade.flow import Parsed
from switchboard_facade.gateway import Gateway
from switchboard_facade.http_input import Incoming
from switchboard_facade.replies import Reply
from switchboard_facade.routes.embeddings import as_provider_sent, checked_input
from switchboard_router.client import Operation

router = APIRouter()

#: OpenAI's default moderation model, asked for when the body names none.
DEFAULT_MODEL = "omni-moderation-latest"


class ModerationsEndpoint:
    errors = "openai"

    def parse(self, body: dict[str, Any], incoming: Incoming) -> Parsed:
        body.setdefault("model", DEFAULT_MODEL)
        checked = checked_input(body, "a moderation model", "a string, a list of strings, or text and image parts")
        return Parsed(checked, as_provider_sent(checked["model"]), Operation.MODERATE)


MODERATIONS = ModerationsEndpoint()


async def handle_moderations(gw: Gateway, incoming: Incoming) -> Reply:
    return await flow.serve(gw, incoming, MODERATIONS)


@router.post("/v1/moderations")
@router.post("/moderations")
@hot(handle_moderations)
async def moderations(request: Request) -> Response:
    return await through_framework(request, handle_moderations)
