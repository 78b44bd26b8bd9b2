"""The whole way, with a real Celery worker grading in the sandbox: a learner launched from the platform
answers, and the platform's gradebook gets the quiz score; a better attempt sends the better score."""
from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from courses.models import Course
from quiz.models import Item

from .conftest import Launcher
from .platform import ROLE_LEARNER, Platform

pytestmark = [pytest.mark.worker]

ITEM = "grad-of-polynomial"
CORRECT = "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\ny.backward()\n"
NO_BACKWARD = "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\n"


def submit_and_wait(api: APIClient, course: Course, code: str) -> dict[str, Any]:
    response = api.post("/api/v1/submissions/?wait=30", {"item": ITEM, "code": code, "course": course.slug},
                        format="json")
    assert response.status_code in (201, 202), response.content
    body = response.json()
    end = time.monotonic() + 45
    while body["status"] in ("queued", "running") and time.monotonic() < end:
        body = api.get(f"/api/v1/submissions/{body['id']}/", {"wait": 10}).json()
    return body


def scores_arrive(platform: Any, sub: str, count: int, timeout: float = 45.0) -> list[dict[str, Any]]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        received = platform.scores_for(sub)
        if len(received) >= count:
            return received
        time.sleep(0.1)
    raise AssertionError(f"{len(platform.scores_for(sub))} scores for {sub} after {timeout} s, expected {count}; "
                         f"the platform refused: {platform.recorded.refused}")


def test_each_graded_attempt_sends_the_quiz_score_to_the_platform(
        client: Client, live_platform: Platform, seed_quiz: None, celery_worker: object) -> None:
    line_item = live_platform.line_item_create("course-101", label="Autograd basics", resource_link_id="link-1")
    response = Launcher(client, live_platform).launch(live_platform.claims(
        sub="learner-7", roles=[ROLE_LEARNER], custom={"quiz": "autograd-basics"}, line_item=line_item))
    assert response.status_code == 302, response.content[:500]
    course = Course.objects.get(lti_contexts__isnull=False)
    items = Item.objects.filter(quiz__slug="autograd-basics", archived=False).count()
    api = APIClient()
    api.force_authenticate(get_user_model().objects.get(lti_users__sub="learner-7"))

    first = submit_and_wait(api, course, NO_BACKWARD)
    assert first["status"] == "failed"
    [sent] = scores_arrive(live_platform, "learner-7", 1)
    assert sent["scoreGiven"] == pytest.approx(100 * first["score"] / items, abs=1e-3)
    assert (sent["scoreMaximum"], sent["gradingProgress"]) == (100.0, "FullyGraded")
    assert live_platform.recorded.scores[0].line_item == line_item

    second = submit_and_wait(api, course, CORRECT)
    assert second["status"] == "passed"
    received = scores_arrive(live_platform, "learner-7", 2)
    assert received[-1]["scoreGiven"] == pytest.approx(100 / items, abs=1e-3)
    assert datetime.fromisoformat(received[-1]["timestamp"]) > datetime.fromisoformat(received[0]["timestamp"])
