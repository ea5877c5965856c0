"""The ``model`` an answer names: the model the client asked for, as it wrote it.

Providers name their own ids in answers — OpenAI a dated snapshot
(``gpt-4o-2024-08-06``), Anthropic ``claude-…``, an Azure deployment its
model — and a provider adapter may name the public model that served. A
client of the gateway asked for a gateway model name (a catalog name, a key's
alias, a ``-thinking`` variant) and gets that same name back in chat
completions (whole and streamed), Responses, Anthropic Messages, embeddings,
legacy completions and moderations alike — and so does a key holder calling
the router over gRPC — whichever deployment, provider or fallback served it.
What served is told apart from what was asked: the ``x-switchboard-model`` (the model that
served), ``x-switchboard-deployment`` and ``x-switchboard-provider`` headers,
and the ledger row's ``upstream_model``.

Chat streams pass through as bytes; a chunk that already names the model (as
a gateway-synthesised one does) is sent on untouched, any other is re-encoded
with the name. So is a whole answer: one that names another model is parsed
and written again (an embeddings list of 100 vectors of 1,536 dimensions,
about 3 MB, in about 20 ms on these machines; nothing when the catalog name is
the provider's id).
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["AnswerModel"]


class AnswerModel:
    """Puts one request's model name into the answers (completions, chunks, embeddings lists...) answering it."""

    __slots__ = ("model", "_named")

    def __init__(self, model: str) -> None:
        self.model = model
        #: The field as orjson writes it: a document holding it already names the model.
        self._named = b'"model":' + orjson.dumps(model)

    def name(self, document: dict[str, Any]) -> dict[str, Any]:
        """``document`` (a completion or a chunk) naming the model; changed in place and returned."""
        document["model"] = self.model
        return document

    def name_bytes(self, document: bytes) -> bytes:
        """The JSON ``document`` naming the model (the same bytes when it already does, or is not an object)."""
        if self._named in document:
            return document
        parsed = orjson.loads(document)
        if not isinstance(parsed, dict):
            return document
        return orjson.dumps(self.name(parsed))
