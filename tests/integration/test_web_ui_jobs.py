"""The web UI's job and version pages in a real browser (issue 28): a job's result, its output
files with previews from the object store's origin, its queue wait and run time, "Run again";
a batch's progress and items; the jobs list by model, a page at a time; a version's Dockerfile,
lock and snippets, which run as they are."""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from api.routes.job_pages import ITEMS_PAGE, JOBS_PAGE
from core.db import SessionLocal
from core.models import Job
from core.settings import settings
from modelfarm.packing import pack
from tests.integration.browser import click_through, errors_of, screenshot, sign_in
from tests.utils import API_URL, PASSWORD, ROOT, inline

DIGITS = ROOT / "examples" / "digits-onnx"
SAMPLE = DIGITS / "samples" / "digit-3.png"
LABELS = json.loads((DIGITS / "samples" / "labels.json").read_text())
STORE = f"http://{settings.s3_client_endpoint}"
VENV_BIN = Path(sys.executable).parent  # where `modelfarm` is installed

PREVIEWS = """import csv
import json
from pathlib import Path

from modelfarm import Input


class Predictor:
    def predict(
        self,
        picture: Path,
        rows: int = Input(60, ge=1, le=500, description="Rows of the table."),
        output_dir: Path = None,
    ) -> dict:
        data = picture.read_bytes()
        (output_dir / "picture.png").write_bytes(data)
        (output_dir / "notes.txt").write_text("<script>document.title = 'ran'</script> & co")
        (output_dir / "data.json").write_text(json.dumps({"rows": rows, "size": len(data)}))
        with (output_dir / "table.csv").open("w", newline="") as sink:
            writer = csv.writer(sink)
            writer.writerow(["n", "square"])
            writer.writerows([n, n * n] for n in range(rows))
        return {"size": len(data), "rows": rows}
"""


@pytest.fixture(scope="module")
def previews(new_user_module):
    """A public READY version of a model whose outputs are a picture, a text, JSON and a CSV
    (no requirements: it builds in seconds), and its owner."""
    owner = new_user_module()
    model = owner.create_model(visibility="public")
    return owner, owner.ready({"predict.py": PREVIEWS}, model_id=model["id"])


@pytest.fixture(scope="module")
def digits(new_user_module, tmp_path_factory):
    """The digits example (examples/digits-onnx) READY, and its owner."""
    owner = new_user_module()
    package = tmp_path_factory.mktemp("digits") / "digits.zip"
    pack(DIGITS, package)
    return owner, owner.ready(package.read_bytes())


def _wait_for_end(browser, status: str = "SUCCEEDED") -> None:
    """Until the job's page shows its end, loaded again with its files (the page reloads
    itself at the end: an element read meanwhile may be gone)."""
    WebDriverWait(browser, 120, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda page: (
            page.find_element(By.ID, "status").text == status
            and page.find_elements(By.CSS_SELECTOR, "form.again")
        )
    )


def _output(browser, name: str):
    return browser.find_element(By.CSS_SELECTOR, f"li.output[data-output='{name}']")


def _job_id(browser) -> str:
    path = urlsplit(browser.current_url).path
    assert path.startswith("/jobs/"), browser.current_url
    return path.removeprefix("/jobs/")


WIDER_THAN_THE_WINDOW = """
return [...document.querySelectorAll("main *")]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
  .filter(e => !e.closest(".scroll, pre"))
  .map(e => e.tagName.toLowerCase() + (e.className ? "." + e.className : ""))"""


def _too_wide_for_a_phone(browser) -> list[str]:
    """What sticks out of the page at 375 px wide (wide tables and code scroll in boxes of
    their own, which do not): the page must read without scrolling sideways."""
    browser.set_window_size(375, 800)
    try:
        wide = browser.execute_script("return document.documentElement.scrollWidth")
        inner = browser.execute_script("return window.innerWidth")
        return browser.execute_script(WIDER_THAN_THE_WINDOW) if wide > inner else []
    finally:
        browser.set_window_size(1280, 1000)


def _run_from_form(browser, version_id: str, file_field: str, path: Path, **values) -> str:
    browser.get(f"{API_URL}/versions/{version_id}")
    browser.find_element(By.NAME, file_field).send_keys(str(path))
    for name, value in values.items():
        field = browser.find_element(By.NAME, name)
        field.clear()
        field.send_keys(str(value))
    click_through(browser, "form.run button")
    _wait_for_end(browser)
    return _job_id(browser)


def test_the_digits_job_shows_its_label_and_its_csv_as_a_table(browser, digits):
    owner, version = digits
    sign_in(browser, API_URL, owner.email, PASSWORD)
    _run_from_form(browser, version["id"], "image", SAMPLE, top_k=2)
    result = json.loads(browser.find_element(By.ID, "output").text)
    assert result["label"] == LABELS[SAMPLE.name] and len(result["top"]) == 2
    table = _output(browser, "probabilities.csv").find_element(By.CSS_SELECTOR, "table.csv")
    header = [cell.text for cell in table.find_elements(By.CSS_SELECTOR, "thead th")]
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert header == ["digit", "probability"] and len(rows) == 10
    assert rows[LABELS[SAMPLE.name]].text.split()[0] == str(LABELS[SAMPLE.name])
    assert float(browser.find_element(By.ID, "took").text.split()[0]) > 0
    assert browser.find_element(By.ID, "waited").text.endswith(" s")
    assert errors_of(browser) == []
    screenshot(browser, "job")


