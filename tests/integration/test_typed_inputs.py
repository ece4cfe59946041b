"""Typed inputs on the real stack: the schema read from predict() at build time, inputs checked
before anything is queued, defaults recorded, files inline or uploaded, warm and cold."""

import base64
import uuid
from pathlib import Path

import httpx
import pytest

from core import inputs
from core.lifecycle import JobStatus, VersionStatus
from core.settings import settings
from runner.inputs import describe
from tests.unit.test_typed_inputs import _typed_model
from tests.utils import make_zip
from workers.run.cancels import Watch
from workers.run.predict import Sandboxed, predict_all
from workers.run.request import RunnerRequest
from workers.run.sandbox import Limits

TYPED_MODEL = Path(__file__).parent / "models" / "typed"
PNG = b"\x89PNG fake image bytes"
IMAGE = {"name": "photo.png", "data": base64.b64encode(PNG).decode()}
DEFAULTS = {"threshold": 0.5, "top_k": 3, "mode": "fast", "label": "none", "verbose": False}


@pytest.fixture(scope="module")
def typed(new_user_module):
    owner = new_user_module()
    files = {path.name: path.read_bytes() for path in TYPED_MODEL.iterdir() if path.is_file()}
    version = owner.build(make_zip(files))
    assert version["status"] == VersionStatus.READY, version["error"]
    return owner, version


def test_the_schema_is_read_from_predict_at_build_time(typed):
    """As the runner describes the model's predict here (tests/unit/test_typed_inputs.py
    checks that description), read by the runner in the sandbox at build time."""
    _, version = typed
    assert version["input_schema"] == inputs.json_schema(describe(_typed_model()))
    assert list(version["input_schema"]["properties"]) == [
        "image", "threshold", "top_k", "mode", "label", "verbose"
    ]  # fmt: skip


def test_a_job_on_typed_inputs_gets_them_with_defaults_recorded(typed):
    owner, version = typed
    body = {"inputs": {"image": IMAGE, "threshold": 1, "mode": "exact", "verbose": True}}
    created = owner.submit(version["id"], **body)
    assert created.status_code == 201, created.text
    job = owner.wait_job(created.json()["job"]["id"])
    assert job["status"] == JobStatus.SUCCEEDED, job["error"]
    values = {**DEFAULTS, "threshold": 1.0, "mode": "exact", "verbose": True}
    assert job["result"]["values"] == values
    assert job["result"]["types"]["threshold"] == "float"  # an int given for a float
    assert job["result"]["image"] == "photo.png" and job["result"]["size"] == len(PNG)
    assert job["inputs"] == {
        **values,
        "threshold": 1,
        "image": {"name": "photo.png", "size": len(PNG)},
    }
    assert owner.output_files(job["id"])["image.copy"] == PNG


def test_a_file_input_may_be_uploaded_afterwards(typed):
    owner, version = typed
    created = owner.submit(version["id"], inputs={"image": {"upload": True}, "top_k": 7})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (
        set(body["upload_urls"]) == {"image"} and body["upload_url"] == body["upload_urls"]["image"]
    )
    early = owner.http.post(f"/api/jobs/{body['job']['id']}/run")
    assert early.status_code == 409 and "upload_url" in early.json()["detail"]
    assert httpx.put(body["upload_urls"]["image"], content=PNG).is_success
    assert owner.http.post(f"/api/jobs/{body['job']['id']}/run").status_code == 202
    job = owner.wait_job(body["job"]["id"])
    assert job["status"] == JobStatus.SUCCEEDED, job["error"]
    assert job["result"]["image"] == "image"  # no name given: the input's
    assert job["result"]["values"] == {**DEFAULTS, "top_k": 7}


def test_the_old_ways_of_sending_one_file_still_work_on_a_typed_model(typed):
    owner, version = typed
    job_id = owner.start_job(version["id"], PNG)  # upload_url, then /run
    job = owner.wait_job(job_id)
    assert job["status"] == JobStatus.SUCCEEDED, job["error"]
    assert job["result"]["values"] == DEFAULTS and job["inputs"]["threshold"] == 0.5
    created = owner.submit(version["id"], input=IMAGE, headers={"Prefer": "wait=60"})
    assert created.json()["job"]["result"]["image"] == "photo.png"


@pytest.mark.parametrize(
    "given, words",
    [
        ({"threshold": 0.1}, "inputs: 'image' is a required property"),
        ({"image": IMAGE, "colour": "red"}, "'colour' was unexpected"),
        ({"image": IMAGE, "threshold": 2}, "inputs.threshold: 2 is greater than the maximum of 1"),
        ({"image": IMAGE, "top_k": "3"}, "inputs.top_k: '3' is not of type 'integer'"),
        ({"image": IMAGE, "mode": "slow"}, "inputs.mode: 'slow' is not one of ['fast', 'exact']"),
        ({"image": IMAGE, "label": "Robert'); DROP"}, "inputs.label: "),
        ({"image": {"name": "../../etc/passwd", "data": ""}}, "inputs.image: give a file as"),
        ({"image": {"name": "a.png", "data": "not base64!"}}, "inputs.image.data: this is not"),
    ],
)
def test_inputs_that_break_a_rule_are_refused_before_anything_is_queued(typed, given, words):
    owner, version = typed
    refused = owner.submit(version["id"], inputs=given)
    assert refused.status_code == 422 and words in refused.json()["detail"], refused.text
    assert owner.http.get("/api/jobs").json()["total"] == 0 or all(
        job["status"] != JobStatus.QUEUED for job in owner.http.get("/api/jobs").json()["items"]
    )


