"""Single sign-on for the dashboard against a real OpenID Connect provider (tests/fakes/oidc_provider.py), and
self-serve keys: the real four services, the browser's part played by an HTTP client that follows the
redirects by hand and keeps the cookies.

Shown: a first sign-in creates the user with the role and teams its groups map to; the next sign-in brings
them up to date; role enforcement (a developer manages only their own keys within the self-serve limits, a
viewer reads without writing, an admin everything); a forged, expired, other-audience or other-nonce ID token
and a mismatched ``state`` are refused with a clear page and no session; the provider's key rotation is
followed (one JWKS fetch); a blocked or deleted user's session ends; sessions survive a facade restart and
work on a second facade; master-key sign-in can be turned off; the provider down or misconfigured gives a
clear page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import fake_models
from tests.fakes.oidc_provider import FakeOidcProvider
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway, free_port, start_gateway

pytestmark = pytest.mark.slow

GROUP_TEAMS = "eng-platform=platform,eng-ml=ml"
GROUP_ROLES = "sb-admins=proxy_admin,sb-auditors=proxy_admin_viewer"


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeOidcProvider]:
    provider = FakeOidcProvider().start()
    yield provider
    provider.stop()


def sso_env(idp: FakeOidcProvider, **extra: str) -> dict[str, str]:
    return {"SWITCHBOARD_OIDC_ISSUER": idp.issuer, "SWITCHBOARD_OIDC_CLIENT_ID": idp.client_id,
            "SWITCHBOARD_OIDC_CLIENT_SECRET": idp.client_secret, "SWITCHBOARD_OIDC_GROUP_TEAMS": GROUP_TEAMS,
            "SWITCHBOARD_OIDC_GROUP_ROLES": GROUP_ROLES, **extra}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str],
            idp: FakeOidcProvider) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path_factory.mktemp("sso"), fake_models(fake_openai[1]), extra_env={
        **sso_env(idp), "SWITCHBOARD_SELF_SERVE_MAX_KEYS_PER_USER": "2", "SWITCHBOARD_SELF_SERVE_MAX_BUDGET": "10",
        "SWITCHBOARD_SELF_SERVE_MAX_DURATION": "30d", "SWITCHBOARD_SELF_SERVE_MODELS": "fake-good,fake-echo"})
    yield gw
    gw.stop()


@dataclass
class Landing:
    """Where a sign-in ended: the callback's answer, and the browser that made it."""

    response: httpx.Response
    browser: httpx.Client

    @property
    def signed_in(self) -> bool:
        return "sb_session" in self.browser.cookies


#: The clients a test opened, closed after it.
_OPEN: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_browsers() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def browser(base_url: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=15)
    _OPEN.append(client)
    return client


def sso_sign_in(base_url: str, idp: FakeOidcProvider, *, callback_base: str = "",
                client: httpx.Client | None = None) -> Landing:
    """Start on ``base_url``, go through the provider, come back (to ``callback_base`` when given: another
    replica behind the same address)."""
    b = client or browser(base_url)
    start = b.get("/ui/sso/start")
    assert start.status_code == 303, start.text
    authorize = httpx.get(start.headers["location"], follow_redirects=False, timeout=15)
    assert authorize.status_code == 302, authorize.text
    back = urlsplit(authorize.headers["location"])
    target = (callback_base or base_url) + back.path + "?" + back.query
    return Landing(b.get(target), b)


def csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def admin_get(gw: Gateway, path: str, **params: str) -> httpx.Response:
    return httpx.get(gw.base_url + path, params=params, headers=gw.admin(), timeout=10)


def user_info(gw: Gateway, user_id: str) -> dict[str, object]:
    r = admin_get(gw, "/user/info", user_id=user_id)
    assert r.status_code == 200, r.text
    return dict(r.json()["user_info"]) | {"teams": r.json().get("teams", [])}


