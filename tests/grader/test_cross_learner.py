"""Two learners through the API and a real Celery worker: the second's scans find nothing of the first's.

The worker's processes each keep one zygote and grade one job after another
with it, as in production. The first learner's submissions carry a secret in
their code, output and variables; the second learner's submissions try to
walk their frames, ask gc and read their own heap, and are refused before they
run, with the reason (the static screen); the API shows them nothing of the
first learner's either.
"""
from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from tests.grader.test_pipeline import wait_for_verdict
from tests.sandbox.scans import scanner_code, secret, victim_code

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def api_for(user: User) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def submit(api: APIClient, code: str) -> dict:
    response = api.post("/api/v1/submissions/?wait=20", {"item": "grad-of-polynomial", "code": code}, format="json")
    assert response.status_code in (201, 202), response.content
    body = response.json()
    return body if body["status"] not in ("queued", "running") else wait_for_verdict(api, body["url"])


def test_a_second_learner_finds_nothing_of_the_first(
        learner: User, other_learner: User, seed_quiz: None, celery_worker: object) -> None:
    ada, grace = api_for(learner), api_for(other_learner)
    first, second = secret()
    for n in range(4):  # the worker has two processes: each of their zygotes serves some of these
        verdict = submit(ada, victim_code(first, second) + f"# run {n}\n")  # a repeat would be refused
        assert verdict["status"] == "passed" and first + second in verdict["stdout"]
    # The scans (frames, gc, ctypes) never run: the static screen refuses them with the reason. That the
    # sandbox holds when they do run, several jobs through one zygote, is tests/sandbox/test_cross_job.py.
    for _ in range(2):
        verdict = submit(grace, scanner_code(first, second))
        assert verdict["status"] == "rejected", verdict
        assert verdict["error"].startswith("Your code was not run: line "), verdict
        assert first + second not in str(verdict)
    # And the API never shows one learner the other's submissions.
    listed = grace.get("/api/v1/submissions/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert rows and all(first + second not in str(row) for row in rows)
