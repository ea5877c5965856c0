"""The dashboard in a real Chromium (Debian's, driven by Playwright) against a real gateway and the fake provider.

First one flow, as an operator lives it: sign in with the master key, create a team and keys in the UI (the
team picked on the key form, a provider key that shows only its last four), use a key with the openai SDK,
read the request, its cost and the budgets on the Usage page, see every configured model and why one is not
live, test the key from Connect Cursor, change a key's limits, block and revoke it (each asks first) and see
the gateway refuse it. Then every page, signed in as the admin and as a virtual key, at 1280 and 390 px wide:
no console error, no request leaving the gateway, nothing wider than the window, every table inside its card,
every field labelled, the skip link first in the focus order. Screenshots go to tests/artifacts/dashboard/.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from cryptography.fernet import Fernet

from tests.conftest import fake_models
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway, start_gateway

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "dashboard"
HOSTILE_ALIAS = "<script>alert(1)</script>"
WIDTHS = (1280, 390)
#: A configured model whose credential is not in the environment: listed, not live, with the reason.
OFFLINE = {"name": "offline-model", "deployments": [{"provider": "anthropic", "model": "claude-sonnet-4-5",
                                                     "api_key": "${SB_BROWSER_TEST_UNSET_KEY}",
                                                     "jurisdiction": "eu"}]}

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (see requirements-test.txt)")
if shutil.which(CHROMIUM) is None:
    pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str]) -> Iterator[Gateway]:
    """A gateway of its own: it seals provider keys (bring your own key) and has a model that is not live."""
    gw = start_gateway(tmp_path_factory.mktemp("browser"), [*fake_models(fake_openai[1]), OFFLINE],
                       extra_env={"SWITCHBOARD_ENCRYPTION_KEY": Fernet.generate_key().decode()})
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # this run's screenshots only
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=["--headless", "--no-sandbox", "--disable-gpu",
                                            "--disable-background-networking"])
        yield chromium
        chromium.close()


@dataclass
class Watched:
    """A browser page with what it reported: console errors, uncaught exceptions, requests to elsewhere."""

    page: sync_api.Page
    base: str
    problems: list[str]
    alerts: list[str]

    def goto(self, path: str) -> sync_api.Response | None:
        return self.page.goto(self.base + path)


def watched(browser: sync_api.Browser, base: str, width: int = 1280) -> Watched:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    seen = Watched(page, base, [], [])
    page.on("console", lambda m: seen.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda exc: seen.problems.append(f"page error: {exc}"))
    page.on("request", lambda r: seen.problems.append(f"external request: {r.url}")
            if not r.url.startswith((base, "data:", "about:")) else None)

    def on_dialog(dialog: sync_api.Dialog) -> None:
        if dialog.type != "confirm":
            seen.alerts.append(dialog.message)
        dialog.accept()
    page.on("dialog", on_dialog)
    return seen


def shot(page: sync_api.Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(w: Watched, credential: str) -> None:
    w.goto("/ui/login")
    w.page.fill("input[name=api_key]", credential)
    w.page.click("button:has-text('Sign in')")
    w.page.wait_for_url("**/ui/usage")


def create_key_in_ui(w: Watched, alias: str, models: list[str], team: str = "", credential: str = "") -> str:
    """Fills the New key form and returns the key read from the one-time dialog."""
    w.goto("/ui/keys/new")
    form = w.page.locator("#create-key")
    form.locator("input[name=key_alias]").fill(alias)
    if team:
        form.locator("select[name=team_id]").select_option(team)
    form.locator("select[name=models]").select_option(models)
    form.locator("input[name=max_budget]").fill("5")
    form.locator("input[name=rpm_limit]").fill("600")
    form.locator("input[name=duration]").fill("30d")
    if credential:
        form.locator("select[name=credential_provider]").select_option("openai")
        form.locator("input[name=credential_secret]").fill(credential)
    form.locator("button:has-text('Create key')").click()
    dialog = w.page.locator("dialog#new-key")
    dialog.wait_for(state="visible")
    assert "will not be shown again" in dialog.inner_text()
    key = w.page.inner_text("#new-key-value").strip()
    assert key.startswith("sk-")
    w.page.click("dialog#new-key button:has-text('I have copied it')")
    return key


def wait_for_row(w: Watched, path: str, request_id: str, timeout: float = 15) -> sync_api.Locator:
    """Reloads the Usage page until the request's ledger row is there (settlement is asynchronous)."""
    deadline = time.monotonic() + timeout
    row = w.page.locator(f"#request-log tr[data-request-id='{request_id}']")
    while True:
        w.goto(path)
        if row.count() == 1:
            return row
        if time.monotonic() > deadline:
            raise AssertionError(f"request {request_id} never appeared on the Usage page")
        time.sleep(0.3)