def team_members(gw: Gateway, team_id: str) -> list[str]:
    r = admin_get(gw, "/team/info", team_id=team_id)
    assert r.status_code == 200, r.text
    return [m["user_id"] for m in r.json()["team_info"]["members_with_roles"]]


def create_key(b: httpx.Client, **fields: str) -> httpx.Response:
    form = b.get("/ui/keys/new")
    assert form.status_code == 200, form.text[:300]
    return b.post("/ui/keys/create", data={"csrf_token": csrf(form), **fields})


# -- sign-in, users, teams, roles ------------------------------------------------------------------------------


def test_first_sign_in_creates_the_user_with_mapped_teams_and_role(gateway: Gateway, idp: FakeOidcProvider) -> None:
    idp.login_as("alice@example.com", ["eng-platform", "unmapped-group"])
    landing = sso_sign_in(gateway.base_url, idp)
    assert landing.response.status_code == 200 and landing.signed_in, landing.response.text
    assert 'http-equiv="refresh"' in landing.response.text
    usage = landing.browser.get("/ui/usage")
    assert usage.status_code == 200 and "alice@example.com" in usage.text and "Developer" in usage.text
    assert user_info(gateway, "alice@example.com")["user_role"] == "internal_user"
    assert team_members(gateway, "platform") == ["alice@example.com"]  # the team was created for the mapping
    # what the token endpoint received: the client secret and the PKCE verifier (checked by the provider)
    assert idp.token_requests[-1]["code_verifier"]

    # The next sign-in follows the provider: moved from eng-platform to eng-ml.
    idp.login_as("alice@example.com", ["eng-ml"])
    assert sso_sign_in(gateway.base_url, idp).signed_in
    assert "alice@example.com" not in team_members(gateway, "platform")
    assert team_members(gateway, "ml") == ["alice@example.com"]


def test_roles_decide_what_each_person_may_do(gateway: Gateway, idp: FakeOidcProvider) -> None:
    idp.login_as("dev@example.com", ["eng-platform"])
    dev = sso_sign_in(gateway.base_url, idp).browser
    assert dev.get("/ui/teams").status_code == 403
    assert dev.get("/ui/users").status_code == 403
    assert dev.get("/ui/alerts").status_code == 200, "a person reads the alerts of their own user"
    assert dev.get("/ui/alerts/recent").json() == {"alerts": [], "new": 0}

    idp.login_as("auditor@example.com", ["sb-auditors"])
    auditor = sso_sign_in(gateway.base_url, idp).browser
    assert user_info(gateway, "auditor@example.com")["user_role"] == "proxy_admin_viewer"
    assert auditor.get("/ui/keys/new").status_code == 403  # reads, never writes
    assert auditor.get("/ui/teams").status_code == 403

    idp.login_as("boss@example.com", ["sb-admins", "eng-platform"])
    boss = sso_sign_in(gateway.base_url, idp).browser
    assert user_info(gateway, "boss@example.com")["user_role"] == "proxy_admin"
    assert boss.get("/ui/teams").status_code == 200 and boss.get("/ui/users").status_code == 200
    # An admin sees and manages everyone's keys.
    someones = gateway.create_key(key_alias="someones-key")
    someones_id = httpx.get(gateway.base_url + "/key/info", params={"key": someones},
                            headers=gateway.admin()).json()["key"]
    keys_page = boss.get("/ui/keys")
    assert "someones-key" in keys_page.text
    assert boss.post(f"/ui/keys/{someones_id}/block", data={"csrf_token": csrf(keys_page)}).status_code == 303
    assert httpx.get(gateway.base_url + "/key/info", params={"key": someones},
                     headers=gateway.admin()).json()["info"]["blocked"] is True
    # The audit trail names the person, not a key: they signed in without one.
    rows = httpx.get(gateway.base_url + "/audit", params={"target_id": someones_id, "action": "key.block"},
                     headers=gateway.admin()).json()["data"]
    assert [(r["actor"]["kind"], r["actor"]["user_id"], r["channel"]) for r in rows] == [
        ("user", "boss@example.com", "dashboard")]

    # Demoted at the provider: the next sign-in takes the rights away.
    idp.login_as("boss@example.com", ["eng-platform"])
    boss = sso_sign_in(gateway.base_url, idp).browser
    assert boss.get("/ui/teams").status_code == 403


