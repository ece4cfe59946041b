"""Batch jobs: items inline or uploaded, run in order through warm containers; an item that
fails fails alone."""

import httpx

from core.lifecycle import JobStatus
from tests.utils import inline

BAD = {17: "raise", 101: "raise", 180: "oom"}


def _items(farm, job_id: str) -> list[dict]:
    items, offset = [], 0
    while True:
        page = farm.http.get(f"/api/jobs/{job_id}/items", params={"offset": offset, "limit": 100})
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        offset += 100
        if offset >= page.json()["total"]:
            return items


def test_a_batch_runs_every_item_and_counts_the_failures(warm_model, new_user):
    _, version = warm_model
    farm = new_user()
    batch = [inline(BAD.get(i, f"item-{i}"), name=f"in-{i}.txt") for i in range(200)]
    response = farm.submit(version["id"], {"Prefer": "wait=60"}, batch=batch)
    assert response.status_code == 201, response.text
    job = farm.wait_job(response.json()["job"]["id"], timeout=120)
    assert job["status"] == JobStatus.SUCCEEDED, job["error"]
    assert (job["items_total"], job["items_done"], job["items_failed"]) == (200, 200, 3)
    items = _items(farm, job["id"])
    assert [item["index"] for item in items] == list(range(200))
    for item in items:
        if item["index"] in BAD:
            assert item["status"] == JobStatus.FAILED and item["result"] is None
        else:
            assert item["status"] == JobStatus.SUCCEEDED, item["error"]
            assert item["result"]["seen"][-1] == f"item-{item['index']}"
    assert "ValueError: asked to fail" in items[17]["error"]
    assert "ran out of memory" in items[180]["error"]
    outputs = farm.output_files(job["id"])
    assert outputs["items/0/out.txt"] == b"item-0"
    assert outputs["items/199/out.txt"] == b"item-199"
    assert "items/17/out.txt" not in outputs and "items/0/result.json" not in outputs


def test_a_batch_of_uploads(warm_model, new_user):
    _, version = warm_model
    farm = new_user()
    created = farm.submit(version["id"], batch_size=3).json()
    job_id, urls = created["job"]["id"], created["upload_urls"]
    assert len(urls) == 3 and created["upload_url"] is None
    for index, url in enumerate(urls[:2]):
        assert httpx.put(url, content=f"up-{index}".encode()).status_code == 200
    missing = farm.http.post(f"/api/jobs/{job_id}/run")
    assert missing.status_code == 409 and "upload_urls[2]" in missing.json()["detail"]
    assert httpx.put(urls[2], content=b"up-2").status_code == 200
    response = farm.http.post(f"/api/jobs/{job_id}/run", headers={"Prefer": "wait=60"})
    assert response.json()["status"] == JobStatus.SUCCEEDED, response.text
    assert [item["result"]["seen"][-1] for item in _items(farm, job_id)] == ["up-0", "up-1", "up-2"]


def test_items_of_a_single_job_are_refused(warm_model, new_user):
    _, version = warm_model
    farm = new_user()
    job = farm.submit(version["id"], input=inline("one")).json()["job"]
    response = farm.http.get(f"/api/jobs/{job['id']}/items")
    assert response.status_code == 409 and "not a batch" in response.json()["detail"]


def test_an_item_that_hangs_times_out_alone(warm_model, new_user):
    _, version = warm_model
    farm = new_user()
    batch = [inline("first"), inline("hang"), inline("third")]
    job = farm.submit(version["id"], {"Prefer": "wait=60"}, batch=batch).json()["job"]
    job = farm.wait_job(job["id"], timeout=60)
    assert job["status"] == JobStatus.SUCCEEDED and job["items_failed"] == 1
    first, hung, third = _items(farm, job["id"])
    assert "timed out after 5 s" in hung["error"]
    assert first["result"]["seen"] == ["first"]
    assert third["result"]["seen"] == ["third"]  # sent with the hung one, run on a fresh container
