"""The gradebook CSV: learners by items' best scores, and per-quiz totals."""
from __future__ import annotations

import pytest

from grader.gradebook import gradebook_csv

pytestmark = pytest.mark.django_db

FULL = (
    "learner,poly,concepts,unused,extra,stats-quiz total,second total\r\n"
    "'+plus,,0,,,0,0\r\n"
    "ada,1,1,,,2,0\r\n"
    "bob,0.3333,1,,,1.3333,0\r\n"
    "grace,1,0,,0.25,1,0.25\r\n"
)


def test_the_gradebook_of_every_quiz(known_submissions) -> None:  # type: ignore[no-untyped-def]
    assert gradebook_csv() == FULL


def test_the_gradebook_of_one_quiz(known_submissions) -> None:  # type: ignore[no-untyped-def]
    from quiz.models import Quiz

    second = Quiz.objects.filter(slug="second")
    assert gradebook_csv(quizzes=second) == "learner,extra,second total\r\ngrace,0.25,0.25\r\n"


def test_the_admin_downloads_it(instructor_client, known_submissions) -> None:  # type: ignore[no-untyped-def]
    response = instructor_client.get("/admin/grader/submission/gradebook.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="gradebook-')
    assert response.content.decode() == FULL
    second = known_submissions["second"]
    one = instructor_client.get(f"/admin/grader/submission/gradebook.csv?quiz={second.pk}")
    assert one.content.decode() == "learner,extra,second total\r\ngrace,0.25,0.25\r\n"
    assert 'href="/admin/grader/submission/gradebook.csv"' in instructor_client.get(
        "/admin/grader/submission/").content.decode()


def test_the_quiz_action_downloads_the_selected_quizzes(instructor_client, known_submissions) -> None:  # type: ignore[no-untyped-def]
    quiz = known_submissions["quiz"]
    response = instructor_client.post("/admin/quiz/quiz/", {"action": "download_gradebook",
                                                            "_selected_action": [quiz.pk]})
    assert response.content.decode() == (
        "learner,poly,concepts,unused,stats-quiz total\r\n"
        "'+plus,,0,,0\r\n"
        "ada,1,1,,2\r\n"
        "bob,0.3333,1,,1.3333\r\n"
        "grace,1,0,,1\r\n"
    )
