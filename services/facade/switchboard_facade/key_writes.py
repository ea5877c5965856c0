"""Writing keys so that their model lists tell the truth: a key is never given a model it cannot reach.

A key's requests are served only by deployments within its privacy tier and jurisdictions (its own, its
team's or the gateway's defaults, as auth resolves them). Before ``/key/generate``, ``/key/update``,
``/key/regenerate`` or the dashboard writes a change to a key's models, tier, jurisdictions or team, auth
answers the key as it would be (a dry run, writing nothing) and the router lists the models a request under
its constraints could be served by; a model the key lists that the catalog serves but the key could never
reach is refused (400 ``model_unreachable``, naming the model and where it is served). So are an unknown
tier and a jurisdiction name that cannot be read, as the router would refuse every request of the key.
Model names that are patterns, access groups or not in the catalog are left alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from switchboard_auth.client import CreatedKey, KeyInfo, KeySpec
from switchboard_common.errors import Kind, ServiceError
from switchboard_facade.gateway import Gateway
from switchboard_router.client import ListModelsResponse, RoutingConstraints

#: Fields whose change can make a listed model unreachable.
REACH_FIELDS = frozenset({"models", "privacy_tier", "jurisdictions", "team_id"})


def _served_in(listing: ListModelsResponse) -> dict[str, list[str]]:
    """Model name → the jurisdictions its listed deployments are in."""
    return {m.name: sorted({d.jurisdiction or "unspecified" for d in m.deployments}) for m in listing.models}


async def check_reachable(gw: Gateway, info: KeyInfo) -> None:
    """Refuses (400) the key ``info`` describes when its tier is unknown or a model it lists cannot reach."""
    ctx = info.effective
    if not ctx.privacy_tier and not ctx.jurisdictions:
        return
    reachable = await gw.router.list_models(RoutingConstraints(privacy_tier=ctx.privacy_tier,
                                                               jurisdictions=ctx.jurisdictions))
    if not ctx.models:
        return
    names = {m.name for m in reachable.models}
    served = _served_in(await gw.router.list_models(RoutingConstraints()))
    stuck = [m for m in dict.fromkeys(ctx.models) if m in served and m not in names]
    if not stuck:
        return
    at_tier = _served_in(await gw.router.list_models(RoutingConstraints(privacy_tier=ctx.privacy_tier)))
    where = "; ".join(
        f"'{m}' is served " + (f"at that tier in {', '.join(at_tier[m])}" if m in at_tier
                               else f"only below that tier (in {', '.join(served[m])})") for m in stuck)
    limits = ([f"privacy tier '{ctx.privacy_tier}'"] if ctx.privacy_tier else []) + (
        [f"jurisdictions {', '.join(ctx.jurisdictions)}"] if ctx.jurisdictions else [])
    raise ServiceError(
        Kind.ERROR_KIND_INVALID_REQUEST,
        f"The key could never use model(s) {', '.join(repr(m) for m in stuck)}: no deployment within its "
        f"{' and '.join(limits)} serves them ({where}). Remove them from 'models', or change 'privacy_tier' or "
        "'jurisdictions'.", param="models", code="model_unreachable")


async def create_key(gw: Gateway, who: str, spec: KeySpec, key: str = "") -> CreatedKey:
    """A new key (``key``: its plain value when given, e.g. migrating keys), once its models are reachable."""
    await check_reachable(gw, (await gw.auth.admin.create_key(who, spec, dry_run=True)).info)
    return await gw.auth.admin.create_key(who, spec, key=key)


async def _check_update(gw: Gateway, who: str, ref: str, spec: KeySpec, fields: Sequence[str]) -> None:
    if REACH_FIELDS.intersection(fields):
        await check_reachable(gw, await gw.auth.admin.update_key(who, ref, spec, fields, dry_run=True))


async def update_key(gw: Gateway, who: str, ref: str, spec: KeySpec, fields: Sequence[str]) -> KeyInfo:
    """The key changed, once a change of its models, tier, jurisdictions or team leaves its models reachable."""
    await _check_update(gw, who, ref, spec, fields)
    return await gw.auth.admin.update_key(who, ref, spec, fields)


async def regenerate_key(gw: Gateway, who: str, ref: str, spec: KeySpec | None = None,
                         fields: Sequence[str] = (), new_key: str = "") -> CreatedKey:
    """A new secret for the key (``new_key`` when given), and the fields given with it, checked as
    :func:`update_key` checks them."""
    if spec is not None:
        await _check_update(gw, who, ref, spec, fields)
    return await gw.auth.admin.regenerate_key(who, ref, spec, fields, new_key=new_key)
