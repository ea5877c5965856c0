"""Secrets the embedded default keeps in its data directory (master key, pepper, service tokens): the services
start together and may create the same one at the same moment; each gets the one value, none fails."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from switchboard_common.settings import load_or_create_secret


def test_processes_creating_one_secret_together_all_read_the_same_value(tmp_path: Path) -> None:
    """The router creates its token while billing and auth create the token they accept from it: one wins, the
    others read what it wrote (whole: never an empty or half-written file), and no temporary file is left."""
    for attempt in range(20):
        path = tmp_path / f"service-tokens-{attempt}" / "router"
        start = threading.Barrier(12)
        with ThreadPoolExecutor(12) as pool:
            values = list(pool.map(_together, [start] * 12, [path] * 12))
        assert len(set(values)) == 1 and values[0]
        assert path.read_text() == values[0]
        assert [p.name for p in path.parent.iterdir()] == ["router"]
        assert path.stat().st_mode & 0o777 == 0o600


def _together(start: threading.Barrier, path: Path) -> str:
    start.wait()
    return load_or_create_secret(path)


def test_an_existing_secret_is_read_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "master_key"
    first = load_or_create_secret(path, prefix="sk-")
    assert first.startswith("sk-") and load_or_create_secret(path, prefix="sk-") == first
