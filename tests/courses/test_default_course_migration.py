"""Existing installs keep working: the migration puts every user, quiz and submission into a default course
with the policy that behaves as the product did before courses."""
from __future__ import annotations

import pytest
from django.apps.registry import Apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("grader", "0004_submission_course_policy"), ("quiz", "0003_item_max_attempts")]


def migrate(targets: list[tuple[str, str]]) -> Apps:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_existing_users_quizzes_and_submissions_land_in_a_default_course() -> None:
    old = migrate(BEFORE)
    User, Group = old.get_model("auth", "User"), old.get_model("auth", "Group")
    Quiz, Item = old.get_model("quiz", "Quiz"), old.get_model("quiz", "Item")
    Submission = old.get_model("grader", "Submission")
    learner = User.objects.create(username="old-learner")
    teacher = User.objects.create(username="old-teacher", is_staff=True)
    teacher.groups.add(Group.objects.get_or_create(name="instructors")[0])
    quiz = Quiz.objects.create(slug="old-quiz", title="Old quiz")
    item = Item.objects.create(quiz=quiz, slug="old-item", kind="code", title="t", prompt="p")
    for status, score in (("failed", 0.5), ("rejected", 0.0), ("passed", 1.0)):
        Submission.objects.create(user=learner, item=item, code=status, status=status, score=score)

    new = migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    Course, CourseQuiz = new.get_model("courses", "Course"), new.get_model("courses", "CourseQuiz")
    Membership, Submission = new.get_model("courses", "Membership"), new.get_model("grader", "Submission")
    course = Course.objects.get(slug="default")
    assert course.self_enrol and len(course.join_code) == 8
    assignment = CourseQuiz.objects.get(course=course, quiz__slug="old-quiz")
    assert assignment.max_attempts is None and assignment.penalties == "" and assignment.due_at is None
    assert assignment.reveal == "after_attempts" and assignment.reveal_attempts is None  # the item's own count
    roles = dict(Membership.objects.filter(course=course).values_list("user__username", "role"))
    assert roles == {"old-learner": "learner", "old-teacher": "instructor"}
    rows = list(Submission.objects.order_by("id").values_list("course__slug", "code", "attempt", "final_score"))
    assert rows == [("default", "failed", 1, 0.5), ("default", "rejected", None, 0.0), ("default", "passed", 2, 1.0)]
