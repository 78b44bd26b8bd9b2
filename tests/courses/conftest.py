"""A course of its own (not the default one) with a code item and a choice item, a learner and its staff."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from courses.models import Course, CourseQuiz, Membership
from grader.apis import SubmissionRateThrottle
from tests.factories import (
    CheckFactory,
    ChoiceFactory,
    ChoiceItemFactory,
    CourseFactory,
    CourseQuizFactory,
    ItemFactory,
    MembershipFactory,
    QuizFactory,
    UserFactory,
)


@pytest.fixture
def course(db: None) -> Course:
    return CourseFactory.create(slug="ml101", title="Machine learning 101", join_code="JOIN101")


@pytest.fixture
def course_quiz(course: Course) -> CourseQuiz:
    quiz = QuizFactory.create(slug="week1", title="Week 1", assign=False)
    code = ItemFactory.create(quiz=quiz, slug="poly", order=1, starter_code="import torch\n# TODO\n",
                              explanation="Because calculus.", solution_code="# reference-marker\nimport torch\n")
    CheckFactory.create(item=code, order=0)
    choice = ChoiceItemFactory.create(quiz=quiz, slug="pick", order=2, explanation="The first one.")
    ChoiceFactory.create(item=choice, order=0, text="Right", correct=True)
    ChoiceFactory.create(item=choice, order=1, text="Wrong", correct=False)
    ChoiceFactory.create(item=choice, order=2, text="Also wrong", correct=False)
    ChoiceFactory.create(item=choice, order=3, text="Wrong too", correct=False)
    return CourseQuizFactory.create(course=course, quiz=quiz)


def member(course: Course, username: str, role: str = Membership.Role.LEARNER, **fields: object) -> User:
    user = UserFactory.create(username=username, enrol=False, **fields)
    MembershipFactory.create(course=course, user=user, role=role)
    cache.delete(SubmissionRateThrottle.cache_format % {"scope": "submissions", "ident": user.pk})
    return user


@pytest.fixture
def student(course: Course) -> User:
    return member(course, "student")


@pytest.fixture
def api(student: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(student)
    return client


@pytest.fixture
def site(student: User) -> Client:
    client = Client()
    client.force_login(student)
    return client
