"""Dashboard sessions: signed opaque ids, expiry, sign-out and CSRF comparison."""

from __future__ import annotations

import time

from switchboard_facade.ui.session import SessionStore, csrf_ok


def test_cookie_names_the_session_without_holding_the_credential() -> None:
    store = SessionStore()
    cookie, session = store.create("sk-master-secret", is_admin=True, key_id="", label="master")
    assert "sk-master-secret" not in cookie
    assert store.lookup(cookie) is session


def test_forged_or_tampered_cookies_are_refused() -> None:
    store = SessionStore()
    cookie, _ = store.create("sk-a", is_admin=False, key_id="key_a", label="a")
    sid, _, signature = cookie.rpartition(".")
    assert store.lookup(f"{sid}.{'0' * len(signature)}") is None
    assert store.lookup(f"{sid}x.{signature}") is None
    assert store.lookup(sid) is None
    assert store.lookup(None) is None
    other_process = SessionStore()
    assert other_process.lookup(cookie) is None, "a cookie signed by another process's secret is refused"


def test_sessions_expire_and_sign_out_ends_them() -> None:
    short = SessionStore(ttl_seconds=0.05)
    cookie, _ = short.create("sk-a", is_admin=False, key_id="key_a", label="a")
    time.sleep(0.1)
    assert short.lookup(cookie) is None
    store = SessionStore()
    cookie, _ = store.create("sk-a", is_admin=False, key_id="key_a", label="a")
    store.destroy(cookie)
    assert store.lookup(cookie) is None


def test_csrf_token_must_match_exactly() -> None:
    store = SessionStore()
    _, session = store.create("sk-a", is_admin=False, key_id="key_a", label="a")
    other = store.create("sk-b", is_admin=False, key_id="key_b", label="b")[1]
    assert csrf_ok(session, session.csrf_token)
    assert not csrf_ok(session, other.csrf_token)
    assert not csrf_ok(session, "")
    assert not csrf_ok(session, None)