def chat(base_url: str, key: str, model: str = "fake-good", stream: bool = False) -> str:
    messages = [{"role": "user", "content": "hello from the dashboard test"}]
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0) as client:
        if stream:
            with client.chat.completions.with_streaming_response.create(model=model, messages=messages,
                                                                         stream=True) as raw:
                for _ in raw.iter_lines():
                    pass
                return raw.headers["x-request-id"]
        raw = client.chat.completions.with_raw_response.create(model=model, messages=messages)
        assert raw.parse().usage.total_tokens > 0
        return raw.headers["x-request-id"]


def key_id_of(gateway: Gateway, alias: str) -> str:
    keys = httpx.get(f"{gateway.base_url}/key/list", headers=gateway.admin(), timeout=10).json()["keys"]
    return next(k["key_id"] for k in keys if k["key_alias"] == alias)


def money_text_is_right(text: str, micros: int) -> bool:
    """Cents from a cent up; below a cent at most two significant digits, never rounded up to a cent."""
    if micros >= 10_000:
        return re.fullmatch(r"\$[\d,]+\.\d\d", text) is not None
    digits = text.removeprefix("$0.").lstrip("0")
    return text.startswith("$0.00") and 1 <= len(digits) <= 2 and float(text[1:]) < 0.01


def test_dashboard_flow(browser: sync_api.Browser, gateway: Gateway) -> None:
    base = gateway.base_url
    w = watched(browser, base)
    page = w.page
    w.goto("/ui/keys")
    assert page.url.endswith("/ui/login"), "an anonymous visitor is sent to sign in"
    shot(page, "flow-01-sign-in")
    sign_in(w, gateway.master_key)

    # A team, made in the UI, then picked on the key form.
    w.goto("/ui/teams/new")
    page.fill("#create-team input[name=team_alias]", "Platform")
    page.fill("#create-team input[name=team_id]", "platform")
    page.fill("#create-team input[name=max_budget]", "50")
    page.fill("#create-team input[name=budget_duration]", "30d")
    page.click("#create-team button:has-text('Create team')")
    page.wait_for_url("**/ui/teams/platform?created=1")
    assert "Team created." in page.inner_text("main")

    key = create_key_in_ui(w, "browser-flow", ["fake-good", "fake-echo", "fake-error"], team="platform")
    shot(page, "flow-02-new-key-dialog")
    create_key_in_ui(w, HOSTILE_ALIAS, ["fake-good", "fake-echo"])
    create_key_in_ui(w, "own-provider-key", ["fake-good"], credential="sk-upstream-test-9876")
    w.goto("/ui/keys")
    assert page.locator("#keys a", has_text=HOSTILE_ALIAS).count() == 1, "the alias renders as text"
    flow_row = page.locator("#keys tbody tr", has_text="browser-flow")
    assert flow_row.locator("td[data-label=Team]").inner_text() == "Platform", "the team by its name"
    page.fill("input[name=q]", "browser-flow")
    page.click("button:has-text('Search')")
    assert page.locator("#keys tbody tr").count() == 1
    w.goto(f"/ui/keys/{key_id_of(gateway, 'own-provider-key')}")
    assert "openai ...9876" in page.inner_text("main"), "a provider key shows only its last four"
    assert "sk-upstream-test-9876" not in page.content()

    request_id = chat(base, key)
    stream_id = chat(base, key, "fake-echo", stream=True)
    with pytest.raises(openai.BadRequestError):
        chat(base, key, "fake-error")

    # Models: every configured one, live or not and why; a model's own page with its traffic.
    w.goto("/ui/models")
    good = page.locator("#models tbody[data-model='fake-good']")
    cells = good.locator("td").all_inner_texts()
    assert "$2.50" in cells and "$10.00" in cells and any("live" in c for c in cells)
    offline = page.locator("#models tbody[data-model='offline-model']")
    assert "unavailable" in offline.inner_text() and "SB_BROWSER_TEST_UNSET_KEY" in offline.inner_text()
    assert "200k" in offline.inner_text() or "1M" in offline.inner_text(), "its context window, from the price data"
    shot(page, "flow-03-models")
    page.click("#models a.model-name:has-text('fake-good')")
    page.wait_for_url("**/ui/models/fake-good")
    assert page.locator("figure.chart").count() == 4

    # Usage: the request, its exact cost behind a readable one, names, budgets, charts.
    row = wait_for_row(w, "/ui/usage", request_id)
    wait_for_row(w, "/ui/usage", stream_id)
    ledger = httpx.get(f"{base}/spend/logs", headers=gateway.admin(), timeout=10).json()
    expected = next(r for r in ledger if r["request_id"] == request_id)
    assert expected["cost_micros"] > 0
    cost = row.locator("td[data-label=Cost] span.num")
    whole, fraction = divmod(expected["cost_micros"], 1_000_000)
    assert cost.get_attribute("title") == f"${whole}.{fraction:06d}"
    assert money_text_is_right(cost.inner_text(), expected["cost_micros"]), cost.inner_text()
    assert row.locator("td[data-label=Key]").inner_text() == "browser-flow" and "fake-good/0" in row.inner_text()
    assert page.locator("#breakdown-team td", has_text="Platform").count() == 1, "teams by name, not id"
    assert page.locator("figure.chart").count() == 6
    assert page.locator("#budgets .budget").count() >= 2, "the key's and the team's budget bars"
    assert int(page.locator("#totals .tile:has-text('Errors') .value").inner_text()) >= 1
    shot(page, "flow-04-usage")
    page.select_option("form.filters select[name=key_id]", label="browser-flow")
    page.fill("form.filters input[name=model]", "fake-echo")
    page.click("form.filters button:has-text('Apply')")
    page.wait_for_url("**model=fake-echo**")
    shown = page.locator("#request-log tbody tr[data-request-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.requestId)")
    assert shown == [stream_id]
    csv = page.request.get(f"{base}/ui/usage.csv").text()
    assert request_id in csv and stream_id in csv

    # Connect Cursor: the local address is called out, and the key is tested through /cursor.
    w.goto("/ui/connect")
    assert page.inner_text("#base-url") == f"{base}/cursor"
    assert "Cursor cannot reach" in page.inner_text("#reach-warning")
    page.fill("#public-origin", "https://gw.example.com")
    assert page.inner_text("#base-url") == "https://gw.example.com/cursor"
    assert page.locator("#model-names code", has_text="fake-good").count() == 1
    page.fill("#test-key input[name=key]", key)
    page.select_option("#test-key select[name=model]", "fake-good")
    page.click("#test-key button:has-text('Test this key')")
    page.locator("#test-status.good").wait_for(timeout=15_000)
    assert page.inner_text("#test-answer").strip(), "the model's answer is shown"
    assert "fake-good/0" in page.inner_text("#test-status")
    shot(page, "flow-05-connect-cursor")

    # A key's page: edit its limits; block and revoke ask first.
    key_id = key_id_of(gateway, "browser-flow")
    w.goto(f"/ui/keys/{key_id}")
    page.fill("#edit-key input[name=rpm_limit]", "7")
    page.fill("#edit-key input[name=max_budget]", "3")
    page.click("#edit-key button:has-text('Save changes')")
    page.wait_for_url(f"**/ui/keys/{key_id}?saved=1")
    info = next(k for k in httpx.get(f"{base}/key/list", headers=gateway.admin(), timeout=10).json()["keys"]
                if k["key_id"] == key_id)
    assert (info["rpm_limit"], info["max_budget"], info["team_id"]) == (7, 3.0, "platform")
    confirmations: list[str] = []
    page.on("dialog", lambda d: confirmations.append(d.message) if d.type == "confirm" else None)
    page.click("form[action$='/revoke'] button:has-text('Revoke')")
    page.wait_for_url("**/ui/keys")
    assert any("cannot" in m or "for good" in m for m in confirmations), confirmations
    revoked = page.locator("#keys tbody tr", has_text="browser-flow")
    assert revoked.locator("td[data-label=Status]").inner_text().strip() == "revoked"
    assert revoked.locator("button").count() == 0, "a revoked key offers no actions"
    deadline = time.monotonic() + 5
    while True:
        try:
            chat(base, key)
        except openai.AuthenticationError:
            break
        assert time.monotonic() < deadline, "the revoked key still works"
        time.sleep(0.2)
    shot(page, "flow-06-keys-after-revoke")
    assert w.alerts == [], f"a page ran a script it should have shown as text: {w.alerts}"
    assert w.problems == [], w.problems
    page.context.close()


