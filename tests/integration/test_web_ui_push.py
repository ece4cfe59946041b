"""Pushing a version from the model page (issue 28): a folder packed in the browser as
`modelfarm push` packs it, or a ZIP, sent with an upload progress bar, then the build log live
until READY or FAILED; and who may push, with what."""

import io
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.integration import stack
from tests.integration.browser import errors_of, screenshot, sign_in
from tests.utils import API_URL, PASSWORD, make_zip

SMALL_LIMIT_PORT = 8023
# Records, in order, each change the page shows: the log growing, and each status it says.
WATCH = """
window.seen = [];
const log = document.getElementById("push-log");
const state = document.getElementById("push-state");
new MutationObserver(() => { if (log.textContent) window.seen.push("log"); })
  .observe(log, {childList: true, characterData: true, subtree: true});
new MutationObserver(() => window.seen.push(state.textContent))
  .observe(state, {childList: true, characterData: true, subtree: true});
"""


def _model_folder(root: Path) -> Path:
    """A small model's folder, with what packing leaves out beside it."""
    folder = root / "tiny"
    (folder / "weights").mkdir(parents=True)
    (folder / "samples").mkdir()
    marker = uuid.uuid4().hex  # a package of its own: this build is not one served before
    (folder / "predict.py").write_text(
        f'"""{marker}"""\n\n\nclass Predictor:\n    def predict(self, input_path, output_dir):\n'
        '        (output_dir / "out.txt").write_bytes(input_path.read_bytes())\n'
    )
    (folder / "weights" / "b.bin").write_bytes(bytes(range(256)) * 64)
    (folder / "weights" / "a.bin").write_bytes(b"\x00" * 1000)
    (folder / "weights-notes.txt").write_text("sorted after weights/ by path parts\n")
    (folder / "train.py").write_text("left out\n")
    (folder / "samples" / "one.txt").write_text("left out\n")
    return folder


def _push(browser, selector: str, path: Path) -> dict:
    """Sends path to the page's file input; waits for the build's end. What the page showed."""
    browser.execute_script(WATCH)
    browser.find_element(By.CSS_SELECTOR, selector).send_keys(str(path))
    WebDriverWait(browser, 300).until(
        lambda _: (
            browser.find_element(By.ID, "push-done").is_displayed()
            or browser.find_element(By.ID, "push-error").is_displayed()
        )
    )
    link = browser.find_elements(By.CSS_SELECTOR, "#push-done a")
    return {
        "seen": browser.execute_script("return window.seen"),
        "state": browser.find_element(By.ID, "push-state").text,
        "progress": browser.find_element(By.ID, "push-progress").get_attribute("value"),
        "log": browser.find_element(By.ID, "push-log").text,
        "error": browser.find_element(By.ID, "push-error").text,
        "version": link[0].get_attribute("href").rsplit("/", 1)[-1] if link else None,
    }


def test_push_a_folder_twice_with_progress_and_the_build_log_live(
    browser, new_user, storage, tmp_path
):
    owner = new_user()
    model = owner.create_model()
    folder = _model_folder(tmp_path)
    sign_in(browser, API_URL, owner.email, PASSWORD)
    browser.get(f"{API_URL}/models/{model['id']}")
    first = _push(browser, "#push-folder", folder)
    assert first["state"].endswith("READY"), first
    assert first["progress"] == "100"
    screenshot(browser, "push")
    assert "log" in first["seen"], first["seen"]
    assert first["seen"].index("log") < first["seen"].index(first["state"]), first["seen"]
    package = storage.get_bytes(f"packages/{first['version']}.zip")
    with zipfile.ZipFile(io.BytesIO(package)) as packed:
        entries = packed.infolist()
    assert [entry.filename for entry in entries] == [
        "predict.py", "weights/a.bin", "weights/b.bin", "weights-notes.txt",
    ]  # fmt: skip
    assert {(entry.date_time, entry.external_attr >> 16) for entry in entries} == {
        ((2020, 1, 1, 0, 0, 0), 0o644)
    }
    browser.find_element(By.CSS_SELECTOR, "#push-done a").click()
    WebDriverWait(browser, 30).until(lambda _: first["version"] in browser.current_url)

    browser.get(f"{API_URL}/models/{model['id']}")
    second = _push(browser, "#push-folder", folder)
    assert second["state"].endswith("READY"), second
    assert storage.get_bytes(f"packages/{second['version']}.zip") == package
    built = owner.http.get(f"/api/versions/{second['version']}").json()
    assert built["pushed_with"] == "the web UI"
    assert (
        built["reused"]
        and built["image_digest"]
        == owner.http.get(f"/api/versions/{first['version']}").json()["image_digest"]
    )
    browser.get(f"{API_URL}/models/{model['id']}")
    for version in (first["version"], second["version"]):
        row = browser.find_element(By.CSS_SELECTOR, f'tr[data-version="{version}"] td.status')
        assert row.text == "READY"
    assert not errors_of(browser)


