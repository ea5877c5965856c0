"""Small wire formats shared by auth's answers."""

from __future__ import annotations


def duration_header(seconds: float) -> str:
    """OpenAI's x-ratelimit-reset-* format: ``250ms``, ``12s``, ``1m30s``."""
    if seconds < 1:
        return f"{max(0, int(seconds * 1000))}ms"
    whole = int(seconds + 0.999)
    minutes, rest = divmod(whole, 60)
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"
