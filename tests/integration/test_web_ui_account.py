"""The web UI's tokens and usage page and its defences (issue 28), in a real browser: an API
token made on the page with scopes, shown once, copied, enforced by the API, then revoked;
usage as the farm counts it; script in a model's description, log, result and error that never
runs (escaped, and every page under a Content-Security-Policy); another user's private models,
versions and jobs neither listed nor reachable by link; forms refused without their CSRF."""

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from api.security_headers import CONTENT_SECURITY_POLICY
from core.settings import settings
from tests.integration.browser import click_through, errors_of, screenshot, sign_in
from tests.utils import API_URL, PASSWORD, Farm, make_zip

SCRIPT = "<script>window.pwned=1</script>"
IMAGE = '<img src=x onerror="window.pwned=1">'
PAYLOAD = f'"></pre></td>{SCRIPT}{IMAGE}'
HOSTILE = f"""import time

from modelfarm import Input

PAYLOAD = {PAYLOAD!r}


def predict(seconds: float = Input(0.0, ge=0, le=10), fail: bool = False) -> dict:
    print(PAYLOAD)
    time.sleep(seconds)
    if fail:
        raise ValueError(PAYLOAD)
    return {{"said": PAYLOAD}}
"""
PACKAGE = make_zip({"predict.py": HOSTILE})


@contextmanager
def signed_in(farm: Farm) -> Iterator[httpx.Client]:
    """An HTTP client holding the user's page session and CSRF cookies, as a browser would."""
    with httpx.Client(base_url=API_URL, timeout=60) as client:
        csrf = client.get("/signin").cookies["modelfarm_csrf"]
        credentials = {"email": farm.email, "password": PASSWORD, "csrf_token": csrf}
        answer = client.post("/signin", data=credentials)
        assert answer.status_code == 303, answer.text
        yield client


@contextmanager
def bearing(token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=API_URL, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def _main_text(browser) -> str:
    return browser.find_element(By.TAG_NAME, "main").text


def test_a_token_made_on_the_page_is_shown_once_works_in_its_scopes_and_is_revoked(
    browser, new_user
):
    farm = new_user()
    sign_in(browser, API_URL, farm.email, PASSWORD)
    click_through(browser, "header a[href='/tokens']")
    assert "No API tokens yet." in _main_text(browser)
    browser.find_element(By.NAME, "name").send_keys("ci")
    click_through(browser, "form.token button")  # no scope: the API's own rule, on the form
    assert browser.find_element(By.CSS_SELECTOR, ".error").text.startswith(
        "scopes: List should have at least 1 item"
    )
    assert browser.find_element(By.NAME, "name").get_attribute("value") == "ci"
    errors_of(browser)  # that page's own 422, read out
    browser.find_element(By.CSS_SELECTOR, "input[name='scopes'][value='read']").click()
    browser.find_element(By.NAME, "expires_in_days").send_keys("30")
    click_through(browser, "form.token button")
    secret = browser.find_element(By.ID, "new-token").get_attribute("value")
    assert secret.startswith("mf_")
    browser.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": API_URL, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"],
    })  # fmt: skip
    browser.find_element(By.CSS_SELECTOR, "button[data-copy='new-token']").click()
    WebDriverWait(browser, 10).until(
        lambda page: page.find_element(By.ID, "copy-status").text == "Copied."
    )
    screenshot(browser, "tokens")
    clipboard = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "navigator.clipboard.readText().then(done, (error) => done(String(error)));"
    )
    assert clipboard == secret
    with bearing(secret) as api:
        assert api.get("/api/users/me").json()["email"] == farm.email
        refused = api.post("/api/models", json={"name": f"m-{uuid.uuid4().hex[:10]}"})
        assert refused.status_code == 403 and "lacks the 'build' scope" in refused.text
        browser.get(f"{API_URL}/tokens")  # shown once: never again
        assert secret not in browser.page_source and not browser.find_elements(By.ID, "new-token")
        (listed,) = farm.tokens()
        assert (listed["name"], listed["scopes"]) == ("ci", ["read"]) and listed["last_used_at"]
        row = browser.find_element(By.CSS_SELECTOR, f"tr[data-token='{listed['id']}']")
        assert row.find_element(By.CSS_SELECTOR, ".name").text == "ci"
        assert row.find_element(By.CSS_SELECTOR, ".scopes").text == "read"
        expires = row.find_element(By.CSS_SELECTOR, ".expires time").get_attribute("datetime")
        assert expires[:10] == listed["expires_at"][:10]
        assert row.find_element(By.CSS_SELECTOR, ".last-used time")  # it was just used
        click_through(browser, f"tr[data-token='{listed['id']}'] form.revoke button")
        assert browser.current_url == f"{API_URL}/tokens"
        assert "No API tokens yet." in _main_text(browser)
        assert api.get("/api/users/me").status_code == 401
    assert farm.tokens() == []
    assert errors_of(browser) == []