def test_outputs_preview_from_the_store_escaped_and_download_from_there(browser, previews):
    owner, version = previews
    sign_in(browser, API_URL, owner.email, PASSWORD)
    _run_from_form(browser, version["id"], "picture", SAMPLE, rows=60)
    picture = _output(browser, "picture.png").find_element(By.TAG_NAME, "img")
    assert picture.get_attribute("src").startswith(f"{STORE}/")
    WebDriverWait(browser, 10).until(
        lambda _: browser.execute_script("return arguments[0].naturalWidth", picture) > 0
    )
    notes = _output(browser, "notes.txt").find_element(By.CSS_SELECTOR, "pre.preview")
    assert notes.text == "<script>document.title = 'ran'</script> & co"  # shown, not run
    assert browser.title.startswith("Job ")
    data = _output(browser, "data.json").find_element(By.CSS_SELECTOR, "pre.preview").text
    assert data == json.dumps({"rows": 60, "size": SAMPLE.stat().st_size}, indent=2)
    table = _output(browser, "table.csv")
    assert len(table.find_elements(By.CSS_SELECTOR, "tbody tr")) == 50  # of 60
    assert "first 50 rows" in table.text
    for link in browser.find_elements(By.CSS_SELECTOR, "li.output a"):
        url = link.get_attribute("href")
        assert url.startswith(f"{STORE}/"), url  # never the UI's own origin
        download = httpx.get(url)
        assert download.status_code == 200
        assert download.headers["content-disposition"].startswith("attachment")
    assert _too_wide_for_a_phone(browser) == []
    assert errors_of(browser) == []


def test_run_again_makes_a_second_job_on_the_same_inputs(browser, previews):
    owner, version = previews
    sign_in(browser, API_URL, owner.email, PASSWORD)
    first = _run_from_form(browser, version["id"], "picture", SAMPLE, rows=7)
    click_through(browser, "form.again button")
    _wait_for_end(browser)
    second = _job_id(browser)
    assert second != first
    assert owner.job(second)["inputs"] == owner.job(first)["inputs"]
    assert owner.job(second)["inputs"]["rows"] == 7
    assert owner.output_files(second)["picture.png"] == SAMPLE.read_bytes()
    assert json.loads(browser.find_element(By.ID, "output").text)["rows"] == 7
    assert errors_of(browser) == []


def test_run_again_fills_the_form_in_when_the_files_are_gone(browser, previews):
    owner, version = previews
    sign_in(browser, API_URL, owner.email, PASSWORD)
    job_id = _run_from_form(browser, version["id"], "picture", SAMPLE, rows=9)
    with SessionLocal() as session:  # as the retention does, MODELFARM_JOB_RETENTION_DAYS on
        session.get(Job, job_id).data_removed = True
        session.commit()
    browser.refresh()
    assert "were removed" in browser.find_element(By.CSS_SELECTOR, "main").text
    click_through(browser, "form.again button")
    assert browser.current_url == f"{API_URL}/versions/{version['id']}?again={job_id}"
    note = browser.find_element(By.CSS_SELECTOR, ".note").text
    assert f"picture (was {SAMPLE.name})" in note
    assert browser.find_element(By.NAME, "rows").get_attribute("value") == "9"
    assert errors_of(browser) == []


def test_the_jobs_list_filters_by_model_and_pages(browser, previews, warm_model, new_user):
    (_, version), (_, other) = previews, warm_model
    farm = new_user()
    for _ in range(JOBS_PAGE + 1):  # waiting for their uploads: none runs
        created = farm.submit(version["id"], inputs={"picture": {"upload": True}})
        assert created.status_code == 201, created.text
    elsewhere = farm.submit(other["id"], batch_size=1).json()["job"]["id"]
    sign_in(browser, API_URL, farm.email, PASSWORD)
    browser.get(f"{API_URL}/jobs")
    names = [o.text for o in browser.find_elements(By.CSS_SELECTOR, "select[name=model] option")]
    assert len(names) == 3 and names[0] == "every model"
    browser.get(f"{API_URL}/jobs?model={version['model_id']}")
    first = _rows(browser)
    assert len(first) == JOBS_PAGE and elsewhere not in first
    screenshot(browser, "jobs")
    count = browser.find_element(By.CSS_SELECTOR, ".count").text
    assert f"1–{JOBS_PAGE} of {JOBS_PAGE + 1}." in count
    models = {cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "td.model")}
    assert models == {f"{farm.model(version['model_id'])['name']} v{version['number']}"}
    click_through(browser, "a[rel=next]")
    assert f"model={version['model_id']}" in browser.current_url
    last = _rows(browser)
    assert len(last) == 1 and not set(last) & set(first)
    browser.get(f"{API_URL}/jobs?model={other['model_id']}&status=UPLOADING")
    assert _rows(browser) == [elsewhere]
    assert errors_of(browser) == []


