"""Single sign-on and self-serve keys in a real Chromium (Debian's, driven by Playwright), against a real gateway,
the fake OpenID Connect provider and the fake OpenAI provider.

A developer signs in through the provider ("Sign in with SSO"), creates a key of their own within the
operator's limits, lands on Connect Cursor filled with it, tests it there (a real streamed request through the
``/cursor`` path, as Cursor sends), makes a request with the openai SDK, and sees both on their Usage page with
their key's budget. Nothing on the way logs a console error. Screenshots go to tests/artifacts/sso/.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.conftest import fake_models
from tests.fakes.oidc_provider import FakeOidcProvider
from tests.fakes.openai_provider import FakeOpenAI
from tests.harness import Gateway, start_gateway

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "sso"

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (see requirements-test.txt)")
if shutil.which(CHROMIUM) is None:
    pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeOidcProvider]:
    provider = FakeOidcProvider().start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, fake_openai: tuple[FakeOpenAI, str],
            idp: FakeOidcProvider) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path_factory.mktemp("browser-sso"), fake_models(fake_openai[1]), extra_env={
        "SWITCHBOARD_OIDC_ISSUER": idp.issuer, "SWITCHBOARD_OIDC_CLIENT_ID": idp.client_id,
        "SWITCHBOARD_OIDC_CLIENT_SECRET": idp.client_secret, "SWITCHBOARD_OIDC_GROUP_TEAMS": "eng-platform=platform",
        "SWITCHBOARD_SELF_SERVE_MAX_BUDGET": "10", "SWITCHBOARD_SELF_SERVE_MAX_DURATION": "30d",
        "SWITCHBOARD_SELF_SERVE_MODELS": "fake-good,fake-echo"})
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=["--headless", "--no-sandbox", "--disable-gpu",
                                            "--disable-background-networking"])
        yield chromium
        chromium.close()


def shot(page: sync_api.Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_developer_signs_in_with_sso_makes_a_key_connects_and_sees_usage(
        gateway: Gateway, idp: FakeOidcProvider, browser: sync_api.Browser) -> None:
    base = gateway.base_url
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("dialog", lambda dialog: dialog.accept())

    # Sign in through the provider.
    idp.login_as("dana@example.com", ["eng-platform"])
    page.goto(base + "/ui/login")
    shot(page, "01-login")
    page.click("#sso-signin")
    page.wait_for_url("**/ui/usage")
    assert "dana@example.com" in page.inner_text("header") and "Developer" in page.inner_text("header")

    # Create a key: the form says the limits; the key lands on Connect Cursor, shown once.
    page.goto(base + "/ui/keys/new")
    assert "at most $10" in page.inner_text("#self-serve-limits")
    form = page.locator("#create-key")
    form.locator("input[name=key_alias]").fill("dana-cursor")
    form.locator("select[name=models]").select_option(["fake-good"])
    form.locator("button:has-text('Create key')").click()
    page.locator("#new-key-value").wait_for(state="visible")
    key = page.inner_text("#new-key-value").strip()
    assert key.startswith("sk-") and "dana-cursor" in page.inner_text("main")
    assert page.input_value("#test-key input[name=key]") == key
    names = page.inner_text("#model-names")
    assert "fake-good" in names and "fake-echo" not in names  # the new key's models
    shot(page, "02-connect-with-new-key")

    # Test it from the page (a streamed request on the /cursor path), then call it as any client would.
    page.select_option("#test-key select[name=model]", "fake-good")
    page.click("#test-key button:has-text('Test this key')")
    page.locator("#test-status.good").wait_for(timeout=15_000)
    assert page.inner_text("#test-answer").strip()
    with openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="fake-good", messages=[{"role": "user", "content": "hello from dana"}])
        request_id = raw.headers["x-request-id"]
        with pytest.raises(openai.PermissionDeniedError):  # outside the self-serve models
            client.chat.completions.create(model="fake-tool", messages=[{"role": "user", "content": "hi"}])

    # Usage: the request on the developer's own page, with their key's budget.
    row = page.locator(f"#request-log tr[data-request-id='{request_id}']")
    deadline = time.monotonic() + 20
    while True:
        page.goto(base + "/ui/usage")
        if row.count() == 1:
            break
        assert time.monotonic() < deadline, "the request never appeared on the Usage page"
        time.sleep(0.3)
    assert "dana-cursor" in row.inner_text()
    assert "$10" in page.inner_text("main")  # the key's budget bar
    shot(page, "03-usage")

    # The key list shows the key with its actions; nobody else's.
    page.goto(base + "/ui/keys")
    rows = page.locator("#keys tbody tr")
    assert rows.count() == 1 and "dana-cursor" in rows.first.inner_text()
    assert rows.first.locator("button:has-text('Revoke')").count() == 1
    assert problems == []
    context.close()
