"""The gradebook CSV: learners by items' best scores, and per-quiz totals."""
from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from courses.models import CourseQuiz
from reports.gradebook import gradebook_csv

pytestmark = pytest.mark.django_db

HEAD = "course,learner," + ",".join(f"{s},{s} raw,{s} penalty,{s} late" for s in ("poly", "concepts", "unused", "extra"))
# Every learner of the course, attempts or not; per item what counts (the best final score), the raw score,
# the penalty and lateness; bob's queued, rejected and internal_error submissions count for nothing.
FULL = (
    HEAD + ",stats-quiz total,second total\r\n"
    "default,'+plus,,,,,0,0,0,,,,,,,,,,0,0\r\n"
    "default,ada,1,1,0,,1,1,0,,,,,,,,,,2,0\r\n"
    "default,bob,0.3333,0.3333,0,,1,1,0,,,,,,,,,,1.3333,0\r\n"
    "default,grace,1,1,0,,0,0,0,,,,,,0.25,0.25,0,,1,0.25\r\n"
)
SECOND = (
    "course,learner,extra,extra raw,extra penalty,extra late,second total\r\n"
    "default,'+plus,,,,,0\r\ndefault,ada,,,,,0\r\ndefault,bob,,,,,0\r\ndefault,grace,0.25,0.25,0,,0.25\r\n"
)


def test_the_gradebook_of_every_quiz(known_submissions: dict[str, Any]) -> None:
    assert gradebook_csv(course_quizzes=CourseQuiz.objects.all()) == FULL


def test_the_gradebook_of_one_quiz(known_submissions: dict[str, Any]) -> None:
    assert gradebook_csv(course_quizzes=CourseQuiz.objects.filter(quiz__slug="second")) == SECOND


def test_penalties_and_lateness_show_next_to_what_counts(known_submissions: dict[str, Any]) -> None:
    from grader.models import Submission

    ada = known_submissions["users"]["ada"]
    Submission.objects.filter(user=ada, item=known_submissions["concepts"], status="passed").update(
        penalty=20, late=True, final_score=0.8)
    row = next(r for r in gradebook_csv(course_quizzes=CourseQuiz.objects.filter(quiz__slug="stats-quiz")).split(
        "\r\n") if ",ada," in r)
    assert row.startswith("default,ada,1,1,0,,0.8,1,20,late,")


def test_the_admin_downloads_it(instructor_client: Client, known_submissions: dict[str, Any]) -> None:
    response = instructor_client.get("/admin/grader/submission/gradebook.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="gradebook-')
    assert response.content.decode() == FULL
    second = known_submissions["second"]
    one = instructor_client.get(f"/admin/grader/submission/gradebook.csv?quiz={second.pk}")
    assert one.content.decode() == SECOND
    assert 'href="/admin/grader/submission/gradebook.csv"' in instructor_client.get(
        "/admin/grader/submission/").content.decode()


def test_the_quiz_action_downloads_the_selected_quizzes(
        instructor_client: Client, known_submissions: dict[str, Any]) -> None:
    quiz = known_submissions["quiz"]
    response = instructor_client.post("/admin/quiz/quiz/", {"action": "download_gradebook",
                                                            "_selected_action": [quiz.pk]})
    assert response.content.decode() == "".join(
        ",".join(line.split(",")[:14] + line.split(",")[18:19]) + "\r\n" for line in FULL.split("\r\n")[:-1])
