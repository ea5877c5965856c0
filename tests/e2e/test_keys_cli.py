"""The ``switchboard`` CLI against a running gateway: keys and teams, tables and --json."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import openai
import pytest

from switchboard_facade.cli.main import build_parser, main
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
                   "--duration", "7d", "--privacy-tier", "standard", "--jurisdictions", "US",
                   "--metadata", "owner=me")
    key = out.strip()
    assert key.startswith("sk-") and "not shown again" in err
    table, _ = cli(gateway, "keys", "list", "--team", "cli-team")
    assert "KEY_ID" in table and "cli-key" in table and f"sk-...{key[-4:]}" in table and key not in table
    info = cli_json(gateway, "keys", "info", key)["info"]
    assert info["rpm_limit"] == 10 and info["models"] == ["fake-good", "fake-echo"]
    assert info["metadata"] == {"owner": "me"} and info["privacy_tier"] == "standard"
    assert info["jurisdictions"] == ["us"] and info["effective"]["jurisdictions"] == ["us"]
    updated = cli_json(gateway, "keys", "update", info["key_id"], "--rpm", "20", "--clear", "tpm_limit")
    assert updated["rpm_limit"] == 20 and updated["tpm_limit"] is None and updated["max_parallel_requests"] == 2
    assert "is blocked" in cli(gateway, "keys", "block", info["key_id"])[0]
    assert "is active" in cli(gateway, "keys", "unblock", info["key_id"])[0]
    fresh = cli(gateway, "keys", "regenerate", info["key_id"])[0].strip()
    assert fresh.startswith("sk-") and fresh != key
    detail, _ = cli(gateway, "teams", "info", "cli-team")
    assert "key_count" in detail and info["key_id"] in detail
    assert "cli-team" in cli(gateway, "teams", "list")[0]
    updated = cli(gateway, "teams", "update", "cli-team", "--rpm", "60")[0]  # the team's fields, one per line
    assert any(line.split() == ["rpm_limit", "60"] for line in updated.splitlines())
    assert not any(line.startswith("data ") for line in updated.splitlines())
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


def test_without_a_key_exported_the_cli_uses_the_master_key_make_run_keeps(
        gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SWITCHBOARD_API_KEY", "SWITCHBOARD_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SWITCHBOARD_DATA_DIR", str(tmp_path))
    out, err = io.StringIO(), io.StringIO()
    assert main(["--url", gateway.base_url, "teams", "list"], out, err) == 2
    assert "no credential" in err.getvalue() and "source .switchboard/env" in err.getvalue()
    (tmp_path / "master_key").write_text(gateway.master_key)
    out, err = io.StringIO(), io.StringIO()
    assert main(["--url", gateway.base_url, "--json", "teams", "list"], out, err) == 0, err.getvalue()
    assert isinstance(json.loads(out.getvalue()), list)


def test_the_commands_the_dashboard_suggests_are_commands_of_the_cli() -> None:
    templates = Path(main.__code__.co_filename).parents[1] / "ui" / "templates"
    suggested = [m.group(1) for page in templates.glob("*.html")
                 for m in re.finditer(r"<code>switchboard ([^<]+)</code>", page.read_text())]
    assert suggested, "the Teams page suggests a CLI command"
    for command in suggested:
        build_parser().parse_args(command.split())


def test_usage_help_is_written_for_users(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["usage", "--help"]) == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "switchboard usage --group-by day" in text
    assert "``" not in text and ":func:" not in text and "add_parser" not in text


def test_doctor_says_what_is_fine_and_what_to_fix(gateway: Gateway, tmp_path: Path) -> None:
    out = io.StringIO()
    main(["doctor", "--url", gateway.base_url, "--api-key", gateway.master_key, "--config",
          str(gateway.config_path)], out)
    report = out.getvalue()
    for line in ("ok    the gateway answers", "ok    auth answers", "ok    router answers", "ok    billing answers",
                 "fake-good is live (openai)"):
        assert line in report, report
    out = io.StringIO()
    assert main(["doctor", "--url", "http://127.0.0.1:9", "--api-key", "sk-x", "--config",
                 str(tmp_path / "missing.yaml")], out) == 1
    assert "FIX   nothing answers at http://127.0.0.1:9" in out.getvalue() and "make run" in out.getvalue()
    out = io.StringIO()
    assert main(["doctor", "--url", gateway.base_url, "--api-key", "sk-wrong"], out) == 1
    assert "refuses the credential" in out.getvalue()
