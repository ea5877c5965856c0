"""The router request the facade sends for a call: the key's own parts (payer, constraints) are built once per
verified key, the call's own fields are the call's, and a changed key is never answered from an older one."""

from __future__ import annotations

from switchboard.v1 import auth_pb2, common_pb2, router_pb2
from switchboard_auth.client.auth_client import Admitted
from switchboard_billing.client.holds import Hold
from switchboard_facade import flow
from switchboard_facade.privacy_tier import INSTANCE


def _key(**fields: object) -> auth_pb2.KeyContext:
    key = auth_pb2.KeyContext(key_id="key_1", key_alias="ci", team_id="team_1", user_id="user_1",
                              pii_policy="substitute", privacy_tier="zdr", jurisdictions=["ca", "eu"],
                              tags=["nightly"], credential_providers=["anthropic"], **fields)  # type: ignore[arg-type]
    key.limits.max_budget_micros = 5_000_000
    key.team_limits.soft_budget_micros = 2_000_000
    return key


def _call(key: auth_pb2.KeyContext, request_id: str, *, lease: str = "", tier: str = "",
          places: list[str] | None = None, models: list[str] | None = None) -> flow.Call:
    call = flow.Call(request_id, "gpt-4o", {"model": "gpt-4o", "messages": []}, stream=False, started_ms=1_700,
                     requested_privacy_tier=tier, requested_jurisdictions=places or [])
    call.admitted = Admitted(key)
    call.hold = Hold(request_id, lease_id=lease, micros=40 if lease else 0, output_tokens=256)
    call.allowed_models = models or []
    call.raw_body = b'{"model":"gpt-4o","messages":[]}'
    return call


def _expected(key: auth_pb2.KeyContext, call: flow.Call) -> router_pb2.CompleteRequest:
    """The request written out field by field."""
    watched = [common_pb2.WatchedBudget(scope="key", subject_id=key.key_id, alias=key.key_alias,
                                        max_budget_micros=key.limits.max_budget_micros),
               common_pb2.WatchedBudget(scope="team", subject_id=key.team_id,
                                        soft_budget_micros=key.team_limits.soft_budget_micros)]
    payer = router_pb2.Payer(key_id=key.key_id, key_alias=key.key_alias, team_id=key.team_id,
                             started_at_ms=call.started_ms, custody_hop=f"facade@{INSTANCE}",
                             pii_policy=key.pii_policy or "off", user_id=key.user_id, tags=key.tags,
                             watched_budgets=watched)
    assert call.hold is not None
    if call.hold.lease_id:
        payer.lease_id, payer.held_micros = call.hold.lease_id, call.hold.micros
    constraints = router_pb2.RoutingConstraints(
        allowed_models=call.allowed_models, privacy_tier=key.privacy_tier, jurisdictions=key.jurisdictions,
        pii_policy=key.pii_policy, requested_privacy_tier=call.requested_privacy_tier,
        requested_jurisdictions=call.requested_jurisdictions, credential_providers=key.credential_providers)
    return router_pb2.CompleteRequest(request_id=call.request_id, model=call.model, body=call.raw_body,
                                      payer=payer, constraints=constraints, output_tokens_bound=256,
                                      key_id=key.key_id, key_alias=key.key_alias)


def test_each_call_of_a_key_gets_the_keys_parts_and_only_its_own_fields() -> None:
    key = _key()
    first = _call(key, "req_1", lease="lease_1", tier="zdr", places=["ca"], models=["gpt-4o"])
    second = _call(key, "req_2")
    assert flow.router_request(first) == _expected(key, first)
    assert flow.router_request(second) == _expected(key, second)  # nothing of the first call's is left over
    assert flow.router_request(first) == _expected(key, first)


def test_a_changed_key_is_a_new_object_and_gets_its_new_parts() -> None:
    old = _key()
    flow.router_request(_call(old, "req_1"))
    changed = _key()
    changed.pii_policy, changed.privacy_tier = "block", "eu-only"
    del changed.tags[:]
    call = _call(changed, "req_2")
    request = flow.router_request(call)
    assert request == _expected(changed, call)
    assert (request.payer.pii_policy, request.constraints.privacy_tier, list(request.payer.tags)) == (
        "block", "eu-only", [])
