"""Who may grade a submission: the claim that makes grading happen once."""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings

from grader.models import Submission
from grader.services import submission_claim, submission_lease_kept, submission_lease_renew, submission_record
from grader.sandbox import Grade
from tests.factories import SubmissionFactory

pytestmark = pytest.mark.django_db


def test_a_queued_submission_is_claimed_once() -> None:
    submission = SubmissionFactory.create()
    claimed = submission_claim(submission_id=submission.pk, task_id="task-a")
    assert claimed is not None and claimed.status == "running" and claimed.claim == "task-a"
    assert claimed.deliveries == 1 and claimed.item == submission.item
    assert submission_claim(submission_id=submission.pk, task_id="task-b") is None, "another task leaves it alone"


def test_the_same_task_redelivered_takes_it_back() -> None:
    submission = SubmissionFactory.create()
    submission_claim(submission_id=submission.pk, task_id="task-a")
    again = submission_claim(submission_id=submission.pk, task_id="task-a")
    assert again is not None and again.deliveries == 2


def test_a_stale_running_submission_can_be_taken_over(settings: Settings) -> None:
    stale = timezone.now() - timedelta(seconds=settings.GRADER_STUCK_AFTER_SECONDS + 1)
    submission = SubmissionFactory.create(status="running", claim="dead-task", started_at=stale, deliveries=1)
    taken = submission_claim(submission_id=submission.pk, task_id="task-b")
    assert taken is not None and taken.claim == "task-b" and taken.deliveries == 2
    late = submission_record(submission=submission, grade=Grade(status="passed", score=1.0), task_id="dead-task")
    assert not late, "the presumed-dead task's verdict is dropped"
    assert Submission.objects.get(pk=submission.pk).status == "running"


def test_a_graded_submission_is_never_claimed_again() -> None:
    submission = SubmissionFactory.create(status="passed")
    assert submission_claim(submission_id=submission.pk, task_id="task-a") is None
    assert Submission.objects.get(pk=submission.pk).deliveries == 0


def test_too_many_deliveries_end_in_internal_error(settings: Settings) -> None:
    submission = SubmissionFactory.create(status="running", claim="task-a", deliveries=settings.GRADER_MAX_DELIVERIES,
                                          started_at=timezone.now())
    assert submission_claim(submission_id=submission.pk, task_id="task-a") is None
    submission.refresh_from_db()
    assert submission.status == "internal_error" and "not your fault" in submission.error
    assert submission.finished_at is not None


def test_a_missing_submission_is_ignored() -> None:
    assert submission_claim(submission_id=987654, task_id="task-a") is None


# -- the claim is a lease (issue 14: recovery in seconds) ---------------------------
def test_a_claim_is_a_lease_of_a_few_seconds(settings: Settings) -> None:
    before = timezone.now()
    claimed = submission_claim(submission_id=SubmissionFactory.create().pk, task_id="task-a")
    assert claimed is not None and claimed.lease_until is not None
    lease = (claimed.lease_until - before).total_seconds()
    assert settings.GRADER_LEASE_SECONDS - 1 < lease < settings.GRADER_LEASE_SECONDS + 1


def test_a_running_submission_whose_lease_ran_out_is_taken_over_at_once() -> None:
    now = timezone.now()
    held = SubmissionFactory.create(status="running", claim="live-task", started_at=now, deliveries=1,
                                    lease_until=now + timedelta(seconds=5))
    assert submission_claim(submission_id=held.pk, task_id="task-b") is None, "a live lease is respected"
    dead = SubmissionFactory.create(status="running", claim="dead-task", started_at=now, deliveries=1,
                                    lease_until=now - timedelta(seconds=1))
    taken = submission_claim(submission_id=dead.pk, task_id="task-b")
    assert taken is not None and taken.claim == "task-b", "not after GRADER_STUCK_AFTER_SECONDS: when the lease ends"


