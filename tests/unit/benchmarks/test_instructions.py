"""benchmarks/instructions.py reads callgrind's dumps: each service's requests less its idle span, no supervisor."""

from __future__ import annotations

from pathlib import Path

from benchmarks.instructions import net_counts


def _dump(path: Path, command: str, total: int) -> None:
    path.write_text(f"version: 1\ncreator: callgrind-3.19.0\ncmd:  /venv/bin/python -m {command}\npart: 1\n"
                    f"events: Ir\nsummary: 0\ntotals: {total}\n")


def test_each_service_counts_its_requests_less_its_idle_span(tmp_path: Path) -> None:
    _dump(tmp_path / "callgrind.10.out.1", "switchboard_common.supervisor", 543)
    _dump(tmp_path / "callgrind.10.out.2", "switchboard_common.supervisor", 543)
    _dump(tmp_path / "callgrind.11.out.1", "switchboard_common.shared_process auth billing router", 500_000_000)
    _dump(tmp_path / "callgrind.11.out.2", "switchboard_common.shared_process auth billing router", 40_000_000)
    _dump(tmp_path / "callgrind.12.out.1", "switchboard_facade", 250_000_000)
    _dump(tmp_path / "callgrind.12.out.2", "switchboard_facade", 2_500_000)
    _dump(tmp_path / "callgrind.12.out", "switchboard_facade", 9_999)  # the dump at exit: not a measured span
    assert net_counts(tmp_path) == [("switchboard_common.shared_process auth billing router", 460_000_000),
                                    ("switchboard_facade", 247_500_000)]
