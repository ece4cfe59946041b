"""Pre-pull (MODELFARM_PREPULL) on the real stack: with it on, the inference host has a
version's image as soon as the version is READY, before any job asks for it, and a standby
container of it that loads the model for the first job of whichever user comes; without it, the
image reaches the host with the first job."""

import time
import uuid

import pytest
from docker.errors import ImageNotFound

from core.lifecycle import JobStatus, VersionStatus
from tests.integration import stack
from tests.integration.stack import LOGS_DIR, wait_for

ECHO = "def predict(input_path, output_dir):\n    return {'echo': open(input_path).read()}\n"


def _present(docker_client, image_ref: str) -> bool:
    try:
        docker_client.images.get(image_ref)
    except ImageNotFound:
        return False
    return True


def _pre_pulled(image_ref: str) -> bool:
    lines = (LOGS_DIR / "inference-worker.log").read_text().splitlines()
    return any('"pre-pulled"' in line and image_ref in line for line in lines)


@pytest.fixture
def prepulling():
    with stack.prepulling():
        yield


def _unique_model(farm) -> dict:
    version = farm.build({"predict.py": ECHO + f"# {uuid.uuid4()}\n"})  # an image of its own
    assert version["status"] == VersionStatus.READY, version["error"]
    return version


def test_without_pre_pull_the_image_comes_with_the_first_job(new_user, docker_client):
    farm = new_user()
    version = _unique_model(farm)
    assert not _present(docker_client, version["image_ref"])
    assert farm.run(version["id"], b"hi")["result"] == {"echo": "hi"}
    assert _present(docker_client, version["image_ref"])


def test_with_pre_pull_the_image_is_there_before_the_first_job(new_user, docker_client,
                                                               prepulling):  # fmt: skip
    farm = new_user()
    version = _unique_model(farm)
    wait_for(lambda: _pre_pulled(version["image_ref"]), "the image pre-pulled", 120)
    assert _present(docker_client, version["image_ref"])
    assert farm.run(version["id"], b"hi")["result"] == {"echo": "hi"}


SETUP_TIMED = (
    "import time\n"
    "SEEN = []\n"
    "class Predictor:\n"
    "    def setup(self):\n"
    "        self.setup_at = time.time()\n"
    "    def predict(self, input_path, output_dir):\n"
    "        SEEN.append(open(input_path).read())\n"
    "        return {'setup_at': self.setup_at, 'seen': SEEN}\n"
)


def test_pre_pull_starts_a_standby_that_loads_the_model_for_the_first_job_of_any_user(
    new_user, docker_client, prepulling
):
    owner, alice, bob = new_user(), new_user(), new_user()
    model = owner.create_model(visibility="public")
    version = owner.build({"predict.py": SETUP_TIMED + f"# {uuid.uuid4()}\n"}, model["id"])
    assert version["status"] == VersionStatus.READY, version["error"]
    wait_for(lambda: _pre_pulled(version["image_ref"]), "the image pre-pulled", 120)
    (standby,) = wait_for(
        lambda: stack.sandboxes_of(docker_client, version["image_ref"]), "a standby", 60
    )
    time.sleep(1)  # a setup run at the standby's start would now be a second older than the job
    job_sent_at = time.time()
    first = alice.run(version["id"], b"alice-secret", timeout=120)
    assert first["status"] == JobStatus.SUCCEEDED, first["error"]
    assert first["result"]["seen"] == ["alice-secret"]
    assert first["result"]["setup_at"] >= job_sent_at  # the model loaded when the job came
    (taken,) = stack.sandboxes_of(docker_client, version["image_ref"])
    assert taken.id == standby.id  # the job ran on the standby: no container started for it
    # From then on it is alice's: bob's job gets a container of its own.
    other = bob.run(version["id"], b"bob", timeout=120)
    assert other["status"] == JobStatus.SUCCEEDED, other["error"]
    assert other["result"]["seen"] == ["bob"]
    assert len(stack.sandboxes_of(docker_client, version["image_ref"])) == 2
