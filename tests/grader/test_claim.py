"""Who may grade a submission: the claim that makes grading happen once."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from grader.models import Submission
from grader.services import submission_claim, submission_record
from grader.sandbox import Grade
from tests.factories import SubmissionFactory

pytestmark = pytest.mark.django_db


def test_a_queued_submission_is_claimed_once() -> None:
    submission = SubmissionFactory()
    claimed = submission_claim(submission_id=submission.pk, task_id="task-a")
    assert claimed is not None and claimed.status == "running" and claimed.claim == "task-a"
    assert claimed.deliveries == 1 and claimed.item == submission.item
    assert submission_claim(submission_id=submission.pk, task_id="task-b") is None, "another task leaves it alone"


def test_the_same_task_redelivered_takes_it_back() -> None:
    submission = SubmissionFactory()
    submission_claim(submission_id=submission.pk, task_id="task-a")
    again = submission_claim(submission_id=submission.pk, task_id="task-a")
    assert again is not None and again.deliveries == 2


def test_a_stale_running_submission_can_be_taken_over(settings) -> None:  # type: ignore[no-untyped-def]
    stale = timezone.now() - timedelta(seconds=settings.GRADER_STUCK_AFTER_SECONDS + 1)
    submission = SubmissionFactory(status="running", claim="dead-task", started_at=stale, deliveries=1)
    taken = submission_claim(submission_id=submission.pk, task_id="task-b")
    assert taken is not None and taken.claim == "task-b" and taken.deliveries == 2
    late = submission_record(submission=submission, grade=Grade(status="passed", score=1.0), task_id="dead-task")
    assert not late, "the presumed-dead task's verdict is dropped"
    assert Submission.objects.get(pk=submission.pk).status == "running"


def test_a_graded_submission_is_never_claimed_again() -> None:
    submission = SubmissionFactory(status="passed")
    assert submission_claim(submission_id=submission.pk, task_id="task-a") is None
    assert Submission.objects.get(pk=submission.pk).deliveries == 0


def test_too_many_deliveries_end_in_internal_error(settings) -> None:  # type: ignore[no-untyped-def]
    submission = SubmissionFactory(status="running", claim="task-a", deliveries=settings.GRADER_MAX_DELIVERIES,
                                   started_at=timezone.now())
    assert submission_claim(submission_id=submission.pk, task_id="task-a") is None
    submission.refresh_from_db()
    assert submission.status == "internal_error" and "not your fault" in submission.error
    assert submission.finished_at is not None


def test_a_missing_submission_is_ignored() -> None:
    assert submission_claim(submission_id=987654, task_id="task-a") is None
