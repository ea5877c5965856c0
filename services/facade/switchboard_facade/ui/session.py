"""Dashboard sessions: the cookie holds a session token that auth issued; auth keeps only its hash.

Who is signed in (the master key, a virtual key, or a user by single sign-on) lives in auth's database, so a
session survives a facade restart and works on every facade replica, with no sticky sessions. The token is
also the caller of every admin call the pages make, so auth re-checks the person behind it each time: a key
revoked or a user blocked or deleted ends the session at the next page. The cookie is HttpOnly and
SameSite=Strict; every form posts back a CSRF token derived from the session token (a page of another site
can read neither).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from switchboard_auth.client import KeyContext, SelfServeLimits, SessionInfo

COOKIE_NAME = "sb_session"
#: Sessions last eight hours of wall-clock time (SWITCHBOARD_UI_SESSION_HOURS), then the holder signs in again.
SESSION_SECONDS = 8 * 3600
#: Roles whose holders may create, rotate and revoke their own keys.
SELF_SERVE_ROLES = ("internal_user",)


@dataclass
class Session:
    #: The session token: the caller of every admin call made for this session.
    credential: str
    kind: str
    is_admin: bool
    reads_all: bool
    user_id: str
    key_id: str
    label: str
    role: str
    expires_at: int
    team_ids: list[str] = field(default_factory=list)
    self_serve: SelfServeLimits = field(default_factory=SelfServeLimits)

    @classmethod
    def of(cls, token: str, info: SessionInfo) -> Session:
        return cls(token, info.kind, info.is_admin, info.reads_all, info.user_id, info.key_id, info.label,
                   info.role, info.expires_at, list(info.team_ids), info.self_serve)

    @property
    def csrf_token(self) -> str:
        return hmac.new(self.credential.encode(), b"switchboard-ui-csrf", hashlib.sha256).hexdigest()

    @property
    def manages_own_keys(self) -> bool:
        """Admins manage every key; a user with a self-serve role their own."""
        return self.is_admin or (bool(self.user_id) and self.role in SELF_SERVE_ROLES)

    @property
    def is_person(self) -> bool:
        """Signed in as a user by single sign-on (not with a key)."""
        return self.kind == "user"

    def acting_key(self) -> KeyContext:
        """A key context that stands for a person signed in without a key (usage filters, model lists)."""
        if self.kind == "master":
            return KeyContext(key_id="master", key_alias="master", is_admin=True)
        return KeyContext(user_id=self.user_id, user_role=self.role, is_admin=self.is_admin,
                          models=list(self.self_serve.models))


def csrf_ok(session: Session, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf_token, submitted or "")