def test_retries_after_an_infrastructure_fault_do_not_use_up_the_deliveries(settings: Settings) -> None:
    submission = SubmissionFactory.create(status="running", claim="task-a", deliveries=settings.GRADER_MAX_DELIVERIES,
                                          started_at=timezone.now())
    again = submission_claim(submission_id=submission.pk, task_id="task-a", retries=1)
    assert again is not None and again.status == "running", "the task's own retry is not a poison submission"


def test_only_the_holder_renews_the_lease() -> None:
    submission = SubmissionFactory.create()
    claimed = submission_claim(submission_id=submission.pk, task_id="task-a")
    assert claimed is not None and claimed.lease_until is not None
    assert submission_lease_renew(submission_id=submission.pk, task_id="task-a", seconds=60)
    renewed = Submission.objects.get(pk=submission.pk).lease_until
    assert renewed is not None
    assert (renewed - claimed.lease_until).total_seconds() > 30
    assert not submission_lease_renew(submission_id=submission.pk, task_id="task-b")
    assert Submission.objects.get(pk=submission.pk).lease_until == renewed


@pytest.mark.django_db(transaction=True)  # the renewing thread has a connection of its own: it sees committed rows
def test_the_lease_is_kept_alive_while_grading_and_no_longer(settings: Settings) -> None:
    settings.GRADER_LEASE_SECONDS = 0.6  # renewed every 0.2 s
    submission = SubmissionFactory.create()
    claimed = submission_claim(submission_id=submission.pk, task_id="task-a")
    with submission_lease_kept(submission_id=submission.pk, task_id="task-a"):
        time.sleep(1.5)  # a grading that outlasts its first lease twice over
        during = Submission.objects.get(pk=submission.pk).lease_until
    assert claimed is not None and claimed.lease_until is not None and during is not None
    assert during > claimed.lease_until + timedelta(seconds=0.5), (claimed.lease_until, during)
    assert during > timezone.now(), "still held while grading"
    time.sleep(0.5)
    assert Submission.objects.get(pk=submission.pk).lease_until == during, "not renewed once the block ended"


def test_a_recorded_verdict_ends_the_lease() -> None:
    submission = SubmissionFactory.create()
    claimed = submission_claim(submission_id=submission.pk, task_id="task-a")
    assert claimed is not None
    assert submission_record(submission=claimed, grade=Grade(status="passed", score=1.0), task_id="task-a")
    assert Submission.objects.get(pk=submission.pk).lease_until is None


def test_gradings_share_one_lease_thread_per_process() -> None:
    """A pool process grades one submission after another: one thread renews for all of them, none per grading."""
    submissions = SubmissionFactory.create_batch(5)
    for submission in submissions:
        submission_claim(submission_id=submission.pk, task_id=f"task-{submission.pk}")
        with submission_lease_kept(submission_id=submission.pk, task_id=f"task-{submission.pk}"):
            pass
    assert [t.name for t in threading.enumerate()].count("lease-keeper") == 1
    assert not any(t.name.startswith("lease-") and t.name != "lease-keeper" for t in threading.enumerate())


def test_a_renewal_that_fails_unexpectedly_neither_hangs_the_grading_nor_stops_the_keeper(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from grader import services

    settings.GRADER_LEASE_SECONDS = 0.3  # renewed every 0.1 s
    calls: list[int] = []

    def broken(*, submission_id: int, task_id: str, seconds: float | None = None) -> bool:
        calls.append(submission_id)
        raise RuntimeError("not a database error")

    monkeypatch.setattr(services, "submission_lease_renew", broken)
    ended = threading.Event()

    def grade() -> None:
        with submission_lease_kept(submission_id=1, task_id="task-a"):
            time.sleep(0.35)
        ended.set()

    threading.Thread(target=grade, daemon=True).start()
    assert ended.wait(5), "the grading's end waited on a keeper that died"
    assert len(calls) >= 2, "tried again at each turn"
    with submission_lease_kept(submission_id=2, task_id="task-b"):
        time.sleep(0.25)
    assert 2 in calls, "the keeper lives on"
