"""config.sql reads and writes rows exactly as the ORM does, on SQLite and on PostgreSQL, and the API's token
authentication (config.authentication, built on it) answers as DRF's does."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.db.transaction import TransactionManagementError
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config import sql
from courses import selectors as course_selectors
from quiz import selectors as quiz_selectors
from grader.models import Submission
from quiz.models import Check, Item

from .factories import CheckFactory, ItemFactory, SubmissionFactory, UserFactory

pytestmark = pytest.mark.django_db


def _fields(row: object, model: type[Model]) -> dict[str, object]:
    return {field.attname: getattr(row, field.attname) for field in model._meta.concrete_fields}


def test_a_row_read_in_sql_equals_the_orms_read_of_it() -> None:
    """Datetimes (text on SQLite), booleans (integers on SQLite), JSON and nulls come back as the ORM gives them."""
    started = timezone.now() - timedelta(minutes=3)
    submission = SubmissionFactory.create(
        status=Submission.Status.FAILED, late=True, started_at=started, finished_at=None, score=0.25,
        checks=[{"name": "x.grad", "passed": False, "message": "expected 2 ẟ"}], params={"n": 3})
    found = sql.get(Submission, id=submission.pk)
    assert found is not None
    assert _fields(found, Submission) == _fields(Submission.objects.get(pk=submission.pk), Submission)
    assert found.started_at == started and found.late is True and found.finished_at is None
    assert found._state.adding is False  # saved again, it updates its row


def test_get_matches_every_value_given_and_finds_nothing_else() -> None:
    item = ItemFactory.create()
    assert sql.get(Item, slug=item.slug, archived=False) == item
    assert sql.get(Item, slug=item.slug, archived=True) is None
    assert sql.get(Item, slug=item.slug + "-not") is None


def test_select_finds_every_matching_row_in_order_and_exists_says_whether_any() -> None:
    item, other = ItemFactory.create_batch(2)
    checks = [CheckFactory.create(item=item, order=order) for order in (3, 1, 2)]
    CheckFactory.create(item=other, order=0)
    found = sql.select(Check, item=item.pk, order_by=["order"])
    assert [check.pk for check in found] == [checks[1].pk, checks[2].pk, checks[0].pk]
    assert [_fields(check, Check) for check in found] == [_fields(check, Check) for check in item.checks.all()]
    assert sql.select(Check, item=item.pk, order=9) == []
    assert sql.exists(Check, item=other.pk) and not sql.exists(Check, item=other.pk, order=1)


def test_an_item_for_grading_comes_with_its_checks_in_order_and_asks_nothing_more(
        django_assert_num_queries: Any) -> None:
    item, other = ItemFactory.create_batch(2)
    checks = [CheckFactory.create(item=item, order=order) for order in (2, 0, 1)]
    CheckFactory.create(item=other, order=0)
    with django_assert_num_queries(1):
        found = quiz_selectors.item_for_grading(item_id=item.pk)
        assert found is not None
        read = list(found.checks.all())  # from the join's rows: no second query
    assert _fields(found, Item) == _fields(Item.objects.get(pk=item.pk), Item)
    assert [check.pk for check in read] == [checks[1].pk, checks[2].pk, checks[0].pk]
    assert [_fields(check, Check) for check in read] == [_fields(check, Check) for check in item.checks.all()]


def test_an_item_for_grading_without_checks_has_none_and_an_unknown_item_is_none(
        django_assert_num_queries: Any) -> None:
    item = ItemFactory.create()
    with django_assert_num_queries(1):
        found = quiz_selectors.item_for_grading(item_id=item.pk)
        assert found is not None and list(found.checks.all()) == []
    assert quiz_selectors.item_for_grading(item_id=item.pk + 1000) is None


def test_insert_stores_what_the_orms_create_would_and_gives_the_key() -> None:
    template = SubmissionFactory.build(user=UserFactory.create(), item=ItemFactory.create(), params={"n": 2},
                                       checks=[{"name": "x", "passed": True}], idempotency_key="k-1")
    before = timezone.now()
    stored = sql.insert(template.set_answer_digest())
    assert stored.pk is not None and stored._state.adding is False
    read = Submission.objects.get(pk=stored.pk)
    assert _fields(read, Submission) == _fields(stored, Submission)
    assert read.created_at >= before and read.answer_digest == Submission(
        code=template.code, params={"n": 2}).set_answer_digest().answer_digest
    again = SubmissionFactory.build(user=template.user, item=template.item, idempotency_key="k-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        sql.insert(again.set_answer_digest())  # the key's unique constraint holds as for the ORM


@pytest.mark.parametrize("conditions", [{}, {"expected": None}])
def test_conditions_sql_would_get_wrong_are_refused(conditions: dict[str, Any]) -> None:
    """No condition would read every row, and `= NULL` matches none where the ORM's filter(x=None) means IS NULL."""
    CheckFactory.create(expected=None)
    with pytest.raises(ValueError, match="conditions"):
        sql.select(Check, **conditions)
    with pytest.raises(ValueError, match="conditions"):
        sql.update(Check, where=conditions, values={"order": 5})