def _usage(browser) -> dict[str, tuple[int, int]]:
    """The tokens page's usage: what is used, and its limit, by what."""
    browser.get(f"{API_URL}/tokens")
    meters = browser.find_elements(By.CSS_SELECTOR, "[data-usage]")
    return {
        meter.get_attribute("data-usage"): (
            int(meter.get_attribute("data-used")), int(meter.get_attribute("data-limit"))
        )
        for meter in meters
    }  # fmt: skip


def test_usage_shows_the_users_storage_jobs_and_builds_against_their_limits(browser, new_user):
    farm = new_user()
    sign_in(browser, API_URL, farm.email, PASSWORD)
    quota = settings.storage_quota_mb * 1024**2
    jobs, builds = settings.max_active_jobs_per_user, settings.max_active_builds_per_user
    assert _usage(browser) == {"storage": (0, quota), "jobs": (0, jobs), "builds": (0, builds)}
    version = farm.ready(PACKAGE)
    assert _usage(browser) == {
        "storage": (len(PACKAGE), quota), "jobs": (0, jobs), "builds": (0, builds)
    }  # fmt: skip
    amount = browser.find_element(By.CSS_SELECTOR, "[data-usage='storage'] .amount").text
    assert amount == f"{len(PACKAGE)} B of {quota / 1024**3:.1f} GB"  # a package under 1 KB
    job = farm.submit(version["id"], inputs={"seconds": 8}).json()["job"]
    another = make_zip({"predict.py": f"{HOSTILE}\n# {uuid.uuid4()}\n"})  # built anew
    building = farm.start_build(another)
    during = _usage(browser)
    assert (during["jobs"][0], during["builds"][0]) == (1, 1)
    assert during["storage"][0] >= len(PACKAGE) + len(another)
    assert farm.wait_job(job["id"])["status"] == "SUCCEEDED"
    farm.wait_version(building["id"])
    after = _usage(browser)
    assert (after["jobs"][0], after["builds"][0]) == (0, 0)
    assert errors_of(browser) == []


@pytest.fixture(scope="module")
def hostile(new_user_module):
    """A private model whose description, log lines, result and error carry script: its owner,
    the model, its version, a job that succeeded and one that failed."""
    owner = new_user_module()
    model = owner.create_model(description=PAYLOAD)
    version = owner.ready(PACKAGE, model_id=model["id"])
    jobs = [owner.submit(version["id"], inputs=inputs).json()["job"]
            for inputs in ({}, {"fail": True})]  # fmt: skip
    succeeded, failed = (owner.wait_job(job["id"]) for job in jobs)
    assert (succeeded["status"], failed["status"]) == ("SUCCEEDED", "FAILED")
    return owner, model, version, succeeded, failed


def _pages(model: dict, version: dict, *jobs: dict) -> list[str]:
    return [
        "/models", f"/models/{model['id']}", f"/versions/{version['id']}",
        *(f"/jobs/{job['id']}" for job in jobs),
    ]  # fmt: skip


