"""The web UI's compare page (issue 28): one input run on two versions side by side, with their
results, output files and run times; a version the user may not see is refused, as a form
without the page's CSRF token is."""

import json
from collections.abc import Iterator

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from core.settings import settings
from tests.integration.browser import click_through, errors_of, screenshot, sign_in
from tests.integration.test_web_ui_jobs import _too_wide_for_a_phone
from tests.utils import API_URL, PASSWORD

STORE = f"http://{settings.s3_client_endpoint}"
# Two versions of one model that take the same input (worded differently) and answer apart.
SAYS = """from pathlib import Path

from modelfarm import Input


class Predictor:
    def predict(
        self,
        words: int = Input(2, ge=1, le=5, description="{description}"),
        output_dir: Path = None,
    ) -> dict:
        said = " ".join(["{word}"] * words)
        (output_dir / "said.txt").write_text(said)
        return {{"version": {number}, "said": said}}
"""
OTHER_INPUTS = "def predict(text: str = 'x'):\n    return {'text': text}\n"


@pytest.fixture(scope="module")
def two_versions(new_user_module):
    """Two READY versions of one model (no requirements: each builds in seconds), a READY
    version of another model that takes other inputs, and their owner."""
    owner = new_user_module()
    model = owner.create_model()
    first, second = (
        owner.ready(
            {"predict.py": SAYS.format(description=wording, word=word, number=number)},
            model_id=model["id"],
        )  # fmt: skip
        for number, word, wording in ((1, "hi", "How many words."), (2, "ho", "Words to say."))
    )
    other = owner.ready({"predict.py": OTHER_INPUTS})
    return owner, first, second, other


@pytest.fixture
def signed_in(two_versions) -> Iterator[tuple[httpx.Client, str]]:
    """An HTTP client signed in as the versions' owner through the sign-in form, and the CSRF
    token its pages carry."""
    owner = two_versions[0]
    with httpx.Client(base_url=API_URL, timeout=60) as client:
        token = client.get("/signin").cookies["modelfarm_csrf"]
        credentials = {"email": owner.email, "password": PASSWORD, "csrf_token": token}
        assert client.post("/signin", data=credentials).status_code == 303
        yield client, token


def _sections(browser) -> list:
    return browser.find_elements(By.CSS_SELECTOR, "section.compared-job")


def _all_shown(browser) -> bool:
    """Whether every job ended and the page loaded again with their results."""
    results = browser.find_elements(By.CSS_SELECTOR, "section.compared-job pre.result")
    return len(results) == 2 and all(result.text for result in results)


def test_compare_two_versions_on_one_input_shows_both_results_and_run_times(browser, two_versions):
    owner, first, second, _ = two_versions
    sign_in(browser, API_URL, owner.email, PASSWORD)
    click_through(browser, "header a[href='/compare']")
    picker = Select(browser.find_element(By.ID, "pick-versions"))
    for version in (first, second):
        picker.select_by_value(version["id"])
    click_through(browser, "form.pick button")
    words = browser.find_element(By.CSS_SELECTOR, "form.compare input[name='words']")
    assert (words.get_attribute("value"), words.get_attribute("max")) == ("2", "5")
    assert _too_wide_for_a_phone(browser) == []
    words.clear()
    words.send_keys("3")
    click_through(browser, "form.compare button")
    assert browser.current_url.startswith(f"{API_URL}/compare/")
    # The page reloads itself once every job has ended: an element read meanwhile may be gone.
    WebDriverWait(browser, 120, ignored_exceptions=[StaleElementReferenceException]).until(
        _all_shown
    )
    sections = _sections(browser)
    job_ids = [section.get_attribute("data-job-id") for section in sections]
    # Side by side in the order chosen (the select lists the newest version first).
    versions = {version["id"]: version for version in (first, second)}
    jobs = [owner.job(job_id) for job_id in job_ids]
    assert {job["version_id"] for job in jobs} == set(versions)
    said = {first["id"]: "hi hi hi", second["id"]: "ho ho ho"}
    for section, job in zip(sections, jobs, strict=True):
        version = versions[job["version_id"]]
        assert job["inputs"]["words"] == 3
        result = json.loads(section.find_element(By.CSS_SELECTOR, "pre.result").text)
        assert result == {"version": version["number"], "said": said[version["id"]]}
        assert f"v{version['number']}" in section.find_element(By.TAG_NAME, "h2").text
        assert section.find_element(By.CSS_SELECTOR, "[data-status]").text == "SUCCEEDED"
        assert float(section.find_element(By.CSS_SELECTOR, ".took").text.split()[0]) > 0
        assert section.find_element(By.CSS_SELECTOR, ".waited").text.endswith(" s")
        link = section.find_element(By.LINK_TEXT, "said.txt").get_attribute("href")
        assert link.startswith(f"{STORE}/"), link  # the store's origin, not the UI's
        download = httpx.get(link)
        assert download.headers["content-disposition"].startswith("attachment")
        assert download.text == result["said"]
    assert _too_wide_for_a_phone(browser) == []
    assert errors_of(browser) == []
    screenshot(browser, "compare")


