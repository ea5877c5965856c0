"""Which OpenAI chat parameters each provider's translation honours, refuses or leaves out.

One table answers two questions, so that they cannot disagree: what the admin
API's ``/model/info`` and ``/model_group/info`` list as a deployment's
``supported_openai_params`` (LiteLLM's field: the parameters a client may send
and have honoured), and what a translation refuses before anything is sent. A
translation takes its :class:`ParamSupport` and calls :meth:`ParamSupport.refusal`
on every body; a parameter listed there as refused is never listed as supported.

- *refused*: the provider cannot do what the parameter asks (several choices,
  log probabilities, thinking: on Bedrock but for Claude, and wherever the model
  data says a Claude or Gemini model does not reason, :func:`can_think`), and an
  answer without it would look like one with it; asking for it (``n`` above 1,
  ``logprobs: true`` or ``top_logprobs``, a ``reasoning_effort`` other than
  ``"none"`` or an enabled ``thinking``) is a 400 naming the field. Its default
  (``n: 1``, ``logprobs: false``) is served.
- *left out*: the provider has no such setting (a frequency penalty for Claude,
  a seed for Converse); the value is accepted and not sent. These are not listed
  as supported either.

OpenAI-compatible providers receive the body as sent and honour every parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from switchboard_rules.model_limits import reasons
from switchboard_translate.errors import InvalidRequest
from switchboard_translate.logprobs import NO_LOGPROBS_ADVICE, requested_logprobs
from switchboard_translate.thinking import LEAVE_OUT_REASONING, requested_thinking_budget

#: The OpenAI chat parameters the gateway takes (LiteLLM's ``supported_openai_params`` of an OpenAI model).
CHAT_PARAMS = ("frequency_penalty", "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "n",
               "parallel_tool_calls", "presence_penalty", "reasoning_effort", "response_format", "seed", "stop",
               "stream", "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user")

#: What a client whose model gives one answer a request should do instead of asking for several.
ONE_CHOICE_ADVICE = "set n to 1, or send one request per answer"


def is_claude(model: str) -> bool:
    """Whether a provider's model id names a Claude model: ``claude-…`` (Anthropic, Vertex AI),
    ``anthropic.claude-…`` or ``us.anthropic.claude-…`` (Bedrock, also inside an inference-profile ARN)."""
    return "claude" in model.lower()


def _asks(body: dict[str, Any], param: str) -> str | None:
    """The field of ``body`` that asks for what ``param`` names, or None when the body does not ask for it."""
    if param == "n":
        n = body.get("n")
        return "n" if isinstance(n, int) and not isinstance(n, bool) and n > 1 else None
    if param in ("logprobs", "top_logprobs"):
        return "logprobs" if requested_logprobs(body) is not None else None
    if param == "reasoning_effort":
        effort = body.get("reasoning_effort")
        if effort and effort != "none":
            return "reasoning_effort"
        return "thinking" if requested_thinking_budget(body) is not None else None
    return param if body.get(param) is not None else None


@dataclass(frozen=True, slots=True)
class ParamSupport:
    """What one translation does with the OpenAI chat parameters it does not send on as they are."""

    #: Refused parameter → why and what to send instead (the 400's message).
    refused: Mapping[str, str] = field(default_factory=dict)
    #: Parameters accepted and not sent: the provider has no such setting.
    left_out: frozenset[str] = frozenset()

    @property
    def supported(self) -> tuple[str, ...]:
        """The parameters honoured (``supported_openai_params``), in :data:`CHAT_PARAMS` order."""
        return tuple(p for p in CHAT_PARAMS if p not in self.refused and p not in self.left_out)

    def refusal(self, body: dict[str, Any]) -> InvalidRequest | None:
        """The 400 for a body that asks for a refused parameter (naming the field it sent), or None."""
        for param, message in self.refused.items():
            sent = _asks(body, param)
            if sent is not None:
                return InvalidRequest(message, sent)
        return None


def _no_logprobs(who: str) -> dict[str, str]:
    message = f"{who} return no log probabilities: {NO_LOGPROBS_ADVICE}"
    return {"logprobs": message, "top_logprobs": message}


#: OpenAI-compatible providers: the body goes on as sent.
OPENAI = ParamSupport()
#: Claude through Anthropic's Messages API (``anthropic``, and ``vertex`` for a Claude model).
CLAUDE = ParamSupport(
    refused={"n": f"Claude models answer one choice per request: {ONE_CHOICE_ADVICE}", **_no_logprobs("Claude models")},
    left_out=frozenset({"frequency_penalty", "presence_penalty", "logit_bias", "seed"}),
)
_CONVERSE_LEFT_OUT = frozenset({"frequency_penalty", "presence_penalty", "logit_bias", "seed", "user",
                                "parallel_tool_calls"})
#: Claude through Bedrock's Converse API: its extended thinking is asked for in ``additionalModelRequestFields``.
CONVERSE_CLAUDE = ParamSupport(
    refused={"n": f"Bedrock models answer one choice per request: {ONE_CHOICE_ADVICE}",
             **_no_logprobs("Bedrock models (the Converse API)")},
    left_out=_CONVERSE_LEFT_OUT,
)
#: Any other model through Converse (Llama, Nova, Mistral, ...): the gateway asks only Claude to think.
CONVERSE = ParamSupport(
    refused={**CONVERSE_CLAUDE.refused,
             "reasoning_effort": "Of the models on Bedrock, the gateway asks only Claude to think (extended thinking), "
                                 f"and this model is not Claude: {LEAVE_OUT_REASONING}, or use a Claude model"},
    left_out=_CONVERSE_LEFT_OUT,
)
#: The refusal of a reasoning request to a Claude or Gemini model that cannot think.
_CANNOT_THINK = ("{model} cannot think (the model data the gateway ships says it does not reason), so it cannot honour "
                 f"a request to reason: {LEAVE_OUT_REASONING}, or use a model that thinks")
#: Gemini through ``generateContent`` (``gemini``, and ``vertex`` for any model but Claude).
GEMINI = ParamSupport(
    refused={"n": f"Gemini deployments answer one choice per request: {ONE_CHOICE_ADVICE}"},
    left_out=frozenset({"logit_bias", "user", "parallel_tool_calls"}),
)


def can_think(provider: str, model: str) -> bool:
    """Whether ``model`` on ``provider`` may be asked to think: False where the model data the gateway ships says
    it does not reason (Claude before 3.7, Gemini 2.0; see :func:`switchboard_rules.model_limits.reasons`), True
    where it says it does or does not know the model (the provider then answers for it)."""
    return reasons(provider, model) is not False


@lru_cache(maxsize=1024)
def param_support(provider: str, model: str) -> ParamSupport:
    """The table of the translation that serves ``model`` on ``provider`` (a catalog ``provider:`` name; a
    translation shared by several providers passes the one whose model ids it reads, such as ``anthropic`` for
    Claude on Vertex AI). A Claude or Gemini model that cannot think refuses reasoning."""
    if provider == "anthropic" or (provider == "vertex" and is_claude(model)):
        table = CLAUDE
    elif provider in ("gemini", "vertex"):
        table = GEMINI
    elif provider == "bedrock":
        table = CONVERSE_CLAUDE if is_claude(model) else CONVERSE
    else:
        return OPENAI
    if "reasoning_effort" in table.refused or can_think(provider, model):
        return table
    return ParamSupport(refused={**table.refused, "reasoning_effort": _CANNOT_THINK.format(model=model)},
                        left_out=table.left_out)