def _rows(browser) -> list[str]:
    rows = browser.find_elements(By.CSS_SELECTOR, "table.jobs tbody tr")
    return [row.get_attribute("data-job-row") for row in rows]


def test_the_version_page_shows_its_build_and_snippets_that_run(
    browser, digits, previews, tmp_path
):
    owner, version = digits
    sign_in(browser, API_URL, owner.email, PASSWORD)
    browser.get(f"{API_URL}/versions/{version['id']}")
    dockerfile = browser.find_element(By.CSS_SELECTOR, "pre.dockerfile").text
    assert "\nFROM " in dockerfile and dockerfile.strip() == owner.dockerfile(version["id"]).strip()
    lock = browser.find_elements(By.CSS_SELECTOR, "table.lock tbody tr")
    assert {"onnxruntime", "numpy", "pillow"} <= {row.text.split()[0].lower() for row in lock}
    assert browser.find_element(By.CSS_SELECTOR, "code.digest").text == version["image_digest"]
    snippets = _snippets(browser)
    assert version["id"] in snippets["curl"] and version["id"] in snippets["python"]
    model = owner.model(version["model_id"])["name"]
    command = f"modelfarm predict {model}:{version['number']} -i image=@path/to/image -i top_k=3"
    assert command in snippets["cli"]
    screenshot(browser, "version")
    assert _too_wide_for_a_phone(browser) == []
    assert errors_of(browser) == []
    _run_the_snippets(browser, previews, tmp_path)


def _snippets(browser) -> dict[str, str]:
    found = browser.find_elements(By.CSS_SELECTOR, "pre.snippet")
    return {pre.get_attribute("data-snippet"): pre.text for pre in found}


def _run_the_snippets(browser, previews, folder: Path) -> None:
    """Each snippet of the previews model's version, run as it is shown, makes a job that
    succeeds on the file put at its path/to/picture."""
    owner, version = previews
    sign_in(browser, API_URL, owner.email, PASSWORD)
    browser.get(f"{API_URL}/versions/{version['id']}")
    snippets = _snippets(browser)
    (folder / "path" / "to").mkdir(parents=True)
    (folder / "path" / "to" / "picture").write_bytes(SAMPLE.read_bytes())
    env = {**os.environ, "MODELFARM_TOKEN": owner.token, "MODELFARM_API": API_URL,
           "XDG_CONFIG_HOME": str(folder), "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}  # fmt: skip
    run = {"cwd": folder, "env": env, "capture_output": True, "text": True, "timeout": 120}
    curl = subprocess.run(["bash", "-c", snippets["curl"]], **run)
    assert json.loads(curl.stdout)["job"]["status"] == "SUCCEEDED", curl.stdout + curl.stderr
    downloaded = folder / "outputs" / "picture.png"
    python = subprocess.run([sys.executable, "-c", snippets["python"]], **run)
    assert python.stdout.startswith("SUCCEEDED"), python.stdout + python.stderr
    assert downloaded.read_bytes() == SAMPLE.read_bytes()
    downloaded.unlink()
    predict = snippets["cli"].splitlines()[-1]  # the login line before it asks for a password
    cli = subprocess.run(["bash", "-c", predict], **run)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert downloaded.read_bytes() == SAMPLE.read_bytes()


def test_a_batch_page_shows_its_progress_and_its_items_a_page_at_a_time(
    browser, warm_model, new_user
):
    _, version = warm_model
    farm = new_user()
    total = ITEMS_PAGE + 5
    batch = [inline(f"item-{i}", name=f"in-{i}.txt") for i in range(total)]
    job = farm.submit(version["id"], {"Prefer": "wait=60"}, batch=batch).json()["job"]
    assert farm.wait_job(job["id"], timeout=120)["status"] == "SUCCEEDED"
    sign_in(browser, API_URL, farm.email, PASSWORD)
    browser.get(f"{API_URL}/jobs/{job['id']}")
    progress = browser.find_element(By.ID, "items-progress")
    assert (progress.get_attribute("value"), progress.get_attribute("max")) == (str(total),) * 2
    assert f"{total} of {total} done" in browser.find_element(By.ID, "items-count").text
    rows = browser.find_elements(By.CSS_SELECTOR, "table.items tbody tr")
    assert [row.get_attribute("data-item") for row in rows] == [str(i) for i in range(ITEMS_PAGE)]
    assert '"item-0"' in rows[0].text
    link = rows[0].find_element(By.CSS_SELECTOR, "a")
    assert link.text == "out.txt" and link.get_attribute("href").startswith(f"{STORE}/")
    assert httpx.get(link.get_attribute("href")).content == b"item-0"
    click_through(browser, "a[rel=next]")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.items tbody tr")
    later = [row.get_attribute("data-item") for row in rows]
    assert later == [str(i) for i in range(ITEMS_PAGE, total)]
    assert errors_of(browser) == []