def test_one_file_for_a_model_with_two_required_files_is_refused(new_user):
    farm = new_user()
    predict = (
        "from pathlib import Path\n"
        "def predict(image: Path, mask: Path, output_dir: Path):\n"
        "    return {'both': image.read_bytes().decode() + mask.read_bytes().decode()}\n"
    )
    version = farm.build({"predict.py": predict})
    assert version["status"] == VersionStatus.READY, version["error"]
    refused = farm.submit(version["id"], input=IMAGE)
    assert refused.status_code == 422 and "inputs are image, mask" in refused.json()["detail"]
    # two files, one inline and one uploaded
    mask = {"name": "m.txt", "data": base64.b64encode(b"-mask").decode()}
    body = farm.submit(version["id"], inputs={"image": {"upload": True}, "mask": mask}).json()
    assert httpx.put(body["upload_urls"]["image"], content=b"image").is_success
    assert farm.http.post(f"/api/jobs/{body['job']['id']}/run").status_code == 202
    job = farm.wait_job(body["job"]["id"])
    assert job["status"] == JobStatus.SUCCEEDED and job["result"] == {"both": "image-mask"}


@pytest.mark.parametrize(
    "parameters, words",
    [
        (
            "image: Path, threshold: float = Input(2.0, le=1)",
            "'threshold': its default 2.0 breaks le=1",
        ),
        ("image: Path, options: dict", "parameter 'options' has the type <class 'dict'>"),
    ],
)
def test_a_signature_that_cannot_be_described_fails_the_build_naming_it(
    new_user, parameters, words
):
    predict = (
        "from pathlib import Path\nfrom modelfarm import Input\n"
        f"def predict({parameters}):\n    return {{}}\n"
    )
    version = new_user().build({"predict.py": predict})
    assert version["status"] == VersionStatus.FAILED
    assert (
        version["error"].startswith("predict's inputs cannot be described: ")
        and words in version["error"]
    )


def test_a_typed_request_runs_in_a_one_shot_container_too(typed, monkeypatch):
    """The cold path (warm containers off or full): values on the runner's command line, the
    files one after another on its stdin, one from memory and one from a file."""
    _, version = typed
    monkeypatch.setattr(settings, "warm_enabled", False)
    limits = Limits.for_model(None)
    where = Sandboxed(uuid.uuid4(), uuid.uuid4(), version["image_ref"], limits, attempt=1)
    request = RunnerRequest.typed({"top_k": 9, "mode": "exact"}, [("image", "x.png", PNG)])
    (result,) = predict_all(where, [request], Watch())
    files = result.output_files(limits.output_mb * 1024**2)
    assert files["image.copy"] == PNG, result.stderr_tail
    assert b'"top_k": 9' in files["result.json"] and b'"mode": "exact"' in files["result.json"]


def test_a_batch_takes_typed_inputs_per_item_beside_plain_files(typed):
    owner, version = typed
    other = {"name": "other.png", "data": base64.b64encode(b"other").decode()}
    batch = [
        {"inputs": {"image": IMAGE, "top_k": 2}},
        other,
        {"inputs": {"image": other, "mode": "exact"}},
    ]
    created = owner.submit(version["id"], batch=batch, headers={"Prefer": "wait=60"})
    assert created.status_code == 201, created.text
    assert created.json()["job"]["status"] == JobStatus.SUCCEEDED
    items = owner.http.get(f"/api/jobs/{created.json()['job']['id']}/items").json()["items"]
    assert [(item["result"]["image"], item["result"]["values"]) for item in items] == [
        ("photo.png", {**DEFAULTS, "top_k": 2}),
        ("other.png", DEFAULTS),
        ("other.png", {**DEFAULTS, "mode": "exact"}),
    ]


def test_a_batch_item_that_breaks_a_rule_is_named_by_its_index(typed):
    owner, version = typed
    batch = [{"inputs": {"image": IMAGE}}, {"inputs": {"image": IMAGE, "top_k": 99}}]
    refused = owner.submit(version["id"], batch=batch)
    assert refused.status_code == 422
    assert "batch[1].inputs.top_k: 99 is greater than the maximum of 10" in refused.json()["detail"]
    uploaded = owner.submit(version["id"], batch=[{"inputs": {"image": {"upload": True}}}])
    assert uploaded.status_code == 422 and "a batch's files are sent inline" in uploaded.text
