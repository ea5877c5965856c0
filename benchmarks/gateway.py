"""What the runner knows about a gateway under test, whichever product it is."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from benchmarks.processes import ManagedProcess


class GatewayUnavailable(RuntimeError):
    """A gateway could not be installed or started; the runner skips its scenarios and says why."""


@dataclass
class RunningGateway:
    """A started gateway: where to send chat requests, with which key, and its process group."""

    name: str
    chat_url: str
    api_key: str
    process: ManagedProcess
    #: Response header in which the gateway reports its own overhead, if it has one.
    overhead_header: str | None = None
    #: The same for streams (sent with the response head, so it can only cover the time to it).
    stream_overhead_header: str | None = None
    #: Whether the root process counts as the gateway (not when it is only a supervisor).
    meter_root: bool = True
    #: A key whose ``pii_policy`` is ``substitute``, for the ``+pii`` scenarios; ``None`` when the
    #: gateway has no such key setting (those scenarios are then skipped, not run without it).
    pii_api_key: str | None = None
    #: Why the ``+pii`` scenarios are skipped on this gateway.
    pii_unsupported: str = "this gateway has no per-key PII substitution"

    def overhead_header_for(self, streaming: bool) -> str | None:
        return self.stream_overhead_header if streaming else self.overhead_header


def generate_key(base_url: str, master_key: str, body: dict[str, object]) -> str:
    """Create a virtual key through the LiteLLM-shaped admin API (``POST /key/generate``)."""
    request = urllib.request.Request(
        f"{base_url}/key/generate",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {master_key}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(json.loads(response.read())["key"])
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:500]
        raise GatewayUnavailable(f"POST /key/generate answered {exc.code}: {detail}") from exc
