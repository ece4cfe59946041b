"""Warm sandboxes: a user's jobs reuse a loaded model, other users never see its memory, and
any failure the model cannot report itself leaves a fresh container for the next job."""

import time
from pathlib import Path

import pytest

from core.lifecycle import JobStatus, VersionStatus
from tests.utils import make_zip

WARM_MODEL = Path(__file__).parent / "models" / "warm"


@pytest.fixture(scope="module")
def warm_model(new_user_module):
    """One READY public version of the warm test model, and its owner."""
    owner = new_user_module()
    files = {path.name: path.read_bytes() for path in WARM_MODEL.iterdir() if path.is_file()}
    model = owner.create_model(visibility="public")
    version = owner.build(make_zip(files), model_id=model["id"])
    assert version["status"] == VersionStatus.READY, version["error"]
    return owner, version


def _run(farm, version, data: str) -> dict:
    return farm.run(version["id"], data.encode(), timeout=120)


def test_a_users_jobs_reuse_the_loaded_model_and_other_users_get_their_own(warm_model, new_user):
    owner, version = warm_model
    alice, bob = new_user(), new_user()
    first = _run(alice, version, "alice-secret")
    assert first["status"] == JobStatus.SUCCEEDED, first["error"]
    assert first["result"] == {"setups": 1, "seen": ["alice-secret"]}
    second = _run(alice, version, "alice-again")
    # setup() did not run again: the same warm container answered.
    assert second["result"] == {"setups": 1, "seen": ["alice-secret", "alice-again"]}
    other = _run(bob, version, "bob")
    assert other["status"] == JobStatus.SUCCEEDED, other["error"]
    assert other["result"] == {"setups": 1, "seen": ["bob"]}
    assert "alice-secret" not in str(other["result"])


def test_a_late_write_does_not_reach_the_next_job(warm_model, new_user):
    _, version = warm_model
    farm = new_user()
    late = _run(farm, version, "late")
    assert late["status"] == JobStatus.SUCCEEDED, late["error"]
    time.sleep(1.5)  # the model's thread writes /output/late.txt meanwhile
    following = _run(farm, version, "next")
    assert following["result"]["seen"] == ["late", "next"]  # the same container
    assert set(farm.outputs(following["id"])) == {"out.txt", "result.json", "run.log"}


@pytest.mark.parametrize(
    "misbehaviour, words",
    [
        ("hang", "The model timed out after 5 s."),
        ("oom", "The model ran out of memory (limit 128 MB)."),
        ("garbage", "broke its protocol"),
    ],
)
def test_a_failed_request_discards_the_container(warm_model, new_user, misbehaviour, words):
    _, version = warm_model
    farm = new_user()
    assert _run(farm, version, "warm-up")["result"]["setups"] == 1
    failed = _run(farm, version, misbehaviour)
    assert failed["status"] == JobStatus.FAILED
    assert words in failed["error"], failed["error"]
    following = _run(farm, version, "after")
    assert following["status"] == JobStatus.SUCCEEDED, following["error"]
    assert following["result"] == {"setups": 1, "seen": ["after"]}  # a fresh container
