"""Self-serve keys: the bounds within which a user (not an admin) creates, changes and rotates their own keys.

The operator sets defaults (``SWITCHBOARD_SELF_SERVE_*``); a team may override each one in its metadata
(``self_serve_max_keys_per_user``, ``self_serve_max_budget`` in dollars, ``self_serve_max_duration``,
``self_serve_models`` comma-separated), for the keys of that team. Auth applies them to every write by a
non-admin caller, whether it comes from the dashboard or the admin API, so no door goes around them. A key
that leaves a bound unset gets the bound itself (a budget, an expiry, the allowed models), so a self-serve key
is never wider than the rules that made it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from switchboard.v1 import auth_pb2
from switchboard_auth.models import Team, VirtualKey
from switchboard_common.errors import Kind, ServiceError
from switchboard_rules.durations import DurationError, parse_duration

#: Team metadata names that override the operator's defaults for the team's keys.
TEAM_MAX_KEYS = "self_serve_max_keys_per_user"
TEAM_MAX_BUDGET = "self_serve_max_budget"
TEAM_MAX_DURATION = "self_serve_max_duration"
TEAM_MODELS = "self_serve_models"

#: Slack on the expiry bound: the dashboard's "now" and auth's may differ by a few seconds.
_EXPIRY_SLACK_SECONDS = 60


def _refused(message: str, code: str) -> ServiceError:
    return ServiceError(Kind.ERROR_KIND_PERMISSION, message, code=code)


def dollars_to_micros(text: str, what: str) -> int:
    """A dollar amount ("25", "2.50") as micro-dollars; ValueError naming ``what`` when unreadable."""
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{what}={text!r} is not an amount in dollars (e.g. 25 or 2.50)") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{what}={text!r} must be 0 or more dollars")
    return int(amount * 1_000_000)


def _models(text: str) -> tuple[str, ...]:
    return tuple(m.strip() for m in text.split(",") if m.strip())


@dataclass(frozen=True, slots=True)
class SelfServe:
    """Bounds on a user's own keys (0, None, "" and () mean no bound)."""

    max_keys_per_user: int = 0
    max_budget_micros: int | None = None
    max_duration: str = ""
    models: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, max_keys: int, max_budget: str, max_duration: str, models: str) -> SelfServe:
        """The operator's defaults; raises ValueError naming the setting when a value cannot be read."""
        if max_keys < 0:
            raise ValueError("SWITCHBOARD_SELF_SERVE_MAX_KEYS_PER_USER must be 0 (no limit) or more")
        budget = dollars_to_micros(max_budget, "SWITCHBOARD_SELF_SERVE_MAX_BUDGET") if max_budget.strip() else None
        if max_duration.strip():
            try:
                parse_duration(max_duration.strip(), what="SWITCHBOARD_SELF_SERVE_MAX_DURATION")
            except DurationError as exc:
                raise ValueError(str(exc)) from None
        return cls(max_keys, budget, max_duration.strip(), _models(models))

    def for_team(self, team: Team | None) -> SelfServe:
        """These bounds with the team's overrides (an unreadable override is ignored, the default stays)."""
        if team is None:
            return self
        meta, bounds = team.team_metadata, self
        try:
            if meta.get(TEAM_MAX_KEYS, "").strip():
                bounds = replace(bounds, max_keys_per_user=max(0, int(meta[TEAM_MAX_KEYS])))
            if meta.get(TEAM_MAX_BUDGET, "").strip():
                bounds = replace(bounds, max_budget_micros=dollars_to_micros(meta[TEAM_MAX_BUDGET], TEAM_MAX_BUDGET))
            if meta.get(TEAM_MAX_DURATION, "").strip():
                parse_duration(meta[TEAM_MAX_DURATION].strip())
                bounds = replace(bounds, max_duration=meta[TEAM_MAX_DURATION].strip())
        except (ValueError, DurationError):
            pass
        if meta.get(TEAM_MODELS, "").strip():
            bounds = replace(bounds, models=_models(meta[TEAM_MODELS]))
        return bounds

    def as_message(self) -> auth_pb2.SelfServeLimits:
        out = auth_pb2.SelfServeLimits(max_keys_per_user=self.max_keys_per_user, max_duration=self.max_duration,
                                       models=self.models)
        if self.max_budget_micros is not None:
            out.max_budget_micros = self.max_budget_micros
        return out

    def latest_expiry(self, now: int) -> int:
        if not self.max_duration:
            return 0
        return int(parse_duration(self.max_duration).after(datetime.fromtimestamp(now, UTC)).timestamp())

    def bound(self, key: VirtualKey, now: int, live_keys: int | None = None) -> None:
        """Checks ``key`` (as it will be written) against the bounds, filling in what it left unset; raises a
        403 that names the bound. ``live_keys``: the user's live keys before a new one (None: not a new key)."""
        if live_keys is not None and self.max_keys_per_user and live_keys >= self.max_keys_per_user:
            raise _refused(f"You already have {live_keys} live keys, the most allowed per user "
                           f"({self.max_keys_per_user}). Revoke one you no longer use, or ask an admin.",
                           "self_serve_key_limit")
        if self.models:
            if not key.models:
                key.models = list(self.models)
            outside = [m for m in key.models if m not in self.models and "*" not in self.models]
            if outside:
                raise _refused(f"Your keys may use only {', '.join(self.models)}; not {', '.join(outside)}.",
                               "self_serve_model_not_allowed")
        if self.max_budget_micros is not None:
            if key.max_budget_micros is None:
                key.max_budget_micros = self.max_budget_micros
            elif key.max_budget_micros > self.max_budget_micros:
                raise _refused(f"A key you create may have a budget of at most "
                               f"${Decimal(self.max_budget_micros) / 1_000_000:f}; ask an admin for more.",
                               "self_serve_budget_too_high")
        latest = self.latest_expiry(now)
        if latest:
            if not key.expires_at:
                key.expires_at = latest
            elif key.expires_at > latest + _EXPIRY_SLACK_SECONDS:
                raise _refused(f"A key you create may last at most {self.max_duration}; choose a shorter duration.",
                               "self_serve_expiry_too_long")
