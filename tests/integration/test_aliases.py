"""Aliases: a name on a model for one of its READY versions; jobs that name the alias run the
version it points at, so moving it deploys and rolls back. And the refusals of abuse."""

import pytest

from core.lifecycle import JobStatus, VersionStatus
from tests.utils import inline

PREDICT = """class Predictor:
    def setup(self):
        pass

    def predict(self, input_path, output_dir):
        return {"release": %r}
"""


@pytest.fixture(scope="module")
def released(new_user_module):
    """A private model with two READY versions that tell which one ran, and its owner."""
    owner = new_user_module()
    model = owner.create_model()
    one = owner.build({"predict.py": PREDICT % "one"}, model["id"])
    two = owner.build({"predict.py": PREDICT % "two"}, model["id"])
    assert one["status"] == two["status"] == VersionStatus.READY, (one["error"], two["error"])
    return owner, model, one, two


def _point(farm, model_id: str, alias: str, version_id: str):
    return farm.http.put(f"/api/models/{model_id}/aliases/{alias}", json={"version_id": version_id})


def _job_by_alias(farm, model_id: str, alias: str, **body):
    return farm.http.post(
        "/api/jobs", headers={"Prefer": "wait=30"},
        json={"model_id": model_id, "alias": alias, "input": inline("x"), **body},
    )  # fmt: skip


def _release_run(farm, model_id: str, alias: str) -> tuple[str, str]:
    response = _job_by_alias(farm, model_id, alias)
    assert response.status_code == 201, response.text
    job = response.json()["job"]
    assert job["status"] == JobStatus.SUCCEEDED, job["error"]
    return job["result"]["release"], job["version_id"]


def test_moving_an_alias_deploys_a_version_and_moving_it_back_rolls_back(released):
    owner, model, one, two = released
    assert _point(owner, model["id"], "prod", one["id"]).status_code == 200
    assert _release_run(owner, model["id"], "prod") == ("one", one["id"])
    moved = _point(owner, model["id"], "prod", two["id"])
    assert moved.status_code == 200 and moved.json()["version_id"] == two["id"]
    assert _release_run(owner, model["id"], "prod") == ("two", two["id"])
    assert _point(owner, model["id"], "prod", one["id"]).status_code == 200
    assert _release_run(owner, model["id"], "prod") == ("one", one["id"])
    listed = owner.http.get(f"/api/models/{model['id']}/aliases").json()
    assert [(a["name"], a["version_id"]) for a in listed] == [("prod", one["id"])]


def test_a_deleted_alias_names_nothing(released):
    owner, model, one, _ = released
    assert _point(owner, model["id"], "staging", one["id"]).status_code == 200
    deleted = owner.http.delete(f"/api/models/{model['id']}/aliases/staging")
    assert deleted.status_code == 204
    refused = _job_by_alias(owner, model["id"], "staging")
    assert refused.status_code == 404 and "no alias 'staging'" in refused.json()["detail"]
    again = owner.http.delete(f"/api/models/{model['id']}/aliases/staging")
    assert again.status_code == 404


def test_an_alias_points_only_at_a_ready_version_of_its_own_model(released, new_user):
    owner, model, one, _ = released
    other_model = owner.create_model()
    other = owner.build({"predict.py": PREDICT % "other"}, other_model["id"])
    foreign = _point(owner, model["id"], "prod", other["id"])
    assert foreign.status_code == 404, foreign.text
    unbuilt = owner.new_version(model["id"], b"not built")
    not_ready = _point(owner, model["id"], "prod", unbuilt["id"])
    assert not_ready.status_code == 409
    assert "an alias needs a READY version" in not_ready.json()["detail"]


BAD_NAMES = ["Prod", "prod!", "-prod", "p" * 64, "%2e%2e", "pr%20od"]


@pytest.mark.parametrize("alias", BAD_NAMES)
def test_an_alias_name_outside_the_pattern_is_refused(released, alias):
    owner, model, one, _ = released
    refused = _point(owner, model["id"], alias, one["id"])
    assert refused.status_code == 422, refused.text


@pytest.mark.parametrize("alias", [*BAD_NAMES, "..", "pr od", "prod\n", ""])
def test_a_job_naming_an_alias_outside_the_pattern_is_refused(released, alias):
    owner, model, _, _ = released
    refused = _job_by_alias(owner, model["id"], alias)
    assert refused.status_code == 422, refused.text


def test_strangers_can_neither_move_an_alias_nor_run_a_private_models(released, new_user):
    owner, model, one, _ = released
    assert _point(owner, model["id"], "prod", one["id"]).status_code == 200
    stranger = new_user()
    assert _point(stranger, model["id"], "prod", one["id"]).status_code == 404
    assert stranger.http.get(f"/api/models/{model['id']}/aliases").status_code == 404
    assert _job_by_alias(stranger, model["id"], "prod").status_code == 404
    public = owner.create_model(visibility="public")
    assert _point(stranger, public["id"], "prod", one["id"]).status_code == 403


def test_a_job_names_its_version_one_way_only(released):
    owner, model, one, _ = released
    both = _job_by_alias(owner, model["id"], "prod", version_id=one["id"])
    assert both.status_code == 422 and "give version_id, or model_id with alias" in both.text
    model_only = owner.http.post("/api/jobs", json={"model_id": model["id"], "input": inline("x")})
    assert model_only.status_code == 422
    neither = owner.http.post("/api/jobs", json={"input": inline("x")})
    assert neither.status_code == 422