def test_a_bad_zip_fails_its_build_with_a_sentence(browser, new_user, tmp_path):
    owner = new_user()
    model = owner.create_model()
    bad = tmp_path / "model.zip"
    bad.write_bytes(b"this is not a ZIP archive at all")
    sign_in(browser, API_URL, owner.email, PASSWORD)
    browser.get(f"{API_URL}/models/{model['id']}")
    shown = _push(browser, "#push-zip", bad)
    assert shown["state"].endswith("FAILED"), shown
    assert shown["progress"] == "100"
    assert "not a valid ZIP" in shown["error"], shown


@contextmanager
def _signed_in(base_url: str, email: str) -> Iterator[tuple[httpx.Client, str]]:
    """A client signed in through the sign-in form, as a browser is; and its CSRF token."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        client.get("/signin")
        token = client.cookies["modelfarm_csrf"]
        form = {"email": email, "password": PASSWORD, "csrf_token": token}
        answer = client.post("/signin", data=form)
        assert answer.status_code == 303 and "modelfarm_session" in client.cookies, answer.text
        yield client, token


def test_only_the_owner_pushes_and_only_with_the_csrf_token(browser, new_user):
    owner, other = new_user(), new_user()
    model = owner.create_model(visibility="public")
    package = make_zip({"predict.py": "class Predictor:\n    pass\n"})
    push = f"/models/{model['id']}/push"
    zipped = {"Content-Type": "application/zip"}
    with _signed_in(API_URL, other.email) as (stranger, token):
        refused = stranger.post(push, content=package, headers={**zipped, "X-CSRF-Token": token})
        assert refused.status_code == 403
        assert refused.json()["detail"] == "Only the owner can change this model"
    sign_in(browser, API_URL, other.email, PASSWORD)
    browser.get(f"{API_URL}/models/{model['id']}")
    assert not browser.find_elements(By.CSS_SELECTOR, "section.push")

    with _signed_in(API_URL, owner.email) as (client, token):
        for headers in (zipped, {**zipped, "X-CSRF-Token": "not-the-token"}):
            answer = client.post(push, content=package, headers=headers)
            assert answer.status_code == 403
            assert "did not come from this farm's page" in answer.json()["detail"]
        form = client.post(push, data={"file": "x"})
        assert form.status_code == 403
        assert client.post(push, data={"csrf_token": token}).status_code == 415
    assert owner.http.get(f"/api/models/{model['id']}/versions").json()["total"] == 0


def test_a_zip_over_the_limit_is_refused_with_a_sentence(browser, new_user, tmp_path):
    owner = new_user()
    model = owner.create_model()
    big = tmp_path / "big.zip"
    big.write_bytes(make_zip({"predict.py": "x" * 100, "weights.bin": uuid.uuid4().bytes * 200}))
    with stack.api_process(SMALL_LIMIT_PORT, tmp_path / "api.log", MAX_PACKAGE_BYTES="1000") as url:
        sign_in(browser, url, owner.email, PASSWORD)
        browser.get(f"{url}/models/{model['id']}")
        shown = _push(browser, "#push-zip", big)
    assert shown["error"] == (
        f"The model ZIP is {big.stat().st_size} bytes; the limit is 1000 bytes "
        "(MODELFARM_MAX_PACKAGE_BYTES). Send a smaller one, leaving out what the model does not "
        "need to run."
    )
    assert shown["version"] is None
    assert owner.http.get(f"/api/models/{model['id']}/versions").json()["total"] == 0


def test_a_folder_without_predict_py_is_not_sent(browser, new_user, tmp_path):
    owner = new_user()
    model = owner.create_model()
    folder = _model_folder(tmp_path)
    (folder / "predict.py").unlink()
    sign_in(browser, API_URL, owner.email, PASSWORD)
    browser.get(f"{API_URL}/models/{model['id']}")
    shown = _push(browser, "#push-folder", folder)
    assert shown["error"] == "This folder has no predict.py at its top: choose a model's folder."
    assert owner.http.get(f"/api/models/{model['id']}/versions").json()["total"] == 0