CHECKS = """() => {
  const out = [];
  const width = document.documentElement.scrollWidth;
  if (width > window.innerWidth) out.push(`page is ${width}px wide in a ${window.innerWidth}px window`);
  for (const wrap of document.querySelectorAll('.table-wrap')) {
    if (wrap.scrollWidth > wrap.clientWidth + 1) out.push(`table ${wrap.querySelector('table')?.id} overflows`);
  }
  for (const field of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (!field.labels?.length && !field.getAttribute('aria-label') && !field.getAttribute('aria-labelledby'))
      out.push(`unlabelled field ${field.name || field.id}`);
  }
  for (const button of document.querySelectorAll('button, a.button')) {
    if (!button.textContent.trim() && !button.getAttribute('aria-label')) out.push('a button without a name');
  }
  for (const img of document.querySelectorAll('img')) if (!img.hasAttribute('alt')) out.push(`img without alt`);
  if (!document.querySelector('h1')) out.push('no heading');
  return out;
}"""


def walk(browser: sync_api.Browser, base: str, credential: str, role: str, pages: dict[str, str]) -> None:
    """Every page (name → path) at every width: checked, and a screenshot each."""
    for width in WIDTHS:
        w = watched(browser, base, width)
        sign_in(w, credential)
        for name, path in pages.items():
            response = w.goto(path)
            assert response is not None and response.status == 200, (role, width, path)
            w.page.keyboard.press("Tab")
            assert w.page.evaluate("document.activeElement.className") == "skip", "the skip link is first"
            w.page.evaluate("document.activeElement.blur()")
            assert w.page.evaluate(CHECKS) == [], (role, width, path)
            shot(w.page, f"{role}-{width}-{name}")
        assert w.problems == [], (role, width, w.problems)
        assert w.alerts == []
        w.page.context.close()


