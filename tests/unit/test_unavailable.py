"""The SDK's resending of a read the farm answered 503 (modelfarm/unavailable.py), against a
transport that answers as told (a fake: the logic alone; the outage drills use the real farm)."""

import httpx

from modelfarm import unavailable


def _farm(*statuses: int, retry_after: str = "0") -> tuple[httpx.Client, list[str]]:
    sent: list[str] = []
    answers = iter(statuses)

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.method)
        return httpx.Response(next(answers), headers={"Retry-After": retry_after})

    return httpx.Client(base_url="http://farm", transport=httpx.MockTransport(answer)), sent


def test_a_read_is_sent_again_until_the_farm_answers():
    http, sent = _farm(503, 503, 200)
    assert unavailable.request(http, "GET", "/api/jobs/1").status_code == 200
    assert sent == ["GET"] * 3


def test_a_read_gives_the_last_503_when_the_tries_run_out():
    http, sent = _farm(*[503] * unavailable.TRIES)
    assert unavailable.request(http, "GET", "/api/jobs/1").status_code == 503
    assert len(sent) == unavailable.TRIES


def test_a_write_is_never_sent_again():
    http, sent = _farm(503, 201)
    assert unavailable.request(http, "POST", "/api/jobs").status_code == 503
    assert sent == ["POST"]


def test_the_wait_is_the_farms_retry_after_within_bounds(monkeypatch):
    waited: list[float] = []
    monkeypatch.setattr("tenacity.nap.time.sleep", waited.append)
    http, _ = _farm(503, 200, retry_after="600")
    unavailable.request(http, "GET", "/health")
    assert waited == [unavailable.LONGEST_WAIT_S]
