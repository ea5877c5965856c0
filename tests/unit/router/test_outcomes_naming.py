"""Errors name a deployment so that a person can tell which model it serves."""

from __future__ import annotations

from switchboard_router.deployment import Deployment
from switchboard_router.outcomes import unreachable_error


def test_a_generated_deployment_id_comes_with_its_model() -> None:
    configured = Deployment(id="gpt-4o/0", public_model="gpt-4o", provider="openai", model="gpt-4o", api_base="x")
    added = Deployment(id="992ef5cb-e644-4c1c-9d5e-2b1f6f0d4a11", public_model="nmodel", provider="openai",
                       model="gpt-4o", api_base="x")
    assert unreachable_error(configured, OSError("refused")).message.startswith("The provider of gpt-4o/0 could")
    message = unreachable_error(added, OSError()).message
    assert "The provider of nmodel (992ef5cb-e644-4c1c-9d5e-2b1f6f0d4a11)" in message
