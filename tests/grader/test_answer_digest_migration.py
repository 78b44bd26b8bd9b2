"""Existing submissions get the digest of their answer, so the repeat rule finds answers sent before it was
stored with every submission."""
from __future__ import annotations

import pytest
from django.apps.registry import Apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from grader.models import answer_digest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("grader", "0008_submission_lease")


def latest() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def migrate(targets: list[tuple[str, str]]) -> Apps:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_existing_submissions_get_the_digest_the_model_computes() -> None:
    old = migrate([BEFORE, *(node for node in latest() if node[0] != "grader")])  # every other app as it is
    User, Course = old.get_model("auth", "User"), old.get_model("courses", "Course")
    Quiz, Item = old.get_model("quiz", "Quiz"), old.get_model("quiz", "Item")
    Submission = old.get_model("grader", "Submission")
    learner = User.objects.create(username="old-learner")
    course = Course.objects.create(slug="old-course", title="Old course", join_code="OLD12345")
    quiz = Quiz.objects.create(slug="old-quiz", title="Old quiz")
    code_item = Item.objects.create(quiz=quiz, slug="old-code", kind="code", title="t", prompt="p")
    choice_item = Item.objects.create(quiz=quiz, slug="old-choice", kind="choice", title="t", prompt="p")
    answers = [
        {"item": code_item, "code": "x = 1  \r\ny = 2\n\n", "params": {"a": 3}},
        {"item": code_item, "code": "x = 1\ny = 2"},
        {"item": choice_item, "selected": [5, 2]},
    ]
    for answer in answers:
        Submission.objects.create(user=learner, course=course, status="failed", attempt=1, **answer)

    new = migrate(latest())
    rows = list(new.get_model("grader", "Submission").objects.order_by("pk"))
    assert [row.answer_digest for row in rows] == [
        answer_digest(code="x = 1\ny = 2", selected=[], params={"a": 3}),
        answer_digest(code="x = 1\ny = 2", selected=[], params={}),
        answer_digest(code="", selected=[2, 5], params={}),
    ]
    assert rows[0].answer_digest != rows[1].answer_digest  # the draw is part of the answer
