"""What make run's banner tells a person about the env file, by where the master key came from."""

from __future__ import annotations

from pathlib import Path

from switchboard_common.run_banner import banner

MODELS = [{"id": "demo", "switchboard": {"deployments": [{"provider": "demo"}]}}]


def test_an_operators_master_key_is_not_promised_by_the_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    own = banner("http://127.0.0.1:4000", None, env_file, MODELS, 1.0)
    assert "from SWITCHBOARD_MASTER_KEY (not shown)" in own
    assert "export it in that shell too" in own and "the master key and the switchboard CLI" not in own
    made = banner("http://127.0.0.1:4000", ("sk-master-abc", str(tmp_path / "master_key")), env_file, MODELS, 1.0)
    assert "the master key and the switchboard CLI for your shell" in made and "sk-master-abc" in made
