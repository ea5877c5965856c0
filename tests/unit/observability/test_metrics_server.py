"""The /metrics endpoint of the gRPC services (a thread beside the event loop)."""

from __future__ import annotations

import httpx

from switchboard_common import metrics
from tests.fakes.server import free_port


def test_serve_exposes_the_registry_on_the_configured_port() -> None:
    port = metrics.serve(free_port(), host="127.0.0.1")
    metrics.RETRIES.labels("obs-exposition").inc(3)

    response = httpx.get(f"http://127.0.0.1:{port}{metrics.PATH}", timeout=5)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'switchboard_retries_total{model="obs-exposition"} 3.0' in response.text
    assert "process_cpu_seconds_total" in response.text


def test_port_zero_disables_the_endpoint() -> None:
    assert metrics.serve(0) == 0
