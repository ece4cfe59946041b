"""The version and job state machines: the moves the API and workers may make, and no other."""

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from api.schemas import VersionPublic
from core.lifecycle import JOB, VERSION, IllegalTransition, JobStatus, VersionStatus, move


@pytest.mark.parametrize("lifecycle", [VERSION, JOB], ids=["version", "job"])
def test_the_happy_path_is_allowed_and_ends_terminal(lifecycle):
    path = [lifecycle.uploading, lifecycle.queued, lifecycle.running, lifecycle.succeeded]
    for source, target in zip(path, path[1:], strict=False):
        assert lifecycle.can_move(source, target)
    assert lifecycle.terminal == {lifecycle.succeeded, lifecycle.failed, lifecycle.canceled} - {
        None
    }


@pytest.mark.parametrize("lifecycle", [VERSION, JOB], ids=["version", "job"])
def test_terminal_statuses_never_move_again(lifecycle):
    for end in lifecycle.terminal:
        for target in lifecycle.transitions:
            assert not lifecycle.can_move(end, target)


def test_a_build_or_run_starts_only_once_after_the_upload():
    assert VERSION.can_move(VersionStatus.UPLOADING, VersionStatus.QUEUED)
    for status in (VersionStatus.QUEUED, VersionStatus.BUILDING, VersionStatus.READY):
        assert not VERSION.can_move(status, VersionStatus.QUEUED)
    assert not JOB.can_move(JobStatus.UPLOADING, JobStatus.RUNNING)
    assert not JOB.can_move(JobStatus.SUCCEEDED, JobStatus.QUEUED)


def test_a_dead_workers_row_may_be_taken_over_while_in_progress():
    assert VERSION.can_move(VersionStatus.BUILDING, VersionStatus.BUILDING)
    assert JOB.can_move(JobStatus.RUNNING, JobStatus.RUNNING)


def test_move_refuses_an_illegal_transition_and_leaves_the_row_alone():
    row = SimpleNamespace(id=uuid.uuid4(), status=JobStatus.SUCCEEDED)
    with pytest.raises(IllegalTransition, match="SUCCEEDED -> RUNNING"):
        move(JOB, row, JobStatus.RUNNING)
    assert row.status == JobStatus.SUCCEEDED
    move(JOB, SimpleNamespace(id=1, status=JobStatus.QUEUED), JobStatus.RUNNING)


def test_a_job_that_has_not_ended_can_be_canceled_and_a_version_cannot():
    for status in (JobStatus.UPLOADING, JobStatus.QUEUED, JobStatus.RUNNING):
        assert JOB.can_move(status, JobStatus.CANCELED)
    for status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED):
        assert not JOB.can_move(status, JobStatus.CANCELED)
    assert JobStatus.CANCELED in JOB.terminal
    assert VERSION.canceled is None and VersionStatus.READY in VERSION.terminal


@pytest.mark.parametrize("status", list(VersionStatus))
def test_a_version_shows_its_image_and_inputs_only_once_ready(status):
    """A build records them on the row a moment before it ends (workers/build/reuse.py)."""
    now = datetime.now(UTC)
    row = SimpleNamespace(
        id=uuid.uuid4(), model_id=uuid.uuid4(), number=1, status=status, package_sha256="ab",
        content_files=None, image_ref=None, image_digest="sha256:" + "0" * 64, reused=False,
        input_schema={"type": "object"}, error=None, created_at=now, queued_at=now,
        started_at=now, finished_at=None, webhook=None, webhook_events=None,
    )  # fmt: skip
    shown = VersionPublic.model_validate(row)
    ready = status == VersionStatus.READY
    assert (shown.image_digest is not None, shown.input_schema is not None) == (ready, ready)
