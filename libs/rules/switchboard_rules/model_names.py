"""Model names that stand for another model: Cursor's reasoning variants (``<model>-thinking``).

Cursor lists a reasoning variant of a model as a separate name. The gateway serves it as the
base model with reasoning on (the router), and holds and prices it as the base model (billing):
one rule for both, here.
"""

from __future__ import annotations

from collections.abc import Callable

THINKING_SUFFIX = "-thinking"


def split_thinking_suffix(model: str, served: Callable[[str], bool]) -> tuple[str, bool]:
    """``("<base>", True)`` for ``<base>-thinking`` when only the base is served.

    A name that is itself served always wins, so a catalog entry literally called
    ``foo-thinking`` is never rewritten.
    """
    if served(model) or not model.endswith(THINKING_SUFFIX):
        return model, False
    base = model[: -len(THINKING_SUFFIX)]
    if base and served(base):
        return base, True
    return model, False
