"""The content and submission models: constraints and small behaviours."""
from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from grader.models import Submission
from quiz.models import Check, Item
from tests.factories import CheckFactory, ChoiceFactory, ItemFactory, QuizFactory, SubmissionFactory

pytestmark = pytest.mark.django_db


def test_item_slugs_are_unique_across_quizzes() -> None:
    ItemFactory.create(slug="same")
    with pytest.raises(IntegrityError), transaction.atomic():
        ItemFactory.create(slug="same", quiz=QuizFactory.create())


def test_checks_and_choices_have_one_row_per_position() -> None:
    check = CheckFactory.create(order=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        CheckFactory.create(item=check.item, order=0)
    choice = ChoiceFactory.create(order=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        ChoiceFactory.create(item=choice.item, order=0)


def test_an_item_with_submissions_cannot_be_deleted() -> None:
    submission = SubmissionFactory.create()
    with pytest.raises(ProtectedError):
        submission.item.delete()


def test_items_come_in_quiz_then_item_order() -> None:
    first, second = QuizFactory.create(order=1), QuizFactory.create(order=2)
    b = ItemFactory.create(quiz=second, order=0, slug="b")
    a2 = ItemFactory.create(quiz=first, order=1, slug="a2")
    a1 = ItemFactory.create(quiz=first, order=0, slug="a1")
    assert list(Item.objects.all()) == [a1, a2, b]


def test_a_check_is_labelled_by_its_name_or_its_target() -> None:
    assert CheckFactory.create(target="x.grad").label == "x.grad"
    assert CheckFactory.create(target="model[0].weight.grad", name="first weight").label == "first weight"
    assert Check.Compare.NONE == "none"


def test_pending_means_queued_or_running() -> None:
    states = {status: SubmissionFactory.create(status=status).is_pending for status in Submission.Status.values}
    assert {s for s, pending in states.items() if pending} == {"queued", "running"}


def test_new_submissions_come_first() -> None:
    older, newer = SubmissionFactory.create(), SubmissionFactory.create()
    assert list(Submission.objects.all()) == [newer, older]