def test_self_serve_keys_within_limits_and_only_ones_own(gateway: Gateway, idp: FakeOidcProvider) -> None:
    idp.login_as("carol@example.com", ["eng-platform"])
    carol = sso_sign_in(gateway.base_url, idp).browser
    made = create_key(carol, key_alias="carol-cursor", models="fake-good")
    assert made.status_code == 200, made.text[:500]
    assert "Connect Cursor" in made.text
    plain = re.search(r'id="new-key-value">(sk-[^<]+)<', made.text)
    assert plain, made.text[:800]
    key = plain.group(1)
    info = httpx.get(gateway.base_url + "/key/info", params={"key": key}, headers=gateway.admin()).json()["info"]
    assert info["user_id"] == "carol@example.com" and info["models"] == ["fake-good"]
    assert info["max_budget"] == 10  # the operator's bound, given to a key that set none
    assert info["expires"]  # and its longest lifetime

    # The key works.
    answer = httpx.post(gateway.base_url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                        json={"model": "fake-good", "messages": [{"role": "user", "content": "hi"}]}, timeout=30)
    assert answer.status_code == 200, answer.text

    # Outside the limits: refused with what to do.
    too_rich = create_key(carol, key_alias="rich", max_budget="50")
    assert too_rich.status_code == 400 and "at most $10" in too_rich.text
    other_model = create_key(carol, key_alias="other", models="fake-tool")
    assert other_model.status_code == 400 and "fake-good, fake-echo" in other_model.text
    assert create_key(carol, key_alias="second").status_code == 200
    third = create_key(carol, key_alias="third")
    assert third.status_code == 400 and "most allowed per user (2)" in third.text

    # Someone else's key: invisible and untouchable.
    other = gateway.create_key(key_alias="not-carols")
    other_id = httpx.get(gateway.base_url + "/key/info", params={"key": other},
                         headers=gateway.admin()).json()["key"]
    keys_page = carol.get("/ui/keys")
    assert "carol-cursor" in keys_page.text and "not-carols" not in keys_page.text
    assert carol.get(f"/ui/keys/{other_id}").status_code == 404
    revoke = carol.post(f"/ui/keys/{other_id}/revoke", data={"csrf_token": csrf(keys_page)})
    assert revoke.status_code == 400 and "own" in revoke.text
    assert httpx.get(gateway.base_url + "/key/info", params={"key": other},
                     headers=gateway.admin()).json()["info"]["status"] == "active"

    # Rotate then revoke one's own key.
    mine = info["key_id"] if "key_id" in info else httpx.get(
        gateway.base_url + "/key/info", params={"key": key}, headers=gateway.admin()).json()["key"]
    rotated = carol.post(f"/ui/keys/{mine}/regenerate", data={"csrf_token": csrf(keys_page)})
    assert rotated.status_code == 200 and "Your new key" in rotated.text
    assert httpx.post(gateway.base_url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                      json={"model": "fake-good", "messages": [{"role": "user", "content": "hi"}]},
                      timeout=30).status_code == 401
    gone = carol.post(f"/ui/keys/{mine}/revoke", data={"csrf_token": csrf(keys_page)})
    assert gone.status_code == 303

    # Carol's usage page shows her request, not others'.
    usage = carol.get("/ui/usage")
    assert usage.status_code == 200 and "carol-cursor" in usage.text


# -- refused tokens ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tamper", "says"), [
    ("forged", "signature"), ("forged_unknown_kid", "signature"), ("expired", "exp"),
    ("wrong_nonce", "nonce"), ("wrong_audience", "aud"), ("wrong_issuer", "iss")])
