"""The ``switchboard`` CLI against a running gateway: keys and teams, tables and --json."""

from __future__ import annotations

import io
import json
from typing import Any

import openai
import pytest

from switchboard_facade.cli.main import main
from tests.e2e.keys_helpers import chat, sdk
from tests.harness import Gateway


def cli(gateway: Gateway, *argv: str, expect: int = 0) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--url", gateway.base_url, "--api-key", gateway.master_key, *argv], out, err)
    assert code == expect, (code, out.getvalue(), err.getvalue())
    return out.getvalue(), err.getvalue()


def cli_json(gateway: Gateway, *argv: str) -> Any:
    return json.loads(cli(gateway, "--json", *argv)[0])


def test_keys_lifecycle_with_the_cli(gateway: Gateway) -> None:
    team = cli_json(gateway, "teams", "create", "--id", "cli-team", "--alias", "CLI", "--rpm", "50",
                    "--max-budget", "20", "--budget-duration", "30d")
    assert team["team_id"] == "cli-team" and team["max_budget"] == 20
    out, err = cli(gateway, "keys", "create", "--alias", "cli-key", "--team", "cli-team", "--models",
                   "fake-good,fake-echo", "--rpm", "10", "--tpm", "5000", "--max-parallel", "2",
                   "--duration", "7d", "--privacy-tier", "internal", "--metadata", "owner=me")
    key = out.strip()
    assert key.startswith("sk-") and "not shown again" in err
    table, _ = cli(gateway, "keys", "list", "--team", "cli-team")
    assert "KEY_ID" in table and "cli-key" in table and f"sk-...{key[-4:]}" in table and key not in table
    info = cli_json(gateway, "keys", "info", key)["info"]
    assert info["rpm_limit"] == 10 and info["models"] == ["fake-good", "fake-echo"]
    assert info["metadata"] == {"owner": "me"} and info["privacy_tier"] == "internal"
    updated = cli_json(gateway, "keys", "update", info["key_id"], "--rpm", "20", "--clear", "tpm_limit")
    assert updated["rpm_limit"] == 20 and updated["tpm_limit"] is None and updated["max_parallel_requests"] == 2
    assert "is blocked" in cli(gateway, "keys", "block", info["key_id"])[0]
    assert "is active" in cli(gateway, "keys", "unblock", info["key_id"])[0]
    fresh = cli(gateway, "keys", "regenerate", info["key_id"])[0].strip()
    assert fresh.startswith("sk-") and fresh != key
    detail, _ = cli(gateway, "teams", "info", "cli-team")
    assert "key_count" in detail and info["key_id"] in detail
    assert "cli-team" in cli(gateway, "teams", "list")[0]
    assert f"revoked {info['key_id']}" in cli(gateway, "keys", "revoke", info["key_id"])[0]
    with pytest.raises(openai.AuthenticationError):
        chat(sdk(gateway, fresh))
    assert cli(gateway, "teams", "delete", "cli-team")[0] == "deleted cli-team\n"


def test_cli_reports_refusals_and_exits_non_zero(gateway: Gateway) -> None:
    _, err = cli(gateway, "keys", "create", "--budget-duration", "soon", expect=1)
    assert err.startswith("error: 400") and "budget_duration" in err
    _, err = cli(gateway, "teams", "info", "no-such-team", expect=1)
    assert "404" in err
    out, err = io.StringIO(), io.StringIO()
    assert main(["--url", gateway.base_url, "--api-key", "sk-wrong", "keys", "list"], out, err) == 1
    assert "401" in err.getvalue()
    assert main(["keys", "frobnicate"], out, err) == 2


def test_usage_is_a_subcommand_of_the_same_cli(gateway: Gateway) -> None:
    out = io.StringIO()
    assert main(["usage", "--url", gateway.base_url, "--api-key", gateway.master_key, "--format", "json"], out) == 0
    assert "total" in json.loads(out.getvalue())
