"""Key-local model names: what a request names, resolved to the public model it means for its key.

A key (or its team) may map names of its own to public models (LiteLLM's key
``aliases`` and team ``model_aliases``); auth merges them into the key's
context. The facade (HTTP callers) and the router (its own gRPC callers) both
resolve the request's model here before budgets are held and a deployment is
chosen, so a name means the same model whoever calls.
"""

from __future__ import annotations

from switchboard.v1 import auth_pb2


def resolve_model(key: auth_pb2.KeyContext, model: str) -> tuple[str, list[str]]:
    """The public model ``model`` names for ``key``, and the models the key may use for this request: an alias the
    key's model list names explicitly lets the key use the model it stands for."""
    target = key.model_aliases.get(model)
    allowed = key.models[:]  # a list; iterating the field itself would end in an IndexError
    if not target:
        return model, allowed
    if allowed and model in allowed and target not in allowed:
        allowed.append(target)
    return target, allowed
