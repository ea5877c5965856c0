"""The dashboard in a real Chromium (Debian's, driven by Playwright) against a real gateway and the fake provider.

One flow, as an operator lives it: sign in with the master key, create a key in the UI and read it from the
dialog, use it with the openai SDK, find the request and its cost on the Usage page, revoke the key in the UI
and see the gateway refuse it. Along the way: a hostile key alias renders as text, and a virtual key's
session sees only its own key and usage. Screenshots of every page go to tests/artifacts/dashboard/.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import openai
import pytest

from tests.harness import Gateway

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "dashboard"
HOSTILE_ALIAS = "<script>alert(1)</script>"

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (see requirements-test.txt)")
if shutil.which(CHROMIUM) is None:
    pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=["--headless", "--no-sandbox", "--disable-gpu",
                                            "--disable-background-networking"])
        yield chromium
        chromium.close()


def shot(page: sync_api.Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page: sync_api.Page, base_url: str, credential: str) -> None:
    page.goto(f"{base_url}/ui/login")
    page.fill("input[name=api_key]", credential)
    page.click("button:has-text('Sign in')")
    page.wait_for_url("**/ui/*")


def create_key_in_ui(page: sync_api.Page, alias: str, models: list[str]) -> str:
    """Fills the "Create key" form and returns the key read from the one-time dialog."""
    page.goto(page.url.split("/ui/")[0] + "/ui/keys")
    page.click("summary:has-text('Create key')")
    page.fill("#create-key input[name=key_alias]", alias)
    page.select_option("#create-key select[name=models]", models)
    page.fill("#create-key input[name=max_budget]", "5")
    page.fill("#create-key input[name=rpm_limit]", "600")
    page.fill("#create-key input[name=duration]", "30d")
    page.click("#create-key button:has-text('Create key')")
    dialog = page.locator("dialog#new-key")
    dialog.wait_for(state="visible")
    assert "will not be shown again" in dialog.inner_text()
    key = page.inner_text("#new-key-value").strip()
    assert key.startswith("sk-")
    return key


def wait_for_row(page: sync_api.Page, url: str, request_id: str, timeout: float = 15) -> sync_api.Locator:
    """Reloads the Usage page until the request's ledger row is there (settlement is asynchronous)."""
    deadline = time.monotonic() + timeout
    row = page.locator(f"#request-log tr[data-request-id='{request_id}']")
    while True:
        page.goto(url)
        if row.count() == 1:
            return row
        if time.monotonic() > deadline:
            raise AssertionError(f"request {request_id} never appeared on the Usage page")
        time.sleep(0.3)


def chat(base_url: str, key: str, model: str = "fake-good") -> tuple[str, openai.types.chat.ChatCompletion]:
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hello from the dashboard test"}])
    return raw.headers["x-request-id"], raw.parse()


