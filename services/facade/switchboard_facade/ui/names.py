"""Names instead of ids: a key's alias (else ``sk-…`` and its last four), a team's alias (else its id), a user's
alias (else e-mail, else id)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from switchboard_auth.client import KeyInfo, TeamInfo, UserInfo
from switchboard_common.errors import ServiceError
from switchboard_facade.gateway import Gateway
from switchboard_facade.ui.session import Session


@dataclass(slots=True)
class Directory:
    keys: dict[str, KeyInfo] = field(default_factory=dict)
    teams: dict[str, TeamInfo] = field(default_factory=dict)
    users: dict[str, UserInfo] = field(default_factory=dict)
    #: False when auth could not be asked (the pages then say so, and show ids).
    ok: bool = True

    def key(self, key_id: str | None) -> str:
        if not key_id:
            return "(no key)"
        info = self.keys.get(key_id)
        if info is None:
            return key_id
        return info.key_alias or f"sk-…{info.last_four}"

    def team(self, team_id: str | None) -> str:
        if not team_id:
            return "(no team)"
        info = self.teams.get(team_id)
        return (info.team_alias or team_id) if info is not None else team_id

    def user(self, user_id: str | None) -> str:
        if not user_id:
            return "(no user)"
        info = self.users.get(user_id)
        return (info.user_alias or info.user_email or user_id) if info is not None else user_id

    def name(self, dimension: str, value: str | None) -> str:
        """The name of a usage group's value (``model``, ``key``, ``team`` or ``user``)."""
        if dimension == "key":
            return self.key(value)
        if dimension == "team":
            return self.team(value)
        if dimension == "user":
            return self.user(value)
        return value or "(none)"


def directory_of(keys: Sequence[KeyInfo], teams: Sequence[TeamInfo] = (), users: Sequence[UserInfo] = ()) -> Directory:
    return Directory({k.key_id: k for k in keys}, {t.team_id: t for t in teams}, {u.user_id: u for u in users})


async def directory(gw: Gateway, session: Session) -> Directory:
    """Every key, team and user the session may see (an admin or viewer: all; a person: their own keys, teams and
    user; a virtual key: itself); empty when auth cannot answer (the ids then show)."""
    who = session.credential
    try:
        if session.reads_all:
            return directory_of(await gw.auth.admin.list_keys(who), await gw.auth.admin.list_teams(who),
                                await gw.auth.admin.list_users(who))
        if session.is_person:  # their own keys, teams and user
            return directory_of(await gw.auth.admin.list_keys(who), await gw.auth.admin.list_teams(who),
                                [await gw.auth.admin.get_user(who)])
        return directory_of([await gw.auth.admin.get_key(who)])
    except ServiceError:
        return Directory(ok=False)
