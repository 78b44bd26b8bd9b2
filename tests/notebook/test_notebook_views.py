"""The site's "Download as notebook": a link on each quiz page, in the page's course, to the same notebook
as the API's."""
from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from courses.models import CourseQuiz
from tests.factories import CourseFactory, CourseQuizFactory, MembershipFactory

from .conftest import read_notebook

pytestmark = pytest.mark.django_db


@pytest.fixture
def site(learner: User, seed_quiz: None) -> Client:
    client = Client()
    client.force_login(learner)
    return client


def test_the_quiz_page_links_to_its_notebook_in_its_course(site: Client) -> None:
    page = site.get("/quizzes/autograd-basics/?course=default").content.decode()
    [link] = re.findall(r'<a href="([^"]+)" download>Download as notebook</a>', page)
    assert link == "/quizzes/autograd-basics/notebook/?course=default"


def test_the_download_is_the_learners_notebook_as_an_attachment(site: Client) -> None:
    response = site.get("/quizzes/autograd-basics/notebook/?course=default")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="autograd-basics.ipynb"'
    assert response["Cache-Control"] == "private, no-store"
    notebook = read_notebook(response.content)
    assert "%quiz_login http://testserver --course default" in notebook.cells[1].source
    assert sum(c.source.startswith("%%grade ") for c in notebook.cells) >= 5


def test_the_download_needs_a_login(seed_quiz: None) -> None:
    response = Client().get("/quizzes/autograd-basics/notebook/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_quiz_in_two_courses_asks_which_course(site: Client, learner: User) -> None:
    other = CourseFactory.create(slug="ml101", title="ML 101")
    CourseQuizFactory.create(course=other, quiz=CourseQuiz.objects.get(course__slug="default").quiz)
    MembershipFactory.create(course=other, user=learner)
    response = site.get("/quizzes/autograd-basics/notebook/")
    assert response.status_code == 200 and "Choose a course" in response.content.decode()
    assert 'href="/quizzes/autograd-basics/notebook/?course=ml101"' in response.content.decode()
    chosen = read_notebook(site.get("/quizzes/autograd-basics/notebook/?course=ml101").content)
    assert "--course ml101" in chosen.cells[1].source


def test_a_quiz_outside_the_learners_courses_is_not_found(site: Client) -> None:
    assert site.get("/quizzes/autograd-basics/notebook/?course=nope").status_code == 404
    assert site.get("/quizzes/no-such-quiz/notebook/").status_code == 404
