"""Where LiteLLM is installed for the benchmark, and with which interpreter."""

from __future__ import annotations

import sys

import pytest

from benchmarks.gateway import GatewayUnavailable
from benchmarks.litellm_env import LITELLM_VENV, litellm_venv


def test_the_default_interpreter_uses_the_default_venv_and_another_gets_its_own() -> None:
    assert litellm_venv(None) == LITELLM_VENV
    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert litellm_venv(sys.executable) == LITELLM_VENV.parent / f"litellm-py{mine}"


def test_an_interpreter_that_does_not_run_is_reported_as_unavailable() -> None:
    with pytest.raises(GatewayUnavailable, match="cannot run /nonexistent/python3"):
        litellm_venv("/nonexistent/python3")
