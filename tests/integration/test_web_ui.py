"""The web UI in a real browser (issue 28): sign up, sign in and out with a session cookie,
CSRF on every form, and the models a user may see, searched by name."""

import uuid

import httpx
import pytest
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from api import throttle
from core.db import SessionLocal
from core.models import User
from core.settings import settings
from tests.integration.browser import click_through, errors_of, loaded_from, screenshot, sign_in
from tests.utils import API_URL, PASSWORD, remove_user


@pytest.fixture(autouse=True)
def address_budgets():
    """The browser signs up and in from 127.0.0.1, where other tests (Schemathesis' fuzzed
    logins among them) count too: each test here starts with that address's budgets of failed
    logins and of registrations whole, so that a wrong password or a taken email shows its own
    sentence, not the throttle's."""
    limiter = FixedWindowRateLimiter(storage_from_string(settings.redis_url))
    limiter.clear(throttle.FAILED_LOGINS_PER_ADDRESS, "login", "127.0.0.1")
    limiter.clear(throttle.REGISTRATIONS_PER_ADDRESS, "register", "127.0.0.1")


@pytest.fixture
def browser_user(storage, docker_client):
    """An email for an account the browser makes; the account is removed afterwards."""
    email = f"ui-{uuid.uuid4().hex[:12]}@example.com"
    yield email
    with SessionLocal() as session:
        user = session.query(User).filter(User.email == email).one_or_none()
    if user is not None:
        remove_user(user.id, storage, docker_client)


def _fill(browser, path: str, email: str, password: str) -> None:
    browser.get(f"{API_URL}{path}")
    browser.find_element(By.NAME, "email").send_keys(email)
    browser.find_element(By.NAME, "password").send_keys(password)
    click_through(browser, "form.account button")


def _names(browser) -> list[str]:
    return [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "table.models td.name")]


