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
    ItemFactory(slug="same")
    with pytest.raises(IntegrityError), transaction.atomic():
        ItemFactory(slug="same", quiz=QuizFactory())


def test_checks_and_choices_have_one_row_per_position() -> None:
    check = CheckFactory(order=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        CheckFactory(item=check.item, order=0)
    choice = ChoiceFactory(order=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        ChoiceFactory(item=choice.item, order=0)


def test_an_item_with_submissions_cannot_be_deleted() -> None:
    submission = SubmissionFactory()
    with pytest.raises(ProtectedError):
        submission.item.delete()


def test_items_come_in_quiz_then_item_order() -> None:
    first, second = QuizFactory(order=1), QuizFactory(order=2)
    b = ItemFactory(quiz=second, order=0, slug="b")
    a2 = ItemFactory(quiz=first, order=1, slug="a2")
    a1 = ItemFactory(quiz=first, order=0, slug="a1")
    assert list(Item.objects.all()) == [a1, a2, b]


def test_a_check_is_labelled_by_its_name_or_its_target() -> None:
    assert CheckFactory(target="x.grad").label == "x.grad"
    assert CheckFactory(target="model[0].weight.grad", name="first weight").label == "first weight"
    assert Check.Compare.NONE == "none"


def test_pending_means_queued_or_running() -> None:
    states = {status: SubmissionFactory(status=status).is_pending for status in Submission.Status.values}
    assert {s for s, pending in states.items() if pending} == {"queued", "running"}


def test_new_submissions_come_first() -> None:
    older, newer = SubmissionFactory(), SubmissionFactory()
    assert list(Submission.objects.all()) == [newer, older]
