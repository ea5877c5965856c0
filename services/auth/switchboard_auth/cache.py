"""The auth replica's verification cache: key hash → (key row, team row, user row).

Kept fresh by the invalidation bus (pushed, within milliseconds on every
replica); a short TTL bounds staleness should a push ever be missed, and the
cache is bypassed entirely while the bus is unhealthy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from switchboard.v1 import auth_pb2
from switchboard_auth.invalidation import InvalidationBus
from switchboard_auth.models import Team, User, VirtualKey


@dataclass(slots=True)
class Verified:
    key: VirtualKey
    team: Team | None
    user: User | None
    cached_at: float


class VerificationCache:
    def __init__(self, bus: InvalidationBus, ttl_seconds: float = 30.0, max_entries: int = 100_000) -> None:
        self.bus = bus
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[str, Verified] = {}
        bus.listen(self.apply)

    def apply(self, change: auth_pb2.Invalidation) -> None:
        if change.everything:
            self._entries.clear()
            return
        keys, teams = set(change.key_ids), set(change.team_ids)
        for digest in [d for d, v in self._entries.items() if v.key.key_id in keys or
                       (v.key.team_id and v.key.team_id in teams)]:
            del self._entries[digest]

    def get(self, digest: str) -> Verified | None:
        if not self.bus.healthy:
            return None
        entry = self._entries.get(digest)
        if entry is None or time.monotonic() - entry.cached_at > self.ttl_seconds:
            return None
        return entry

    def put(self, digest: str, key: VirtualKey, team: Team | None, generation: int, user: User | None = None) -> None:
        """Stores a verification read at bus generation ``generation``, unless a change came in since."""
        if generation != self.bus.generation or not self.bus.healthy:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[digest] = Verified(key, team, user, time.monotonic())