def test_sign_up_see_the_models_search_them_and_sign_out(browser, browser_user, new_user):
    other = new_user()
    shared = other.create_model(visibility="public", description="shared with everyone")
    other.new_version(shared["id"], None)  # waiting for its upload
    hidden = other.create_model(visibility="private")
    browser.delete_all_cookies()
    browser.get(f"{API_URL}/")
    assert browser.current_url == f"{API_URL}/signin"
    _fill(browser, "/signup", browser_user, "a long passphrase")
    assert browser.current_url == f"{API_URL}/models"
    assert browser_user in browser.find_element(By.TAG_NAME, "header").text
    assert shared["name"] in _names(browser) and hidden["name"] not in _names(browser)
    session = {cookie["name"]: cookie for cookie in browser.get_cookies()}["modelfarm_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and not session["secure"]
    screenshot(browser, "models")
    browser.get(f"{API_URL}/models?q={shared['name']}")
    assert _names(browser) == [shared["name"]]
    row = browser.find_element(By.CSS_SELECTOR, f"tr[data-model='{shared['id']}']").text
    assert "another user" in row and "public" in row and "shared with everyone" in row
    assert [url for url in loaded_from(browser) if not url.startswith(API_URL)] == []
    assert errors_of(browser) == []
    click_through(browser, f"a[href='/models/{shared['id']}']")
    assert browser.current_url == f"{API_URL}/models/{shared['id']}"
    version = browser.find_element(By.CSS_SELECTOR, "table.versions tbody tr").text
    assert version.startswith("v1 UPLOADING no")
    assert "No aliases." in browser.find_element(By.TAG_NAME, "main").text
    browser.get(f"{API_URL}/models/{hidden['id']}")  # another's private model: not there
    assert "No model with that id" in browser.find_element(By.CSS_SELECTOR, ".error").text
    click_through(browser, "header form button")
    assert browser.current_url == f"{API_URL}/signin"
    browser.get(f"{API_URL}/models")
    assert browser.current_url == f"{API_URL}/signin"
    # The token the cookie held ended with the sign-out, not only the cookie.
    stale = httpx.get(f"{API_URL}/models", cookies={"modelfarm_session": session["value"]})
    assert stale.status_code == 303 and stale.headers["location"] == "/signin"


def test_sign_in_says_what_went_wrong_and_then_works(browser, new_user):
    farm = new_user()
    browser.delete_all_cookies()
    _fill(browser, "/signin", farm.email, "not the password")
    assert browser.current_url == f"{API_URL}/signin"
    assert browser.find_element(By.CSS_SELECTOR, ".error").text == "Incorrect email or password."
    assert browser.find_element(By.NAME, "email").get_attribute("value") == farm.email
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    click_through(browser, "form.account button")
    assert browser.current_url == f"{API_URL}/models"


def test_a_form_without_the_pages_csrf_token_is_refused(anonymous, new_user):
    farm = new_user()
    first = anonymous.get("/signin")
    token = first.cookies["modelfarm_csrf"]
    assert f'value="{token}"' in first.text
    credentials = {"email": farm.email, "password": PASSWORD}
    forged = anonymous.post("/signin", data=credentials)  # the cookie, no field: another site
    assert forged.status_code == 403 and "reload the page" in forged.json()["detail"]
    wrong = anonymous.post("/signin", data={**credentials, "csrf_token": "x" + token})
    assert wrong.status_code == 403
    signed_in = anonymous.post("/signin", data={**credentials, "csrf_token": token})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/models"
    assert "modelfarm_session" in signed_in.cookies


def test_sign_up_refuses_a_short_password_and_a_taken_email(anonymous, new_user):
    token = anonymous.get("/signup").cookies["modelfarm_csrf"]
    short = anonymous.post("/signup", data={"email": "x@example.com", "password": "short",
                                            "csrf_token": token})  # fmt: skip
    assert short.status_code == 422 and "at least 8 characters" in short.text
    taken = anonymous.post("/signup", data={"email": new_user().email, "password": PASSWORD,
                                            "csrf_token": token})  # fmt: skip
    assert taken.status_code == 409 and "sign in instead" in taken.text


TYPED_STREAMING = """import time
from typing import Literal

from modelfarm import Input


def predict(
    words: int = Input(3, description="How many words.", ge=1, le=10),
    mode: Literal["plain", "loud"] = "plain",
    end: bool = False,
):
    for number in range(words):
        print(f"saying {number}")
        word = f"w{number}"
        yield (word.upper() if mode == "loud" else word) + " "
        time.sleep(0.3)
    if end:
        yield "."
"""


@pytest.fixture(scope="module")
def typed_streaming(new_user_module):
    owner = new_user_module()
    return owner, owner.ready({"predict.py": TYPED_STREAMING})


def test_a_versions_run_form_comes_from_its_schema_and_its_job_streams_live(
    browser, typed_streaming
):
    owner, version = typed_streaming
    sign_in(browser, API_URL, owner.email, PASSWORD)
    browser.get(f"{API_URL}/versions/{version['id']}")
    words = browser.find_element(By.NAME, "words")
    assert (words.get_attribute("type"), words.get_attribute("min")) == ("number", "1")
    assert (words.get_attribute("max"), words.get_attribute("value")) == ("10", "3")
    assert "How many words." in browser.find_element(By.CSS_SELECTOR, "form.run").text
    screenshot(browser, "run-form")
    mode = browser.find_element(By.NAME, "mode")
    options = [o.get_attribute("value") for o in mode.find_elements(By.TAG_NAME, "option")]
    assert options == ["plain", "loud"]
    assert browser.find_element(By.NAME, "end").get_attribute("type") == "checkbox"
    mode.find_element(By.CSS_SELECTOR, "option[value='loud']").click()
    browser.find_element(By.NAME, "end").click()
    click_through(browser, "form.run button")
    assert browser.current_url.startswith(f"{API_URL}/jobs/")
    output = browser.find_element(By.ID, "output")
    WebDriverWait(browser, 60).until(lambda _: output.text.startswith("W0"))
    assert browser.find_element(By.ID, "status").text == "RUNNING"  # live, before its end
    WebDriverWait(browser, 60).until(
        lambda page: page.find_element(By.ID, "status").text == "SUCCEEDED"
    )
    WebDriverWait(browser, 30).until(lambda page: '"W0 W1 W2 ."' in page.find_element(
        By.ID, "output").text)  # fmt: skip
    log = browser.find_element(By.ID, "log")
    WebDriverWait(browser, 30).until(lambda _: "saying 2" in log.text)
    assert errors_of(browser) == []


def test_the_run_form_shows_the_farms_refusal(browser, typed_streaming):
    owner, version = typed_streaming
    sign_in(browser, API_URL, owner.email, PASSWORD)
    browser.get(f"{API_URL}/versions/{version['id']}")
    words = browser.find_element(By.NAME, "words")
    browser.execute_script("arguments[0].removeAttribute('max')", words)  # past the page's check
    words.clear()
    words.send_keys("99")
    click_through(browser, "form.run button")
    error = browser.find_element(By.CSS_SELECTOR, ".error").text
    assert "inputs.words: 99 is greater than the maximum of 10" in error
    # Beside its field too, the form keeping what was sent.
    beside = browser.find_element(By.CSS_SELECTOR, ".field-error[data-field='words']")
    assert beside.text.startswith("99 is greater than the maximum of 10")
    assert browser.find_element(By.NAME, "words").get_attribute("value") == "99"


def test_point_an_alias_cancel_a_job_and_list_jobs_by_status(browser, typed_streaming):
    owner, version = typed_streaming
    sign_in(browser, API_URL, owner.email, PASSWORD)
    browser.get(f"{API_URL}/models/{version['model_id']}")
    form = f"tr[data-version='{version['id']}'] form.alias"
    alias = browser.find_element(By.CSS_SELECTOR, f"{form} input[name='alias']")
    alias.clear()
    alias.send_keys("Not An Alias!")
    click_through(browser, f"{form} button")
    assert "cannot be an alias" in browser.find_element(By.CSS_SELECTOR, ".error").text
    errors_of(browser)  # that page's own 422, read out
    click_through(browser, f"{form} button")  # the field is back at "prod"
    assert "prod → v1" in browser.find_element(By.CSS_SELECTOR, "ul.aliases").text
    assert owner.aliases(version["model_id"])[0]["version_id"] == version["id"]
    description = browser.find_element(By.CSS_SELECTOR, "form.edit input[name='description']")
    description.clear()
    description.send_keys("Says words, one at a time.")
    browser.find_element(By.CSS_SELECTOR, "form.edit option[value='public']").click()
    click_through(browser, "form.edit button")
    assert (
        "Says words, one at a time. · public"
        in browser.find_element(By.CSS_SELECTOR, ".about").text
    )
    assert owner.model(version["model_id"])["visibility"] == "public"
    screenshot(browser, "model")
    job = owner.submit(version["id"], inputs={"words": 10}).json()["job"]  # three seconds
    browser.get(f"{API_URL}/jobs/{job['id']}")
    click_through(browser, "form.cancel button")
    WebDriverWait(browser, 30).until(
        lambda page: page.find_element(By.ID, "status").text == "CANCELED"
    )
    assert owner.job(job["id"])["status"] == "CANCELED"
    browser.get(f"{API_URL}/jobs?status=CANCELED")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.jobs tbody tr")
    assert job["id"] in [row.get_attribute("data-job-row") for row in rows]
    assert {row.find_element(By.CSS_SELECTOR, ".status").text for row in rows} == {"CANCELED"}
    assert errors_of(browser) == []
