"""A learner's unsent draft and opened hints are kept on the server, per learner and item."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from quiz.models import Item, LearnerItemState
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def api_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_draft_and_the_opened_hints_follow_the_learner(learner: User, other_learner: User, seed_quiz: None) -> None:
    api = api_for(learner)
    url = "/api/v1/items/grad-of-polynomial/state/"
    assert api.put(url, {"draft": "x = 1\n"}, format="json").json()["draft"] == "x = 1\n"
    assert api.put(url, {"hints_opened": 2}, format="json").json()["hints_opened"] == 2
    assert api.put(url, {"hints_opened": 1}, format="json").json()["hints_opened"] == 2  # a hint seen stays seen
    state = api_for(learner).get("/api/v1/items/grad-of-polynomial/").json()["state"]
    assert state["draft"] == "x = 1\n" and state["hints_opened"] == 2 and state["draft_saved_at"]
    assert api_for(other_learner).get("/api/v1/items/grad-of-polynomial/").json()["state"] == {
        "draft": "", "draft_saved_at": None, "hints_opened": 0}


def test_bad_state_is_refused_and_nothing_is_stored(learner: User, seed_quiz: None) -> None:
    api = api_for(learner)
    url = "/api/v1/items/grad-of-polynomial/state/"
    hints = len(Item.objects.get(slug="grad-of-polynomial").hints)
    too_many = api.put(url, {"hints_opened": hints + 1}, format="json")
    assert too_many.status_code == 400 and f"has {hints} hint" in str(too_many.json())
    huge = api.put(url, {"draft": "#" * (64 * 1024 + 1)}, format="json")
    assert huge.status_code == 400 and "64 KiB" in str(huge.json())
    assert api.put(url, {"draft": "a\x00b"}, format="json").status_code == 400
    assert not LearnerItemState.objects.exists()


def test_an_item_outside_your_courses_keeps_no_state(seed_quiz: None) -> None:
    outsider = UserFactory.create(username="outsider", enrol=False)
    response = api_for(outsider).put("/api/v1/items/grad-of-polynomial/state/", {"draft": "x"}, format="json")
    assert response.status_code == 404 and not LearnerItemState.objects.exists()
