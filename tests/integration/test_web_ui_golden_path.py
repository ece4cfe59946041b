"""The web UI's golden path (issue 28), in one browser from start to end: sign up, create a
model, drop the digits folder, see its build log before READY, run the form with the sample
PNG and top_k, and see the predicted label and the CSV as a table; and the create form's
refusals."""

import json
import uuid
from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By

from api.routes.pages import PAGE_SIZE
from core.db import SessionLocal
from core.models import Model, User
from tests.integration.browser import click_through, errors_of, sign_in
from tests.integration.test_web_ui_jobs import DIGITS, LABELS, SAMPLE, _output, _run_from_form
from tests.integration.test_web_ui_push import _push
from tests.utils import API_URL, PASSWORD, remove_user

PASSPHRASE = "a long passphrase"


@pytest.fixture
def signed_up(browser, storage, docker_client) -> Iterator[str]:
    """A new account made through the sign-up page, the browser signed in as it; removed
    afterwards."""
    email = f"ui-{uuid.uuid4().hex[:12]}@example.com"
    browser.delete_all_cookies()
    browser.get(f"{API_URL}/signup")
    browser.find_element(By.NAME, "email").send_keys(email)
    browser.find_element(By.NAME, "password").send_keys(PASSPHRASE)
    click_through(browser, "form.account button")
    assert browser.current_url == f"{API_URL}/models"
    yield email
    with SessionLocal() as session:
        user = session.query(User).filter(User.email == email).one()
    remove_user(user.id, storage, docker_client)


def _create_model(browser, name: str, description: str = "") -> None:
    browser.get(f"{API_URL}/models")
    browser.find_element(By.CSS_SELECTOR, "details.create summary").click()
    form = browser.find_element(By.CSS_SELECTOR, "form.create")
    browser.execute_script("arguments[0].removeAttribute('pattern')", form.find_element(
        By.NAME, "name"))  # fmt: skip  # the farm's own check, not the page's
    form.find_element(By.NAME, "name").send_keys(name)
    form.find_element(By.NAME, "description").send_keys(description)
    click_through(browser, "form.create button")


def test_sign_up_create_push_the_digits_and_run_them(browser, signed_up):
    name = f"digits-{uuid.uuid4().hex[:8]}"
    _create_model(browser, name, "Reads a handwritten digit.")
    assert browser.current_url.startswith(f"{API_URL}/models/")
    assert browser.find_element(By.TAG_NAME, "h1").text == name
    pushed = _push(browser, "#push-folder", DIGITS)
    assert pushed["state"].endswith("READY"), pushed
    assert pushed["seen"].index("log") < pushed["seen"].index(pushed["state"]), pushed["seen"]
    _run_from_form(browser, pushed["version"], "image", SAMPLE, top_k=2)
    result = json.loads(browser.find_element(By.ID, "output").text)
    assert result["label"] == LABELS[SAMPLE.name] and len(result["top"]) == 2
    table = _output(browser, "probabilities.csv").find_element(By.CSS_SELECTOR, "table.csv")
    assert len(table.find_elements(By.CSS_SELECTOR, "tbody tr")) == 10
    assert errors_of(browser) == []


def test_the_create_form_says_what_is_wrong_with_a_name(browser, signed_up):
    _create_model(browser, "Not A Name!")
    assert (
        "name: String should match pattern" in browser.find_element(By.CSS_SELECTOR, ".error").text
    )
    _create_model(browser, "taken")
    _create_model(browser, "taken")
    assert "You already have a model named 'taken'" in browser.find_element(
        By.CSS_SELECTOR, ".error").text  # fmt: skip
    errors_of(browser)  # the pages' own 422 and 409, read out


def test_the_models_page_pages_through_many_models(browser, new_user):
    farm = new_user()
    with SessionLocal() as session:
        session.add_all(
            Model(owner_id=uuid.UUID(farm.user_id), name=f"many-{number:03d}")
            for number in range(PAGE_SIZE + 3)
        )
        session.commit()
    sign_in(browser, API_URL, farm.email, PASSWORD)
    shown = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "table.models td.name")]
    assert len(shown) == PAGE_SIZE
    assert f"1–{PAGE_SIZE} of {PAGE_SIZE + 3} models" in browser.find_element(
        By.CSS_SELECTOR, "p.count").text  # fmt: skip
    click_through(browser, "a[rel='next']")
    later = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "table.models td.name")]
    assert len(later) == 3 and not set(shown) & set(later)
