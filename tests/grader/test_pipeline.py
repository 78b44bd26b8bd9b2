"""Submissions through the real Redis and a real Celery worker (no eager mode)."""
from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from grader.models import Submission

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

CORRECT = "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\ny.backward()\n"
NO_BACKWARD = "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\n"


def wait_for_verdict(client: APIClient, url: str, timeout: float = 30.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        body = client.get(url).json()
        if body["status"] not in ("queued", "running"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"no verdict for {url} within {timeout} s: {body}")


@pytest.fixture
def client(learner: User, seed_quiz: None) -> APIClient:
    api = APIClient()
    api.force_authenticate(learner)
    return api


def test_submit_through_the_api_and_get_the_verdict(client: APIClient, celery_worker: object) -> None:
    response = client.post("/api/v1/submissions/", {"item": "grad-of-polynomial", "code": CORRECT}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["url"] == f"/api/v1/submissions/{body['id']}/"
    verdict = wait_for_verdict(client, body["url"])
    assert verdict["status"] == "passed"
    assert verdict["score"] == 1.0
    assert [c["name"] for c in verdict["checks"]] == ["x.grad", "x.requires_grad", "y.requires_grad",
                                                      "x.grad by autograd", "y's graph"]
    graph = verdict["checks"][-1]
    assert graph["graph_svg"] == f"/attempts/{verdict['id']}/graphs/4.svg"
    assert [n[0] for n in graph["graph"]["learner"]["nodes"]][0] == "AddBackward0" and graph["graph"]["extra"] == []
    assert verdict["started_at"] and verdict["finished_at"]


def test_a_wrong_solution_gets_a_teaching_message(client: APIClient, celery_worker: object) -> None:
    response = client.post("/api/v1/submissions/", {"item": "grad-of-polynomial", "code": NO_BACKWARD}, format="json")
    verdict = wait_for_verdict(client, response.json()["url"])
    assert verdict["status"] == "failed"
    assert verdict["score"] == pytest.approx(3 / 5)  # x.grad is None, so autograd wrote nothing either
    grad = next(c for c in verdict["checks"] if c["name"] == "x.grad")
    assert not grad["passed"] and "did you call backward()" in grad["message"]
    assert Submission.objects.get(pk=verdict["id"]).deliveries == 1


def test_a_client_can_wait_for_the_verdict_instead_of_polling(client: APIClient, celery_worker: object) -> None:
    url = client.post("/api/v1/submissions/", {"item": "grad-of-polynomial", "code": CORRECT}, format="json").json()["url"]
    started = time.monotonic()
    body = client.get(url, {"wait": 20}).json()
    assert body["status"] == "passed", "one request returns the final verdict"
    assert time.monotonic() - started < 10, "answered when the verdict arrived, not at the timeout"


def test_waiting_on_a_finished_submission_answers_at_once(client: APIClient, celery_worker: object) -> None:
    url = client.post("/api/v1/submissions/", {"item": "grad-of-polynomial", "code": CORRECT}, format="json").json()["url"]
    wait_for_verdict(client, url)
    started = time.monotonic()
    assert client.get(url, {"wait": 20}).json()["status"] == "passed"
    assert time.monotonic() - started < 1


def test_a_post_can_wait_for_its_own_verdict(client: APIClient, celery_worker: object) -> None:
    response = client.post("/api/v1/submissions/?wait=20", {"item": "grad-of-polynomial", "code": NO_BACKWARD},
                           format="json")
    assert response.status_code == 201, "graded within the wait: the full verdict, not a queue ticket"
    body = response.json()
    assert body["status"] == "failed" and body["score"] == pytest.approx(3 / 5)
