"""Per-deployment health: in-flight count, recent latency, failures and cool-downs (a circuit breaker).

A deployment that fails ``cooldown_failures`` times in a row is left out for
``cooldown_seconds``; after that it is tried again by itself (half-open), and
one success closes the breaker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(slots=True)
class DeploymentHealth:
    inflight: int = 0
    consecutive_failures: int = 0
    cooldown_until: float = 0.0
    #: Exponentially weighted moving average of time to first byte, seconds.
    latency_ewma: float = 0.0

    def cooling_down(self, now: float) -> bool:
        return now < self.cooldown_until


class HealthBoard:
    """Health of every deployment of the router process."""

    def __init__(self, cooldown_failures: int = 3, cooldown_seconds: float = 30.0) -> None:
        self.cooldown_failures = cooldown_failures
        self.cooldown_seconds = cooldown_seconds
        self._health: dict[str, DeploymentHealth] = {}

    def get(self, deployment_id: str) -> DeploymentHealth:
        health = self._health.get(deployment_id)
        if health is None:
            health = self._health[deployment_id] = DeploymentHealth()
        return health

    def is_available(self, deployment_id: str, now: float | None = None) -> bool:
        return not self.get(deployment_id).cooling_down(time.monotonic() if now is None else now)

    def record_success(self, deployment_id: str, latency: float) -> None:
        health = self.get(deployment_id)
        health.consecutive_failures = 0
        health.cooldown_until = 0.0
        health.latency_ewma = latency if health.latency_ewma == 0 else 0.8 * health.latency_ewma + 0.2 * latency

    def record_failure(self, deployment_id: str, now: float | None = None) -> bool:
        """Counts a failure; returns True when it put the deployment into cool-down."""
        health = self.get(deployment_id)
        health.consecutive_failures += 1
        # Half-open: a deployment back from a cool-down, with no success since, is cooled again at once.
        half_open = health.cooldown_until > 0
        if self.cooldown_failures and (half_open or health.consecutive_failures >= self.cooldown_failures):
            health.cooldown_until = (time.monotonic() if now is None else now) + self.cooldown_seconds
            health.consecutive_failures = 0
            return True
        return False

    def state(self, deployment_id: str) -> str:
        return "cooling_down" if not self.is_available(deployment_id) else "healthy"