def test_script_in_a_models_description_log_result_and_error_never_runs(browser, hostile):
    owner, model, version, succeeded, failed = hostile
    pages = _pages(model, version, succeeded, failed)
    with signed_in(owner) as client:
        for path in pages:
            answer = client.get(path)
            assert answer.status_code == 200, path
            assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["referrer-policy"] == "same-origin"
            assert SCRIPT not in answer.text and "<img src=x" not in answer.text, path
        assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in client.get(pages[1]).text
    sign_in(browser, API_URL, owner.email, PASSWORD)
    for path in pages:
        browser.get(f"{API_URL}{path}")
        if path.startswith("/jobs/"):  # its log lines come by its events, put in as text
            log = browser.find_element(By.ID, "log")
            WebDriverWait(browser, 30).until(lambda _, log=log: PAYLOAD in log.text)
        assert browser.execute_script("return typeof window.pwned") == "undefined", path
        assert browser.find_elements(By.CSS_SELECTOR, "img[src='x']") == [], path
        assert not browser.execute_script(
            "return [...document.scripts].some((script) => script.text.includes('pwned'))"
        )
        assert errors_of(browser) == [], path  # a blocked inline script would be logged
    browser.get(f"{API_URL}/models/{model['id']}")
    assert PAYLOAD in browser.find_element(By.CSS_SELECTOR, ".about").text  # shown, as text
    # The browser holds the page to its policy: an inline script put into it does not run.
    ran = browser.execute_script(
        "const script = document.createElement('script');"
        "script.textContent = 'window.pwned = 1'; document.body.append(script);"
        "return typeof window.pwned"
    )
    assert ran == "undefined"
    assert any("Content Security Policy" in error for error in errors_of(browser))


def test_another_user_sees_none_of_a_users_private_things(browser, hostile, new_user):
    owner, model, version, succeeded, failed = hostile
    token = owner.create_token("owner-ci", ["read"])
    other = new_user()
    sign_in(browser, API_URL, other.email, PASSWORD)
    browser.get(f"{API_URL}/models?q={model['name']}")
    assert f"No model is named like “{model['name']}”." in _main_text(browser)
    browser.get(f"{API_URL}/jobs")
    assert "No jobs." in _main_text(browser)
    browser.get(f"{API_URL}/tokens")
    assert "No API tokens yet." in _main_text(browser)
    for path in _pages(model, version, succeeded, failed)[1:]:
        browser.get(f"{API_URL}{path}")
        assert browser.find_element(By.TAG_NAME, "h1").text == "Not found", path
        assert "pwned" not in browser.page_source, path
    errors_of(browser)  # those pages' own 404s, read out
    with signed_in(other) as client, bearing(token["token"]) as api:
        for path in _pages(model, version, succeeded, failed)[1:]:
            answer = client.get(path)
            assert answer.status_code == 404 and "pwned" not in answer.text, path
        assert model["name"] not in client.get("/models").text
        assert succeeded["id"] not in client.get("/jobs").text
        csrf = client.cookies["modelfarm_csrf"]
        revoke = client.post(f"/tokens/{token['id']}/revoke", data={"csrf_token": csrf})
        assert revoke.status_code == 404 and "no API token with that id" in revoke.text
        assert api.get("/api/users/me").status_code == 200  # the owner's token still works


def test_the_token_forms_without_their_csrf_token_are_refused(new_user):
    farm = new_user()
    token = farm.create_token("ci", ["read"])
    revoke = f"/tokens/{token['id']}/revoke"
    with signed_in(farm) as client, bearing(token["token"]) as api:
        csrf = client.cookies["modelfarm_csrf"]
        for forged in ({}, {"csrf_token": "x" + csrf}):  # from another site: no or a wrong one
            refused = client.post(revoke, data=forged)
            assert refused.status_code == 403 and "reload the page" in refused.text
            made = client.post("/tokens", data={"name": "forged", "scopes": "read", **forged})
            assert made.status_code == 403
        assert api.get("/api/users/me").status_code == 200
        assert [each["name"] for each in farm.tokens()] == ["ci"]
        made = client.post("/tokens", data={"name": "run", "scopes": ["read", "run"],
                                            "csrf_token": csrf})  # fmt: skip
        assert made.status_code == 201 and made.headers["cache-control"] == "no-store"
        assert "mf_" in made.text and made.headers["content-security-policy"]
        revoked = client.post(revoke, data={"csrf_token": csrf})
        assert revoked.status_code == 303 and revoked.headers["location"] == "/tokens"
        assert api.get("/api/users/me").status_code == 401
        assert [each["name"] for each in farm.tokens()] == ["run"]


def test_the_api_page_and_the_signed_out_pages_have_the_headers_and_no_inline_script(anonymous):
    for path in ("/docs", "/docs/oauth2-redirect", "/signin", "/signup"):
        answer = anonymous.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert answer.headers["x-content-type-options"] == "nosniff", path
        assert answer.headers["referrer-policy"] == "same-origin", path
        scripts = re.findall(r"<script\b[^>]*>", answer.text)
        assert all(" src=" in script for script in scripts), path  # each one a file
        assert bool(scripts) == path.startswith("/docs"), path
