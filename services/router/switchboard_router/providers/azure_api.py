"""Azure OpenAI's API versions: the one a deployment speaks, and the output-cap field that version knows.

Azure deprecated ``max_tokens`` in favour of OpenAI's ``max_completion_tokens`` with API version
2024-09-01-preview (the first to serve the o1 models), and every version since (GA 2024-10-21, the
later previews, ``preview``/``latest``) accepts ``max_completion_tokens`` for all its chat models. Its
reasoning models (o-series) and the GPT-5 family refuse ``max_tokens`` (400 ``unsupported_parameter``), so
a deployment on such a version is sent the cap as ``max_completion_tokens`` — the gateway's own bound
(Cursor never sends one) as well as a client's ``max_tokens``. Earlier versions (2024-08-01-preview and
before) answer "Unrecognized request argument supplied: max_completion_tokens" and get ``max_tokens``.
"""

from __future__ import annotations

import re

from switchboard_router.deployment import Deployment

#: What a deployment without ``api_version:`` is called with (Azure's GA version).
DEFAULT_API_VERSION = "2024-10-21"
#: The first API version that knows ``max_completion_tokens`` (its date; previews of that day included).
MAX_COMPLETION_TOKENS_SINCE = "2024-09-01"

_DATED = re.compile(r"\d{4}-\d{2}-\d{2}")


def api_version(deployment: Deployment) -> str:
    """The ``api-version`` the deployment is called with."""
    return str(deployment.extra.get("api_version") or DEFAULT_API_VERSION)


def output_field(version: str) -> str:
    """The name of the output cap in a chat body for ``version`` (an undated one, ``preview`` or ``latest``,
    is a current version)."""
    date = version[:10]
    if _DATED.fullmatch(date) and date < MAX_COMPLETION_TOKENS_SINCE:
        return "max_tokens"
    return "max_completion_tokens"
