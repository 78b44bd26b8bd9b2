"""Celery tasks. Thin: each parses its ids and calls services."""
from __future__ import annotations

import logging

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections

from . import broker, services
from .sandbox import Grade, SandboxFault

logger = logging.getLogger(__name__)
MAX_RETRIES = 3  # sandbox faults: then the learner is told to submit again (internal_error)
# Database faults: retried for about a minute (1, 2, 4, 8, 15, 15, 15 s), as long as a PostgreSQL restart or
# failover takes. After that the task gives up without a verdict: the submission is still queued or running,
# and the sweep sends it again once its lease runs out or its message is found missing.
DATABASE_FAULTS = (OperationalError, InterfaceError)
DATABASE_RETRIES = 7
DATABASE_BACKOFF_MAX = 15


@shared_task(name="grader.grade_submission", bind=True, acks_late=True, reject_on_worker_lost=True,
             max_retries=MAX_RETRIES)
def grade_submission(self: Task, submission_id: int) -> str | None:
    """Grade one code submission in the sandbox and store its verdict.

    Idempotent: a submission already graded, or held by another live task, is left
    alone. A sandbox fault or a database error is infrastructure, so it is retried
    with backoff (the submission is not acknowledged as done and left `running`); the
    learner's own timeout or crash is a verdict and is never retried. The claim is a
    lease, kept alive while grading, so the sweep notices within seconds if this
    worker dies.
    """
    try:
        return _grade(self, submission_id)
    except DATABASE_FAULTS as exc:
        retries = self.request.retries
        if retries >= DATABASE_RETRIES:
            logger.error("submission %s: database unavailable after %d retries (%s); left to the sweep",
                         submission_id, retries, exc)
            raise
        countdown = min(2 ** retries, DATABASE_BACKOFF_MAX)
        logger.warning("submission %s: database error (%s); retrying in %s s", submission_id, exc, countdown)
        raise self.retry(exc=exc, countdown=countdown, max_retries=DATABASE_RETRIES) from None


def _grade(task: Task, submission_id: int) -> str | None:
    close_old_connections()  # a task is a request: drop connections past CONN_MAX_AGE or broken
    task_id = task.request.id
    assert task_id is not None, "a task run by a worker or by apply() has an id"
    submission = services.submission_claim(submission_id=submission_id, task_id=task_id, retries=task.request.retries)
    if submission is None:
        return None
    try:
        with services.submission_lease_kept(submission_id=submission_id, task_id=task_id):
            grade = services.code_grade(item=submission.item, code=submission.code, params=submission.params)
    except (SandboxFault, SoftTimeLimitExceeded) as exc:
        if task.request.retries < MAX_RETRIES:
            countdown = 2 ** task.request.retries
            logger.warning("submission %s: sandbox fault (%s); retrying", submission_id, exc)
            # Hold the claim over the wait, or the sweep would re-queue it meanwhile.
            services.submission_lease_renew(submission_id=submission_id, task_id=task_id,
                                            seconds=countdown + settings.GRADER_LEASE_SECONDS)
            raise task.retry(exc=exc, countdown=countdown) from None
        grade = Grade(status=services.Status.INTERNAL_ERROR,
                      error="The grader is unavailable right now; this is not your fault. Please submit again later.")
    services.submission_record(submission=submission, grade=grade, task_id=task_id)
    return grade.status


@shared_task(name="grader.requeue_stuck")
def requeue_stuck() -> int:
    """Periodic sweep (Celery beat, every 2 s): send again what a dead worker or a lost message left waiting.

    Running submissions whose lease ran out, and queued ones whose message the broker lost; see
    grader.services.submissions_requeue_stuck.
    """
    return len(services.submissions_requeue_stuck(in_broker=lambda: broker.submissions_in_broker(
        held_within=settings.GRADER_LOST_MESSAGE_SECONDS)))
