"""Models, versions and jobs through the live API: validation, state rules and ownership."""

import uuid

import httpx
import pytest
import redis
from sqlalchemy import update

from core.db import SessionLocal
from core.lifecycle import JobStatus, VersionStatus
from core.models import ModelVersion
from core.settings import settings
from core.storage import job_input_upload_key, package_key, package_upload_key
from tests.integration import stack
from tests.utils import make_zip, put_zeros

ECHO = {"predict.py": "def predict(input_path, output_dir):\n    return {'ok': True}\n"}


def _mark_ready(version_id: str) -> None:
    """Stands in for a finished build where only the API's state rules are under test."""
    with SessionLocal() as session:
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.id == uuid.UUID(version_id))
            .values(status=VersionStatus.READY, image_ref="none@sha256:" + "0" * 64)
        )
        session.commit()


def test_create_and_get_model(new_user):
    farm = new_user()
    model = farm.create_model("digits", description="Handwritten digits", visibility="public")
    assert model["owner_id"] == farm.user_id
    got = farm.http.get(f"/api/models/{model['id']}").json()
    assert got["name"] == "digits" and got["visibility"] == "public"


def test_duplicate_model_name_is_409_but_other_users_may_reuse_it(new_user):
    alice, bob = new_user(), new_user()
    alice.create_model("same-name")
    again = alice.http.post("/api/models", json={"name": "same-name"})
    assert again.status_code == 409
    assert "same-name" in again.json()["detail"]
    bob.create_model("same-name")


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x\nRUN curl evil | sh"},
        {"name": "Upper"},
        {"name": "../etc"},
        {"name": ""},
        {"name": "a" * 64},
        {"name": "ok", "description": "line\nRUN rm -rf /"},
        {"name": "ok", "visibility": "everyone"},
    ],
)
def test_bad_model_fields_are_422(new_user, body):
    response = new_user().http.post("/api/models", json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("Invalid request:")


def test_list_models_paginates_and_shows_own_plus_public(new_user):
    alice, bob = new_user(), new_user()
    mine = {alice.create_model()["id"] for _ in range(3)}
    public = bob.create_model(visibility="public")["id"]
    hidden = bob.create_model()["id"]
    seen, offset = set(), 0
    while True:
        page = alice.http.get("/api/models", params={"offset": offset, "limit": 2}).json()
        assert len(page["items"]) <= 2
        seen |= {item["id"] for item in page["items"]}
        offset += 2
        if offset >= page["total"]:
            break
    assert mine | {public} <= seen
    assert hidden not in seen
    assert alice.http.get("/api/models", params={"limit": 101}).status_code == 422


def test_private_model_of_another_user_is_404_everywhere(new_user):
    alice, bob = new_user(), new_user()
    model = alice.create_model()
    version = alice.new_version(model["id"], None)
    for path in (
        f"/api/models/{model['id']}",
        f"/api/models/{model['id']}/versions",
        f"/api/versions/{version['id']}",
        f"/api/versions/{version['id']}/logs",
    ):
        response = bob.http.get(path)
        assert response.status_code == 404, path
    assert bob.http.post(f"/api/models/{model['id']}/versions").status_code == 404
    assert bob.http.post(f"/api/versions/{version['id']}/build").status_code == 404
    assert bob.http.post("/api/jobs", json={"version_id": version["id"]}).status_code == 404
    unknown = bob.http.get(f"/api/models/{uuid.uuid4()}")
    assert (
        unknown.status_code == 404
        and unknown.json()["detail"] == bob.http.get(f"/api/models/{model['id']}").json()["detail"]
    )


def test_public_model_is_readable_but_not_changeable_by_others(new_user):
    alice, bob = new_user(), new_user()
    model = alice.create_model(visibility="public")
    version = alice.new_version(model["id"], None)
    assert bob.http.get(f"/api/models/{model['id']}").status_code == 200
    assert bob.http.get(f"/api/versions/{version['id']}").status_code == 200
    assert bob.http.post(f"/api/models/{model['id']}/versions").status_code == 403
    assert bob.http.post(f"/api/versions/{version['id']}/build").status_code == 403


def test_the_owner_changes_a_models_description_and_visibility(new_user):
    alice, bob = new_user(), new_user()
    model = alice.create_model(description="first words")
    path = f"/api/models/{model['id']}"
    assert bob.http.patch(path, json={"visibility": "public"}).status_code == 404  # private
    changed = alice.http.patch(path, json={"description": "better words", "visibility": "public"})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["description"], changed.json()["visibility"]) == (
        "better words",
        "public",
    )
    assert bob.http.get(path).json()["description"] == "better words"  # public now
    assert bob.http.patch(path, json={"description": "mine"}).status_code == 403
    only_one = alice.http.patch(path, json={"visibility": "private"}).json()
    assert (only_one["description"], only_one["visibility"]) == ("better words", "private")
    for body in ({"name": "renamed"}, {"description": "x" * 1001}, {"visibility": "secret"},
                 {"description": "two\nlines"}):  # fmt: skip
        assert alice.http.patch(path, json=body).status_code == 422, body
    assert alice.http.get(path).json()["name"] == model["name"]


def test_version_upload_url_accepts_the_zip_and_build_is_queued(new_user, storage):
    farm = new_user()
    model = farm.create_model()
    version = farm.new_version(model["id"], make_zip(ECHO))
    assert version["status"] == VersionStatus.UPLOADING and version["number"] == 1
    assert storage.size(package_upload_key(version["id"])) > 0
    response = farm.http.post(f"/api/versions/{version['id']}/build")
    assert response.status_code == 202
    assert response.json()["status"] == VersionStatus.QUEUED and response.json()["queued_at"]
    second = farm.new_version(model["id"], None)
    assert second["number"] == 2


