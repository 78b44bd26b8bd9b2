"""factory_boy factories for the models tests need."""
from __future__ import annotations

from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User

from courses.models import Course, CourseQuiz, Membership
from courses.services import default_course, membership_ensure, quiz_assign
from grader.models import Submission
from quiz.models import Check, Choice, Item, Quiz


def expected_of(check: Check) -> dict[str, Any]:
    """The reference observation of a check whose reference has been computed."""
    assert check.expected is not None, f"{check} has no reference value"
    return check.expected


class UserFactory(factory.django.DjangoModelFactory[User]):
    """A user enrolled in the default course (as its instructor when is_staff), as signing up on a fresh
    install does; `UserFactory.create(enrol=False)` for a user in no course."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"learner{n}")
    password = factory.django.Password("pass-word-123")

    @factory.post_generation
    def enrol(self: User, create: bool, extracted: bool | None, **kwargs: object) -> None:
        if create and extracted is not False:
            role = Membership.Role.INSTRUCTOR if self.is_staff else Membership.Role.LEARNER
            membership_ensure(course=default_course(), user=self, role=role)


class QuizFactory(factory.django.DjangoModelFactory[Quiz]):
    """A quiz assigned to the default course (`QuizFactory.create(assign=False)`: to none)."""

    class Meta:
        model = Quiz
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"quiz-{n}")
    title = factory.Sequence(lambda n: f"Quiz {n}")

    @factory.post_generation
    def assign(self: Quiz, create: bool, extracted: bool | None, **kwargs: object) -> None:
        if create and extracted is not False:
            quiz_assign(course=default_course(), quiz=self)


class CourseFactory(factory.django.DjangoModelFactory[Course]):
    class Meta:
        model = Course

    slug = factory.Sequence(lambda n: f"course-{n}")
    title = factory.Sequence(lambda n: f"Course {n}")


class CourseQuizFactory(factory.django.DjangoModelFactory[CourseQuiz]):
    class Meta:
        model = CourseQuiz
        django_get_or_create = ("course", "quiz")

    course = factory.SubFactory(CourseFactory)
    quiz = factory.SubFactory(QuizFactory, assign=False)


class MembershipFactory(factory.django.DjangoModelFactory[Membership]):
    class Meta:
        model = Membership
        django_get_or_create = ("course", "user")

    course = factory.SubFactory(CourseFactory)
    user = factory.SubFactory(UserFactory, enrol=False)
    role = Membership.Role.LEARNER


class ItemFactory(factory.django.DjangoModelFactory[Item]):
    """A code item: x = 2.0 tracking, y = x**2 + 3x + 1, backward (checks added by CheckFactory)."""

    class Meta:
        model = Item

    quiz = factory.SubFactory(QuizFactory)
    slug = factory.Sequence(lambda n: f"item-{n}")
    kind = Item.Kind.CODE
    title = "Gradient of a polynomial"
    prompt = "Compute `x.grad`."
    solution_code = "import torch\nx = torch.tensor(2.0, requires_grad=True)\n(x ** 2 + 3 * x + 1).backward()\n"
    reveal_expected = True


class ChoiceItemFactory(ItemFactory):
    kind = Item.Kind.CHOICE
    solution_code = ""


class CheckFactory(factory.django.DjangoModelFactory[Check]):
    class Meta:
        model = Check

    item = factory.SubFactory(ItemFactory)
    order = factory.Sequence(lambda n: n)
    target = "x.grad"
    compare = Check.Compare.VALUE
    expected = factory.LazyFunction(lambda: {
        "kind": "tensor", "dtype": "float32", "shape": [], "numel": 1, "requires_grad": False,
        "is_leaf": True, "grad_fn": None, "values": [7.0]})


class ChoiceFactory(factory.django.DjangoModelFactory[Choice]):
    class Meta:
        model = Choice

    item = factory.SubFactory(ChoiceItemFactory)
    order = factory.Sequence(lambda n: n)
    text = factory.Sequence(lambda n: f"Answer {n}")
    correct = False


class SubmissionFactory(factory.django.DjangoModelFactory[Submission]):
    class Meta:
        model = Submission

    user = factory.SubFactory(UserFactory)
    item = factory.SubFactory(ItemFactory)
    course = factory.LazyFunction(default_course)
    score = None
    final_score = factory.SelfAttribute("score")
    attempt = 1  # a graded attempt (the count is what tests read; set None for one that cost nothing)
    code = "print('hi')"
    status = Submission.Status.QUEUED
