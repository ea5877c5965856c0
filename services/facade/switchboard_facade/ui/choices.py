"""What the key and team forms offer to pick from: models, teams, providers for bring-your-own-key, tiers."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from switchboard_common.errors import ServiceError
from switchboard_facade.gateway import Gateway
from switchboard_facade.routes.catalog import fetch_catalog
from switchboard_facade.ui.session import Session
from switchboard_rules.byok import UNSUPPORTED_PROVIDERS
from switchboard_rules.policies import DEFAULT_PRIVACY_TIERS

PII_POLICIES = ("off", "substitute", "mask", "block")


@dataclass(slots=True)
class Choices:
    #: Public model names of the catalog.
    models: list[str] = field(default_factory=list)
    #: (team id, name) of every team.
    teams: list[tuple[str, str]] = field(default_factory=list)
    #: Providers of the catalog a caller's own API key can carry.
    providers: list[str] = field(default_factory=list)
    tiers: tuple[str, ...] = DEFAULT_PRIVACY_TIERS
    pii_policies: tuple[str, ...] = PII_POLICIES


async def choices(request: Request, session: Session) -> Choices:
    """The choices of the catalog (billing's) and of auth (teams, admins only); what cannot be read is left empty."""
    gw: Gateway = request.app.state.gateway
    out = Choices()
    try:
        catalog = await fetch_catalog(request)
        out.models = [m.name for m in catalog.models]
        out.providers = sorted({d.provider for m in catalog.models for d in m.deployments}
                               - UNSUPPORTED_PROVIDERS - {"demo"})
    except ServiceError:
        pass
    if session.is_admin:
        try:
            out.teams = sorted(((t.team_id, t.team_alias or t.team_id) for t in
                                await gw.auth.admin.list_teams(session.credential)), key=lambda t: t[1].lower())
        except ServiceError:
            pass
    return out
