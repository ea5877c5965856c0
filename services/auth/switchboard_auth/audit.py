"""What auth writes in the audit log for a change of a key, a team or a user: who, what, the fields before and
after with secrets redacted, and where from (the chain itself: :mod:`switchboard_common.audit_chain`).

Auth owns the log of every key, team, user and member change because auth performs them: the row is appended in
the change's own transaction (:meth:`switchboard_auth.store.KeyStore.commit`), so a change that fails or is
refused leaves no row, and one that commits always has its row.
"""

from __future__ import annotations

from typing import Any

from switchboard.v1 import auth_pb2
from switchboard_auth.access import Caller
from switchboard_auth.models import Team, User, VirtualKey
from switchboard_common.audit_chain import REDACTED, Change
from switchboard_common.audit_origin import of_message

#: Columns never shown, only said to have changed: the key's hash and the sealed provider credentials (BYOK).
SECRET_COLUMNS = frozenset({"key_hash", "provider_credentials_sealed"})

Row = VirtualKey | Team | User


def snapshot(row: Row | None) -> dict[str, Any]:
    """The row's columns as plain values (secrets still in: :func:`redact` before they are written)."""
    if row is None:
        return {}
    return {name: getattr(row, name) for name in type(row).model_fields}


def redact(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (REDACTED if k in SECRET_COLUMNS and v else v) for k, v in values.items()}


def diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields that differ, before and after, secrets redacted (a changed secret shows as redacted on both
    sides; a field only one side has is shown on that side). ``updated_at`` alone is no change."""
    names = [n for n in dict.fromkeys([*before, *after]) if before.get(n) != after.get(n) and n != "updated_at"]
    return (redact({n: before[n] for n in names if n in before}),
            redact({n: after[n] for n in names if n in after}))


def change(who: Caller, caller: auth_pb2.AdminCaller, action: str, target_type: str, target_id: str,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
           extra: dict[str, Any] | None = None) -> Change:
    """One change by ``who``: ``before``/``after`` are snapshots, reduced to the fields that differ; ``extra``
    adds fields to ``after`` (e.g. the users created with a team's members)."""
    b, a = diff(before or {}, after or {})
    kind, key_id = actor_of(who)
    return Change(kind, key_id, who.user_id, action, target_type, target_id, b, {**a, **(extra or {})},
                  of_message(caller.origin))


def actor_of(who: Caller) -> tuple[str, str]:
    """(kind, key id) of who acts: "key" and its id, "user" and "" for a person signed in to the dashboard by
    single sign-on (the row's user_id names them), "master" and "master" for the master key."""
    if who.key is not None:
        return "key", who.key.key_id
    if who.user is not None:
        return "user", ""
    return "master", "master"



def diff_many(pairs: dict[str, tuple[dict[str, Any], dict[str, Any]]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A change of several targets: each target's :func:`diff`, keyed by its id."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for target_id, (b, a) in pairs.items():
        before[target_id], after[target_id] = diff(b, a)
    return before, after


def many(who: Caller, caller: auth_pb2.AdminCaller, action: str, target_type: str,
         pairs: dict[str, tuple[dict[str, Any], dict[str, Any]]], extra: dict[str, Any] | None = None) -> Change:
    """One change of several targets (e.g. revoking keys): before/after keyed by target id; ``extra`` adds
    fields to ``after`` (e.g. the keys revoked with a user)."""
    before, after = diff_many(pairs)
    kind, key_id = actor_of(who)
    return Change(kind, key_id, who.user_id, action, target_type, ",".join(pairs), before,
                  {**after, **(extra or {})}, of_message(caller.origin))


def created_users(users: list[User]) -> dict[str, Any]:
    """The users a team change created (members unknown before), for ``after``; empty when none."""
    return {"created_users": [u.user_id for u in users]} if users else {}