def test_build_is_enqueued_on_the_build_queue(new_user):
    """The task goes through the Redis list named 'build' to the build worker."""
    farm = new_user()
    model = farm.create_model()
    version = farm.new_version(model["id"], make_zip(ECHO))
    broker = redis.Redis.from_url(settings.redis_url)
    before = [m for m in broker.lrange("build", 0, -1) if version["id"].encode() in m]
    assert before == []
    farm.http.post(f"/api/versions/{version['id']}/build")
    # The message is on the list 'build', or taken by the build worker and not yet acknowledged
    # (kombu keeps it in the hash 'unacked'), or the worker has already moved the version on.
    # Polled: between the worker's pop and its note in 'unacked' it is in neither for a moment.
    marker = version["id"].encode()

    def seen() -> bool:
        on_queue = any(marker in m for m in broker.lrange("build", 0, -1))
        delivered = any(marker in m for m in broker.hvals("unacked"))
        status = farm.version(version["id"])["status"]
        return on_queue or delivered or status in (VersionStatus.BUILDING, VersionStatus.READY)

    stack.wait_for(seen, "the build's message queued, taken or acted on", 10, 0.02)
    assert not any(version["id"].encode() in m for m in broker.lrange("inference", 0, -1))
    assert farm.wait_version(version["id"], 600)["status"] == VersionStatus.READY


def test_build_before_upload_is_409(new_user):
    farm = new_user()
    version = farm.new_version(farm.create_model()["id"], None)
    response = farm.http.post(f"/api/versions/{version['id']}/build")
    assert response.status_code == 409
    assert "upload_url" in response.json()["detail"]


def test_building_twice_is_409(new_user):
    farm = new_user()
    version = farm.new_version(farm.create_model()["id"], make_zip(ECHO))
    assert farm.http.post(f"/api/versions/{version['id']}/build").status_code == 202
    again = farm.http.post(f"/api/versions/{version['id']}/build")
    assert again.status_code == 409


def test_oversized_package_is_413_and_discarded(new_user, storage):
    farm = new_user()
    created = farm.http.post(f"/api/models/{farm.create_model()['id']}/versions").json()
    version, key = created["version"], package_upload_key(created["version"]["id"])
    assert put_zeros(created["upload_url"], settings.max_package_bytes + 1).is_success
    response = farm.http.post(f"/api/versions/{version['id']}/build")
    assert response.status_code == 413
    assert str(settings.max_package_bytes) in response.json()["detail"]
    assert storage.size(key) is None and storage.size(package_key(version["id"])) is None
    assert farm.version(version["id"])["status"] == VersionStatus.UPLOADING


def test_job_on_a_version_that_is_not_ready_is_409(new_user):
    farm = new_user()
    version = farm.new_version(farm.create_model()["id"], None)
    response = farm.http.post("/api/jobs", json={"version_id": version["id"]})
    assert response.status_code == 409
    assert VersionStatus.READY in response.json()["detail"]


def test_job_lifecycle_rules_and_ownership(new_user):
    alice, bob = new_user(), new_user()
    version = alice.new_version(alice.create_model()["id"], None)
    _mark_ready(version["id"])
    created = alice.http.post("/api/jobs", json={"version_id": version["id"]})
    assert created.status_code == 201
    job = created.json()["job"]
    assert job["status"] == JobStatus.UPLOADING
    run = alice.http.post(f"/api/jobs/{job['id']}/run")
    assert run.status_code == 409 and "upload_url" in run.json()["detail"]
    for path in (f"/api/jobs/{job['id']}", f"/api/jobs/{job['id']}/outputs"):
        assert bob.http.get(path).status_code == 404
    assert bob.http.post(f"/api/jobs/{job['id']}/run").status_code == 404
    assert job["id"] not in {j["id"] for j in bob.http.get("/api/jobs").json()["items"]}
    assert job["id"] in {j["id"] for j in alice.http.get("/api/jobs").json()["items"]}


def test_oversized_input_is_413(new_user, storage):
    farm = new_user()
    version = farm.new_version(farm.create_model()["id"], None)
    _mark_ready(version["id"])
    created = farm.http.post("/api/jobs", json={"version_id": version["id"]}).json()
    job_id = created["job"]["id"]
    storage.put_bytes(job_input_upload_key(job_id), b"\0" * (settings.max_input_bytes + 1))
    response = farm.http.post(f"/api/jobs/{job_id}/run")
    assert response.status_code == 413


def test_presigned_upload_url_rejects_a_tampered_signature(new_user):
    farm = new_user()
    created = farm.http.post(f"/api/models/{farm.create_model()['id']}/versions").json()
    url = created["upload_url"]
    signature = url.split("X-Amz-Signature=")[1][:64]
    tampered = url.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:])
    assert httpx.put(tampered, content=b"x").status_code == 403


def test_ids_that_are_not_uuids_are_422(new_user):
    farm = new_user()
    assert farm.http.get("/api/models/1").status_code == 422
    assert farm.http.get("/api/versions/../../etc/passwd").status_code in (404, 422)


def test_openapi_docs_are_served_with_oauth2(anonymous):
    schema = anonymous.get("/openapi.json").json()
    assert "/api/jobs/{job_id}/run" in schema["paths"]
    assert schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]["type"] == "oauth2"
    assert anonymous.get("/docs").status_code == 200
