"""Dashboard sessions as the facade holds them: built from auth's answer, a CSRF token per session that only the
session's holder can compute, and the rights each kind of session carries."""

from __future__ import annotations

from switchboard_auth.client import SelfServeLimits, SessionInfo
from switchboard_facade.ui.session import Session, csrf_ok


def session(token: str = "sbs_a", **fields: object) -> Session:
    info = SessionInfo(kind="user", user_id="ann@example.com", role="internal_user", label="ann@example.com",
                       expires_at=2_000_000_000, team_ids=["platform"],
                       self_serve=SelfServeLimits(models=["fake-good"]))
    for name, value in fields.items():
        setattr(info, name, value)
    return Session.of(token, info)


def test_the_cookie_token_is_the_caller_and_nothing_else_is_kept() -> None:
    s = session()
    assert s.credential == "sbs_a" and s.user_id == "ann@example.com" and s.team_ids == ["platform"]


def test_csrf_token_is_per_session_and_must_match_exactly() -> None:
    mine, other = session("sbs_a"), session("sbs_b")
    assert mine.csrf_token == session("sbs_a").csrf_token  # the same on every replica: derived, not stored
    assert "sbs_a" not in mine.csrf_token
    assert csrf_ok(mine, mine.csrf_token)
    assert not csrf_ok(mine, other.csrf_token)
    assert not csrf_ok(mine, "")
    assert not csrf_ok(mine, None)


def test_who_manages_keys() -> None:
    assert session().manages_own_keys
    assert not session(role="internal_user_viewer").manages_own_keys
    assert not session(role="proxy_admin_viewer", reads_all=True).manages_own_keys
    assert session(kind="master", user_id="", role="proxy_admin", is_admin=True).manages_own_keys
    assert not session(kind="key", user_id="", role="").manages_own_keys


def test_a_person_acts_as_their_user_and_the_master_as_master() -> None:
    person = session().acting_key()
    assert person.user_id == "ann@example.com" and person.user_role == "internal_user" and not person.is_admin
    assert list(person.models) == ["fake-good"]
    master = session(kind="master", user_id="", role="proxy_admin", is_admin=True).acting_key()
    assert master.is_admin and master.key_id == "master"
