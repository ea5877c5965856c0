"""The collector settings a service applies once it has started."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from switchboard_common.gc_tuning import FIRST_GENERATION_THRESHOLD, tune_for_service


@pytest.fixture()
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_startup_objects_are_frozen_and_young_collections_are_rarer(restored_gc: None) -> None:
    before = gc.get_threshold()
    tune_for_service()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (FIRST_GENERATION_THRESHOLD, before[1], before[2])


def test_cycles_made_after_tuning_are_still_collected(restored_gc: None) -> None:
    tune_for_service()

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # type: ignore[attr-defined]
    ids = {id(a), id(b)}
    del a, b
    gc.collect()
    assert not ids & {id(o) for o in gc.get_objects() if isinstance(o, Node)}