def test_a_bad_id_token_is_refused(gateway: Gateway, idp: FakeOidcProvider, tamper: str, says: str) -> None:
    idp.login_as("mallory@example.com", ["sb-admins"])
    idp.tamper = tamper
    landing = sso_sign_in(gateway.base_url, idp)
    assert landing.response.status_code == 401, landing.response.text
    assert "Sign-in refused" in landing.response.text and says in landing.response.text
    assert not landing.signed_in
    assert admin_get(gateway, "/user/info", user_id="mallory@example.com").status_code == 404


def test_a_state_mismatch_is_refused(gateway: Gateway, idp: FakeOidcProvider) -> None:
    idp.login_as("mallory@example.com", ["sb-admins"])
    idp.wrong_state = True
    landing = sso_sign_in(gateway.base_url, idp)
    assert landing.response.status_code == 400 and "state mismatch" in landing.response.text
    assert not landing.signed_in
    # A callback with no sign-in begun in this browser (a login CSRF) is refused too.
    stray = browser(gateway.base_url).get("/ui/sso/callback", params={"code": "x", "state": "y"})
    assert stray.status_code == 400 and "Start again" in stray.text


def test_the_providers_key_rotation_is_followed(gateway: Gateway, idp: FakeOidcProvider) -> None:
    idp.login_as("rota@example.com", ["eng-ml"])
    assert sso_sign_in(gateway.base_url, idp).signed_in
    fetched = idp.jwks_fetches
    assert sso_sign_in(gateway.base_url, idp).signed_in
    assert idp.jwks_fetches == fetched  # cached
    idp.rotate()
    assert sso_sign_in(gateway.base_url, idp).signed_in
    assert idp.jwks_fetches == fetched + 1  # the unknown kid fetched the keys once


# -- sessions ----------------------------------------------------------------------------------------------------


def test_blocking_or_deleting_the_user_ends_the_session(gateway: Gateway, idp: FakeOidcProvider) -> None:
    idp.login_as("dora@example.com", ["eng-ml"])
    dora = sso_sign_in(gateway.base_url, idp).browser
    assert dora.get("/ui/keys").status_code == 200
    blocked = httpx.post(gateway.base_url + "/user/update", headers=gateway.admin(),
                         json={"user_id": "dora@example.com", "blocked": True})
    assert blocked.status_code == 200, blocked.text
    assert dora.get("/ui/keys").headers.get("location") == "/ui/login"
    again = sso_sign_in(gateway.base_url, idp)
    assert again.response.status_code == 401 and "blocked" in again.response.text

    idp.login_as("erin@example.com", ["eng-ml"])
    erin = sso_sign_in(gateway.base_url, idp).browser
    assert erin.get("/ui/keys").status_code == 200
    assert httpx.post(gateway.base_url + "/user/delete", headers=gateway.admin(),
                      json={"user_ids": ["erin@example.com"]}).status_code == 200
    assert erin.get("/ui/keys").headers.get("location") == "/ui/login"


def test_sign_out_ends_the_session_everywhere(gateway: Gateway, idp: FakeOidcProvider) -> None:
    idp.login_as("frank@example.com", ["eng-ml"])
    frank = sso_sign_in(gateway.base_url, idp).browser
    page = frank.get("/ui/usage")
    cookie = frank.cookies["sb_session"]
    assert frank.post("/ui/logout", data={"csrf_token": csrf(page)}).status_code == 303
    stolen = browser(gateway.base_url)
    stolen.cookies.set("sb_session", cookie, domain="127.0.0.1", path="/ui")
    assert stolen.get("/ui/usage").headers.get("location") == "/ui/login"