def test_the_model_page_sends_the_ticked_versions_to_compare(browser, two_versions):
    owner, first, second, _ = two_versions
    sign_in(browser, API_URL, owner.email, PASSWORD)
    browser.get(f"{API_URL}/models/{first['model_id']}")
    for version in (first, second):
        browser.find_element(
            By.CSS_SELECTOR, f"input[form='compare'][value='{version['id']}']"
        ).click()
    click_through(browser, "form#compare button")
    chosen = browser.find_elements(By.CSS_SELECTOR, "form.compare input[name='versions']")
    assert {each.get_attribute("value") for each in chosen} == {first["id"], second["id"]}
    assert browser.find_element(By.CSS_SELECTOR, "form.compare input[name='words']")


def test_versions_with_other_inputs_are_refused_with_a_sentence(signed_in, two_versions):
    client, _ = signed_in
    _, first, _, other = two_versions
    page = client.get("/compare", params={"versions": [first["id"], other["id"]]})
    assert page.status_code == 422
    assert "takes other inputs than" in page.text and 'name="words"' not in page.text


def test_a_version_the_user_may_not_see_is_refused(signed_in, two_versions, new_user):
    client, token = signed_in
    owner, first, _, _ = two_versions
    stranger = new_user()
    hidden = stranger.create_model(visibility="private")
    unseen = stranger.new_version(hidden["id"], None)
    ids = [first["id"], unseen["id"]]
    jobs_before = len(owner.jobs())
    page = client.get("/compare", params={"versions": ids})
    assert page.status_code == 404 and "No version with that id" in page.text
    ran = client.post("/compare", data={"versions": ids, "words": "1", "csrf_token": token})
    assert ran.status_code == 404 and "No version with that id" in ran.text
    assert hidden["name"] not in client.get("/compare").text  # nor offered in the select
    assert len(owner.jobs()) == jobs_before


def test_a_compare_without_the_pages_csrf_token_is_refused(signed_in, two_versions):
    client, token = signed_in
    owner, first, second, _ = two_versions
    form = {"versions": [first["id"], second["id"]], "words": "1"}
    forged = client.post("/compare", data=form)  # the cookies, no field: another site
    assert forged.status_code == 403 and "reload the page" in forged.json()["detail"]
    wrong = client.post("/compare", data={**form, "csrf_token": "x" + token})
    assert wrong.status_code == 403
    made = client.post("/compare", data={**form, "csrf_token": token})
    assert made.status_code == 303 and made.headers["location"].startswith("/compare/")
    job_ids = made.headers["location"].removeprefix("/compare/").split(",")
    assert [owner.job(each)["version_id"] for each in job_ids] == [first["id"], second["id"]]


def test_an_alias_moved_to_the_new_version_and_rolled_back_in_one_click_each(browser, two_versions):
    owner, first, second, _ = two_versions
    sign_in(browser, API_URL, owner.email, PASSWORD)
    browser.get(f"{API_URL}/models/{first['model_id']}")
    for version in (second, first):  # a deploy of the new one, then a roll back
        click_through(browser, f"tr[data-version='{version['id']}'] form.alias button")
        aliases = owner.aliases(first["model_id"])
        assert [(a["name"], a["version_id"]) for a in aliases] == [("prod", version["id"])]
        shown = browser.find_element(By.CSS_SELECTOR, "ul.aliases").text
        assert shown == f"prod → v{version['number']}"
