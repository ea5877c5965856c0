"""``POST /v1/embeddings`` (and ``/embeddings``): OpenAI embeddings through any deployment that has them."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from switchboard_common.errors import ServiceError
from switchboard_facade.errors import error_response, invalid, status_for
from switchboard_facade.fast_lane import hot, through_framework
from switchboard_facade.gateway import Call, Gateway, call_headers, estimate_prompt_tokens, route_headers
from switchboard_facade.http_input import Incoming
from switchboard_facade.privacy_tier import take_requested_tier
from switchboard_facade.replies import Reply

router = APIRouter()


async def handle_embeddings(gw: Gateway, incoming: Incoming) -> Reply:
    request_id = incoming.request_id
    call: Call | None = None
    try:
        body, size = incoming.json_object()
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise invalid("'model' is required: the public name of an embedding model.", "model", "missing_model")
        data = body.get("input")
        if not isinstance(data, (str, list)) or not data:
            raise invalid("'input' is required: a string or a non-empty list of strings or token arrays.", "input",
                          "missing_input")
        call = Call(request_id=request_id, model=model, body=body, stream=False,
                    estimated_prompt_tokens=estimate_prompt_tokens(size),
                    requested_privacy_tier=take_requested_tier(incoming.headers, body))
        await gw.authorize(incoming.credential(), call)
        await gw.reserve(call, size, output_tokens=1)  # embeddings produce no output tokens
    except ServiceError as err:
        if call is not None:  # refused after admission (e.g. by the budget): give the rate-limit slot back
            gw.release_limits(call)
            return error_response(err, call_headers(call))
        return error_response(err, {"x-request-id": request_id})
    try:
        result = await gw.embed(call)
    except ServiceError as err:
        gw.settle(call, usage=None, route=None, status="error", http_status=status_for(err),
                  error_code=err.error.code)
        return error_response(err, {"x-request-id": request_id})
    gw.settle(call, usage=result.usage, route=result.route, status="success", http_status=200)
    return Reply(result.body, 200, route_headers(call, result.route))


@router.post("/v1/embeddings")
@router.post("/embeddings")
@router.post("/cursor/embeddings")
@hot(handle_embeddings)
async def embeddings(request: Request) -> Response:
    return await through_framework(request, handle_embeddings)