def test_update_writes_only_the_rows_matched_and_says_how_many() -> None:
    mine, other = SubmissionFactory.create_batch(2, status=Submission.Status.RUNNING, claim="task-1")
    finished = timezone.now()
    changed = sql.update(Submission, where={"id": mine.pk, "claim": "task-1"}, values={
        "status": Submission.Status.PASSED, "checks": [{"name": "y", "passed": True, "message": ""}],
        "finished_at": finished, "lease_until": None, "error_line": None})
    assert changed == 1
    mine.refresh_from_db()
    assert (mine.status, mine.checks, mine.finished_at) == (
        Submission.Status.PASSED, [{"name": "y", "passed": True, "message": ""}], finished)
    other.refresh_from_db()
    assert other.status == Submission.Status.RUNNING
    assert sql.update(Submission, where={"id": mine.pk, "claim": "task-2"}, values={"status": "queued"}) == 0


def test_refresh_reads_the_fields_named_into_the_object_and_no_other() -> None:
    submission = SubmissionFactory.create(status=Submission.Status.RUNNING, stdout="")
    Submission.objects.filter(pk=submission.pk).update(status=Submission.Status.PASSED, stdout="7.0\n")
    assert sql.refresh(submission, ["status"]) is submission
    assert (submission.status, submission.stdout) == (Submission.Status.PASSED, "")
    sql.refresh(submission, ["stdout", "finished_at"])
    assert submission.stdout == "7.0\n"
    Submission.objects.filter(pk=submission.pk).delete()
    with pytest.raises(Submission.DoesNotExist):
        sql.refresh(submission, ["status"])


@pytest.mark.django_db(transaction=True)  # no test transaction around it: the lock's own need shows
def test_the_enrolment_lock_needs_a_transaction(learner: object) -> None:
    item = ItemFactory.create()
    with pytest.raises(TransactionManagementError):
        course_selectors.enrolment_lock(user=learner, item=item)
    with transaction.atomic():  # inside one it answers: the factories' learner is in the default course
        enrolment = course_selectors.enrolment_lock(user=learner, item=item)
    assert (enrolment.course_quiz.quiz_id, enrolment.staff, enrolment.started_at) == (item.quiz_id, False, None)


@pytest.mark.parametrize(("active", "key_known", "expected"), [
    (True, True, 200), (False, True, 401), (True, False, 401)])
def test_token_authentication_answers_as_drfs(active: bool, key_known: bool, expected: int) -> None:
    user = UserFactory.create(is_active=active)
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key if key_known else 'f' * 40}")
    response = client.get("/api/v1/submissions/")
    assert response.status_code == expected, response.content
    if expected == 401:
        message = "User inactive or deleted." if key_known else "Invalid token."
        assert response.json()["error"]["message"] == message
    else:
        assert response.json()["count"] == 0
