"""Fixtures for the web tier's tests: items without the sandbox (nothing here grades), API clients. (A real
gunicorn on the test database: the `gunicorn` fixture, in tests/conftest.py.)"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.settings import api_settings
from rest_framework.test import APIClient

from grader.apis import SubmissionRateThrottle
from quiz.models import Item
from tests.factories import CheckFactory, ChoiceFactory, ChoiceItemFactory, ItemFactory, QuizFactory


@pytest.fixture
def code_item(db: None) -> Item:
    """A code item of the default course with a stored reference value (grading would need a worker)."""
    item = ItemFactory.create(slug="poly", quiz=QuizFactory.create(slug="basics"))
    CheckFactory.create(item=item)
    return item


@pytest.fixture
def choice_item(code_item: Item) -> Item:
    item = ChoiceItemFactory.create(slug="pick", quiz=code_item.quiz)
    ChoiceFactory.create(item=item, correct=True)
    ChoiceFactory.create(item=item)
    ChoiceFactory.create(item=item)
    return item


@pytest.fixture
def api(learner: Any, code_item: Item) -> APIClient:
    client = APIClient()
    client.force_authenticate(learner)
    return client


@pytest.fixture
def token(learner: Any) -> str:
    return Token.objects.create(user=learner).key


@pytest.fixture
def unthrottled() -> Iterator[None]:
    """Many submissions from one learner in a second: lift the per-user rate (it has tests of its own)."""
    defaults = cast("dict[str, str | None]", api_settings.DEFAULT_THROTTLE_RATES)  # the stubs say numbers; they are strings
    SubmissionRateThrottle.THROTTLE_RATES = {**defaults, "submissions": "100000/min"}
    yield
    SubmissionRateThrottle.THROTTLE_RATES = defaults