def test_dashboard_flow(browser: sync_api.Browser, gateway: Gateway) -> None:
    base = gateway.base_url
    alerts: list[str] = []
    admin = browser.new_context(viewport={"width": 1360, "height": 900})
    page = admin.new_page()

    def on_dialog(dialog: sync_api.Dialog) -> None:
        if dialog.type != "confirm":
            alerts.append(dialog.message)
        dialog.accept()
    page.on("dialog", on_dialog)

    page.goto(f"{base}/ui/keys")
    assert page.url.endswith("/ui/login"), "an anonymous visitor is sent to sign in"
    shot(page, "01-sign-in")
    sign_in(page, base, gateway.master_key)

    key = create_key_in_ui(page, "browser-flow", ["fake-good"])
    shot(page, "02-new-key-dialog")
    page.click("dialog#new-key button:has-text('I have copied it')")
    other = create_key_in_ui(page, HOSTILE_ALIAS, ["fake-good", "fake-echo"])
    page.goto(f"{base}/ui/keys")
    assert page.locator("#keys td", has_text=HOSTILE_ALIAS).count() == 1, "the alias renders as text"
    page.fill("input[name=q]", "browser-flow")
    page.click("button:has-text('Search')")
    assert page.locator("#keys tbody tr").count() == 1
    page.goto(f"{base}/ui/keys?sort=alias&dir=asc")
    shot(page, "03-keys")

    request_id, completion = chat(base, key)
    assert completion.usage is not None and completion.usage.total_tokens > 0
    other_request_id, _ = chat(base, other, "fake-echo")

    page.goto(f"{base}/ui/models")
    good = page.locator("#models tbody[data-model='fake-good']")
    assert good.locator("td.name code").inner_text() == "fake-good"
    cells = good.locator("td").all_inner_texts()
    assert "$2.5" in cells and "$10" in cells and "healthy" in cells and "us" in cells
    shot(page, "04-models")

    row = wait_for_row(page, f"{base}/ui/usage", request_id)
    ledger = httpx.get(f"{base}/spend/logs", headers=gateway.admin(), timeout=10).json()
    expected = next(r for r in ledger if r["request_id"] == request_id)
    assert expected["cost_micros"] > 0
    cells = row.locator("td").all_inner_texts()
    assert "fake-good" in cells and "browser-flow" in cells
    whole, fraction = divmod(expected["cost_micros"], 1_000_000)
    assert f"${whole}.{fraction:06d}" in cells, cells
    assert any(c.startswith("facade>router>openai:") for c in cells) and "us" in cells
    if page.locator("canvas#usage-chart").count():
        page.wait_for_function("document.getElementById('usage-chart').width > 0")
    else:
        assert page.locator("#per-day").is_visible(), "without the chart library the per-day table shows"
    shot(page, "05-usage")
    page.fill("form.filters input[name=model]", "fake-echo")
    page.click("form.filters button:has-text('Apply')")
    page.wait_for_url("**model=fake-echo**")
    assert page.locator(f"#request-log tr[data-request-id='{other_request_id}']").count() == 1
    assert page.locator(f"#request-log tr[data-request-id='{request_id}']").count() == 0
    today = datetime.now(UTC).date()
    page.goto(f"{base}/ui/usage?from={today}&to={today}&key_id={expected['api_key']}")
    shown = page.locator("#request-log tbody tr[data-request-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.requestId)")
    assert shown == [request_id]
    page.goto(f"{base}/ui/usage?from={today + timedelta(days=1)}")
    assert page.locator("#request-log tbody tr[data-request-id]").count() == 0
    csv = page.request.get(f"{base}/ui/usage.csv").text()
    assert request_id in csv and other_request_id in csv

    page.goto(f"{base}/ui/teams")
    shot(page, "06-teams")
    page.goto(f"{base}/ui/connect")
    assert page.inner_text("#base-url") == f"{base}/cursor"
    assert page.locator(".names code", has_text="fake-good").count() == 1
    shot(page, "07-connect-cursor")

    # A virtual key's session: its own key and its own usage only; admin pages refused.
    holder = browser.new_context(viewport={"width": 1360, "height": 900})
    own = holder.new_page()
    sign_in(own, base, key)
    own.goto(f"{base}/ui/keys")
    assert own.locator("#keys tbody tr").count() == 1 and own.locator("#keys td", has_text="browser-flow").count()
    assert own.locator("#create-key").count() == 0
    wait_for_row(own, f"{base}/ui/usage", request_id)
    assert own.locator(f"#request-log tr[data-request-id='{other_request_id}']").count() == 0
    shot(own, "08-usage-as-virtual-key")
    assert own.goto(f"{base}/ui/teams").status == 403
    holder.close()

    # Revoke in the UI; the gateway refuses the key.
    page.goto(f"{base}/ui/keys?q=browser-flow")
    page.click("#keys tbody tr button:has-text('Revoke')")
    page.wait_for_url("**/ui/keys")
    revoked = page.locator("#keys tbody tr", has_text="browser-flow")
    assert revoked.locator(".status").inner_text() == "revoked"
    assert revoked.locator("button").count() == 0, "a revoked key offers no actions"
    deadline = time.monotonic() + 5
    while True:
        try:
            chat(base, key)
        except openai.AuthenticationError:
            break
        assert time.monotonic() < deadline, "the revoked key still works"
        time.sleep(0.2)
    shot(page, "09-keys-after-revoke")
    assert alerts == [], f"a page ran a script it should have shown as text: {alerts}"
    admin.close()
