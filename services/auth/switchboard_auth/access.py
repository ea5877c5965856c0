"""Who calls an admin RPC and what they may do: the master key, admin keys, and the roles of users' keys.

A key's powers in the admin API come from the key (``is_admin``) or from its
user's role (LiteLLM's roles, see ``switchboard_rules.fields.USER_ROLES``):

* the master key, an admin key and a ``proxy_admin``'s key manage everything;
* a ``proxy_admin_viewer``'s key reads everything and changes nothing;
* an ``internal_user``'s key creates, changes and deletes its user's own keys
  and reads its user, its keys and its teams;
* an ``internal_user_viewer``'s key reads its user, its keys and its teams;
* any key reads itself and its own team.
"""

from __future__ import annotations

from dataclasses import dataclass

from switchboard_auth.models import Team, User, VirtualKey
from switchboard_common.errors import Kind, ServiceError

PROXY_ADMIN = "proxy_admin"
PROXY_ADMIN_VIEWER = "proxy_admin_viewer"
INTERNAL_USER = "internal_user"


def denied(message: str, code: str = "admin_required") -> ServiceError:
    return ServiceError(Kind.ERROR_KIND_PERMISSION, message, code=code)


ADMIN_ONLY = "Only the master key, an admin key or a proxy_admin user's key may manage keys, teams and users."


@dataclass(frozen=True, slots=True)
class Caller:
    """The verified caller of an admin RPC: its key, team and user. No key and no user: the master key; a user
    without a key: a person signed in to the dashboard by single sign-on (their role decides)."""

    key: VirtualKey | None
    team: Team | None
    user: User | None

    @property
    def role(self) -> str:
        """The caller's effective role ("" for a key without a user and without admin rights)."""
        if self.key is None and self.user is None:  # the master key
            return PROXY_ADMIN
        if self.key is not None and self.key.is_admin:
            return PROXY_ADMIN
        if self.user is not None and self.user.user_role == PROXY_ADMIN:
            return PROXY_ADMIN
        return self.user.user_role if self.user is not None else ""

    @property
    def is_admin(self) -> bool:
        return self.role == PROXY_ADMIN

    @property
    def reads_all(self) -> bool:
        return self.role in (PROXY_ADMIN, PROXY_ADMIN_VIEWER)

    @property
    def user_id(self) -> str:
        return self.user.user_id if self.user is not None else ""

    def require_admin(self) -> None:
        if not self.is_admin:
            raise denied(ADMIN_ONLY)

    def require_reader(self) -> None:
        """Reading everything: admins and proxy_admin viewers."""
        if not self.reads_all:
            raise denied("Only admins and proxy_admin_viewer users may read every key, team and user.")

    def owns(self, key: VirtualKey) -> bool:
        """The key is the caller's own, or its user's."""
        if self.key is not None and key.key_id == self.key.key_id:
            return True
        return bool(self.user_id) and key.user_id == self.user_id

    def may_read_key(self, key: VirtualKey) -> bool:
        return self.reads_all or self.owns(key)

    def may_manage_key(self, key: VirtualKey | None) -> bool:
        """Admins any key; an internal_user its user's keys (``None``: a new key for its user)."""
        if self.is_admin:
            return True
        if self.role != INTERNAL_USER:
            return False
        return key is None or (bool(self.user_id) and key.user_id == self.user_id)

    def member_of(self, team: Team) -> bool:
        return bool(self.user_id) and any(m.get("user_id") == self.user_id for m in team.members)

    def team_admin_of(self, team: Team) -> bool:
        return bool(self.user_id) and any(m.get("user_id") == self.user_id and m.get("role") == "admin"
                                          for m in team.members)

    def may_read_team(self, team: Team) -> bool:
        """Admins and viewers any team; a key its own team; a user's key the teams the user is a member of."""
        own_team = self.key is not None and self.key.team_id == team.team_id
        return self.reads_all or own_team or self.member_of(team)
