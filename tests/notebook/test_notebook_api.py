"""GET /api/v1/quizzes/{slug}/notebook/: the viewer's quiz as a valid .ipynb, in one of their courses."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from courses.models import CourseQuiz, QuizStart
from quiz.models import Item
from tests.factories import CourseFactory, CourseQuizFactory, MembershipFactory, UserFactory

from .conftest import cells_of, read_notebook

pytestmark = pytest.mark.django_db

URL = "/api/v1/quizzes/autograd-basics/notebook/"


def items() -> list[Item]:
    return list(Item.objects.filter(quiz__slug="autograd-basics", archived=False).order_by("order", "slug"))


def test_the_quiz_comes_as_a_notebook_file(api: APIClient, seed_quiz: None) -> None:
    response = api.get(URL)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/x-ipynb+json; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="autograd-basics.ipynb"'
    notebook = read_notebook(response.content)
    assert notebook.nbformat == 4 and notebook.nbformat_minor >= 5
    assert notebook.metadata.kernelspec.name == "python3"
    assert notebook.metadata.autograd_quiz == {"server": "http://testserver", "quiz": "autograd-basics",
                                               "course": "default"}


def test_the_first_code_cell_loads_the_client_and_logs_in_to_this_server(api: APIClient, seed_quiz: None) -> None:
    notebook = read_notebook(api.get(URL).content)
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# Autograd basics")
    setup = notebook.cells[1]
    assert setup.cell_type == "code"
    lines = [line for line in setup.source.splitlines() if not line.startswith("#")]
    assert lines == ["try:", "    import autograd_quiz", "except ImportError:",
                     "    %pip install --quiet http://testserver/client/autograd-quiz-client.tar.gz",
                     "%load_ext autograd_quiz", "%quiz_login http://testserver --course default",
                     "from autograd_quiz import grade, hint, solution"]


def test_each_code_item_is_its_prompt_then_its_starter_under_grade(api: APIClient, seed_quiz: None) -> None:
    notebook = read_notebook(api.get(URL).content)
    code_items = [i for i in items() if i.is_code]
    assert len(code_items) >= 5
    for number, item in enumerate(items(), 1):
        if not item.is_code:
            continue
        prompt, answer = cells_of(notebook, item.slug)
        assert prompt.cell_type == "markdown" and prompt.source.startswith(f"## {number}. {item.title}")
        assert item.prompt.strip() in prompt.source
        assert answer.cell_type == "code"
        assert answer.source == f"%%grade {item.slug}\n{item.starter_code.rstrip()}\n"
        assert answer.id == f"{item.slug}-answer"


def test_each_choice_item_lists_its_answers_by_letter_and_calls_grade(api: APIClient, seed_quiz: None) -> None:
    notebook = read_notebook(api.get(URL).content)
    choice_items = [i for i in items() if not i.is_code]
    assert choice_items
    for item in choice_items:
        prompt, answer = cells_of(notebook, item.slug)
        for letter, choice in zip("ABCDEFGH", item.choices.all()):
            assert f"- **{letter}.** {choice.text.strip().splitlines()[0]}" in prompt.source
        assert answer.source.endswith(f'grade("{item.slug}", choices=[...])\n')


def test_the_notebook_holds_no_solution_explanation_or_answer_feedback(api: APIClient, seed_quiz: None) -> None:
    notebook = read_notebook(api.get(URL).content)
    text = "\n".join(cell.source for cell in notebook.cells)
    secrets = 0
    for item in items():
        for secret in [item.solution_code, item.explanation, *(c.feedback for c in item.choices.all())]:
            if secret.strip():
                secrets += 1
                assert secret.strip() not in text, f"{item.slug} leaks {secret[:60]!r}"
    assert secrets >= len(items())


def test_each_learner_gets_their_own_numbers(practice_quiz: None, learner: User, other_learner: User) -> None:
    starters = {}
    for user in (learner, other_learner):
        api = APIClient()
        api.force_authenticate(user)
        notebook = read_notebook(api.get("/api/v1/quizzes/autograd-in-practice/notebook/").content)
        for item in Item.objects.filter(quiz__slug="autograd-in-practice").exclude(params={}):
            _, answer = cells_of(notebook, item.slug)
            expected = api.get(f"/api/v1/items/{item.slug}/").json()["starter_code"]
            assert answer.source == f"%%grade {item.slug}\n{expected.rstrip()}\n"
            starters[(user.username, item.slug)] = answer.source
    slugs = {slug for _, slug in starters}
    assert any(starters[("ada", s)] != starters[("grace", s)] for s in slugs), "the draws are per learner"


def test_a_quiz_outside_the_viewers_courses_is_a_404_in_the_error_shape(seed_quiz: None) -> None:
    api = APIClient()
    api.force_authenticate(UserFactory.create(username="outsider", enrol=False))
    response = api.get(URL)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert api.get("/api/v1/quizzes/no-such-quiz/notebook/").status_code == 404


def test_a_quiz_in_two_of_the_viewers_courses_needs_the_course(api: APIClient, seed_quiz: None, learner: User) -> None:
    other = CourseFactory.create(slug="ml101", title="ML 101")
    CourseQuizFactory.create(course=other, quiz=CourseQuiz.objects.get(course__slug="default").quiz)
    MembershipFactory.create(course=other, user=learner)
    refused = api.get(URL)
    assert refused.status_code == 400
    assert "course" in refused.json()["error"]["fields"]
    notebook = read_notebook(api.get(URL, {"course": "ml101"}).content)
    assert "%quiz_login http://testserver --course ml101" in notebook.cells[1].source


def test_the_notebook_needs_a_login(seed_quiz: None) -> None:
    response = APIClient().get(URL)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_downloading_starts_a_time_limited_quizs_clock(api: APIClient, seed_quiz: None, learner: User) -> None:
    course_quiz = CourseQuiz.objects.get(course__slug="default", quiz__slug="autograd-basics")
    course_quiz.time_limit_minutes = 30
    course_quiz.save()
    assert not QuizStart.objects.filter(user=learner).exists()
    api.get(URL)
    assert QuizStart.objects.filter(user=learner, course_quiz=course_quiz).exists(), \
        "the notebook shows every prompt, as opening an item does"