def test_every_page_as_admin_and_as_a_virtual_key_at_both_widths(browser: sync_api.Browser,
                                                                  gateway: Gateway) -> None:
    base = gateway.base_url
    team = httpx.post(f"{base}/team/new", json={"team_id": "walkers", "team_alias": "Walkers", "max_budget": 20,
                                                "budget_duration": "7d"}, headers=gateway.admin(), timeout=10)
    assert team.status_code == 200, team.text
    user = httpx.post(f"{base}/user/new", json={"user_id": "ada", "user_alias": "Ada", "max_budget": 10,
                                                "budget_duration": "30d"}, headers=gateway.admin(), timeout=10)
    assert user.status_code == 200, user.text
    key = gateway.create_key(key_alias="walker", team_id="walkers", user_id="ada", max_budget=2,
                             budget_duration="30d", soft_budget=0.000001)  # its first request passes it: an alert
    for model in ("fake-good", "fake-echo", "fake-tool"):
        chat(base, key, model)
    chat(base, key, "fake-good", stream=True)
    key_id = key_id_of(gateway, "walker")
    shared = {"usage": "/ui/usage", "usage-7d": "/ui/usage?range=7d", "keys": "/ui/keys", "key": f"/ui/keys/{key_id}",
              "models": "/ui/models", "model": "/ui/models/fake-good", "connect": "/ui/connect", "alerts": "/ui/alerts"}
    walk(browser, base, gateway.master_key, "admin", {
        **shared, "usage-30d-by-team": "/ui/usage?range=30d&split=team", "key-new": "/ui/keys/new",
        "teams": "/ui/teams", "team-new": "/ui/teams/new", "team": "/ui/teams/walkers", "users": "/ui/users",
        "usage-by-user": "/ui/usage?range=7d&split=user"})
    walk(browser, base, key, "virtual-key", shared)


def test_the_bell_shows_a_soft_budget_alert_when_opened(browser: sync_api.Browser, gateway: Gateway) -> None:
    key = gateway.create_key(key_alias="ringer", soft_budget=0.000001)
    chat(gateway.base_url, key)
    for width in WIDTHS:
        w = watched(browser, gateway.base_url, width)
        sign_in(w, key)
        count = w.page.locator("[data-bell-count]")
        deadline = time.monotonic() + 15
        while not count.is_visible():  # settlement is asynchronous: reload until the alert is in
            assert time.monotonic() < deadline, "the bell never showed a count"
            time.sleep(0.3)
            w.goto("/ui/usage")
        assert count.inner_text() == "1"
        w.page.click("details[data-bell] summary")
        panel = w.page.locator(".bell-panel")
        panel.wait_for(state="visible")
        assert "'ringer'" in panel.inner_text() and "soft budget" in panel.inner_text()
        assert w.page.evaluate(CHECKS) == [], width
        shot(w.page, f"bell-{width}")
        w.page.click(".bell-panel a:has-text('All alerts')")
        w.page.wait_for_url("**/ui/alerts")
        assert w.page.locator("#alerts tbody tr").count() == 1
        assert w.problems == [], w.problems
        w.page.context.close()