@pytest.fixture
def own_gateway(tmp_path: Path, fake_openai: tuple[FakeOpenAI, str], idp: FakeOidcProvider) -> Iterator[Gateway]:
    """A gateway of this test's own (its facades are restarted and replicated)."""
    gw = start_gateway(tmp_path, fake_models(fake_openai[1]), extra_env=sso_env(idp))
    gw.env["SWITCHBOARD_PUBLIC_URL"] = gw.base_url  # both facades behind one address, as behind a load balancer
    yield gw
    gw.stop()


def restart_facade(gw: Gateway, **env: str) -> None:
    gw.processes["facade"].terminate()
    gw.start_service("facade", {"SWITCHBOARD_PUBLIC_URL": gw.base_url, **env})
    gw.wait_ready()


def test_sessions_survive_a_restart_and_work_on_a_second_facade(own_gateway: Gateway,
                                                                 idp: FakeOidcProvider) -> None:
    gw = own_gateway
    idp.login_as("gina@example.com", ["eng-platform"])
    gina = sso_sign_in(gw.base_url, idp).browser
    master = browser(gw.base_url)
    login = master.get("/ui/login")
    master.post("/ui/login", data={"csrf_token": csrf(login), "api_key": gw.master_key})
    assert master.get("/ui/teams").status_code == 200

    restart_facade(gw)
    assert gina.get("/ui/usage").status_code == 200
    assert master.get("/ui/teams").status_code == 200

    port = free_port()
    second_url = f"http://127.0.0.1:{port}"
    gw.start_named("facade2", "facade", {"SWITCHBOARD_PORT": str(port), "SWITCHBOARD_PUBLIC_URL": gw.base_url,
                                         "SWITCHBOARD_DATA_DIR": str(gw.data_dir.parent / "facade2-data")})
    gw.wait_ready(url=second_url)
    on_second = browser(second_url)
    on_second.cookies.set("sb_session", gina.cookies["sb_session"], domain="127.0.0.1", path="/ui")
    page = on_second.get("/ui/usage")
    assert page.status_code == 200 and "gina@example.com" in page.text
    # A sign-in begun on one replica ends on the other (no sticky sessions).
    idp.login_as("hank@example.com", ["eng-ml"])
    crossed = sso_sign_in(gw.base_url, idp, callback_base=second_url)
    assert crossed.response.status_code == 200 and crossed.signed_in, crossed.response.text

    # Master-key sign-in turned off: the break-glass session ends, a new one is refused, SSO goes on.
    restart_facade(gw, SWITCHBOARD_UI_MASTER_KEY_LOGIN="false")
    assert master.get("/ui/teams").headers.get("location") == "/ui/login"
    login = master.get("/ui/login")
    refused = master.post("/ui/login", data={"csrf_token": csrf(login), "api_key": gw.master_key})
    assert refused.status_code == 403 and "turned off" in refused.text
    assert gina.get("/ui/usage").status_code == 200


def test_provider_down_or_misconfigured_gives_a_clear_page(own_gateway: Gateway, idp: FakeOidcProvider) -> None:
    gw = own_gateway
    restart_facade(gw, SWITCHBOARD_OIDC_ISSUER=idp.issuer + "/wrong")
    start = browser(gw.base_url).get("/ui/sso/start")
    assert start.status_code == 502 and "misconfigured" in start.text and "SWITCHBOARD_OIDC_ISSUER" in start.text
    assert "Sign in with SSO" in browser(gw.base_url).get("/ui/login").text

    restart_facade(gw, SWITCHBOARD_OIDC_ISSUER=f"http://127.0.0.1:{free_port()}")
    start = browser(gw.base_url).get("/ui/sso/start")
    assert start.status_code == 503 and "did not answer" in start.text

    restart_facade(gw)
    idp.login_as("ivan@example.com", ["eng-ml"])
    idp.down = True
    try:
        start = browser(gw.base_url).get("/ui/sso/start")
        assert start.status_code == 503 and "unavailable" in start.text
    finally:
        idp.down = False
    assert sso_sign_in(gw.base_url, idp).signed_in
