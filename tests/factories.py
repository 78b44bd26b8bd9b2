"""factory_boy factories for the models tests need."""
from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from grader.models import Submission
from quiz.models import Check, Choice, Item, Quiz


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"learner{n}")
    password = factory.django.Password("pass-word-123")


class QuizFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Quiz

    slug = factory.Sequence(lambda n: f"quiz-{n}")
    title = factory.Sequence(lambda n: f"Quiz {n}")


class ItemFactory(factory.django.DjangoModelFactory):
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


class CheckFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Check

    item = factory.SubFactory(ItemFactory)
    order = factory.Sequence(lambda n: n)
    target = "x.grad"
    compare = Check.Compare.VALUE
    expected = factory.LazyFunction(lambda: {
        "kind": "tensor", "dtype": "float32", "shape": [], "numel": 1, "requires_grad": False,
        "is_leaf": True, "grad_fn": None, "values": [7.0]})


class ChoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Choice

    item = factory.SubFactory(ChoiceItemFactory)
    order = factory.Sequence(lambda n: n)
    text = factory.Sequence(lambda n: f"Answer {n}")
    correct = False


class SubmissionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Submission

    user = factory.SubFactory(UserFactory)
    item = factory.SubFactory(ItemFactory)
    code = "print('hi')"
    status = Submission.Status.QUEUED
