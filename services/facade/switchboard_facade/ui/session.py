"""Dashboard sessions: an opaque, signed id in an HttpOnly SameSite=Strict cookie, mapped in memory to the credential.

The credential (master key or virtual key) never leaves the server: the cookie holds only a random session
id and its HMAC, so a stolen cookie expires with the session and a forged one is refused. Every session
carries its own CSRF token, which every form posts back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field

COOKIE_NAME = "sb_session"
#: Sessions last eight hours of wall-clock time, then the holder signs in again.
SESSION_SECONDS = 8 * 3600


@dataclass
class Session:
    credential: str
    is_admin: bool
    key_id: str
    label: str
    expires_at: float
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))


class SessionStore:
    """Sessions of this facade process; a restart signs everyone out (the credential is not persisted)."""

    def __init__(self, ttl_seconds: float = SESSION_SECONDS) -> None:
        self._secret = secrets.token_bytes(32)
        self._ttl = ttl_seconds
        self._sessions: dict[str, Session] = {}

    def _sign(self, sid: str) -> str:
        return hmac.new(self._secret, sid.encode(), hashlib.sha256).hexdigest()

    def create(self, credential: str, *, is_admin: bool, key_id: str, label: str) -> tuple[str, Session]:
        """A new session and the cookie value that names it."""
        self._evict()
        sid = secrets.token_urlsafe(32)
        session = Session(credential, is_admin, key_id, label, time.time() + self._ttl)
        self._sessions[sid] = session
        return f"{sid}.{self._sign(sid)}", session

    def lookup(self, cookie: str | None) -> Session | None:
        if not cookie or "." not in cookie:
            return None
        sid, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(sid)):
            return None
        session = self._sessions.get(sid)
        if session is None or session.expires_at < time.time():
            self._sessions.pop(sid, None)
            return None
        return session

    def destroy(self, cookie: str | None) -> None:
        if cookie and "." in cookie:
            sid, _, signature = cookie.rpartition(".")
            if hmac.compare_digest(signature, self._sign(sid)):
                self._sessions.pop(sid, None)

    def _evict(self) -> None:
        now = time.time()
        for sid in [s for s, v in self._sessions.items() if v.expires_at < now]:
            del self._sessions[sid]


def csrf_ok(session: Session, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf_token, submitted or "")
