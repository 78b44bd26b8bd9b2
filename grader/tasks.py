"""Celery tasks. Thin: each parses its ids and calls services."""
from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import close_old_connections

from . import services
from .sandbox import Grade, SandboxFault

logger = logging.getLogger(__name__)
MAX_RETRIES = 3


@shared_task(name="grader.grade_submission", bind=True, acks_late=True, reject_on_worker_lost=True,
             max_retries=MAX_RETRIES)
def grade_submission(self, submission_id: int) -> str | None:  # type: ignore[no-untyped-def]
    """Grade one code submission in the sandbox and store its verdict.

    Idempotent: a submission already graded, or held by another live task, is left
    alone. A sandbox fault is infrastructure, so it is retried with backoff; the
    learner's own timeout or crash is a verdict and is never retried.
    """
    close_old_connections()  # a task is a request: drop connections past CONN_MAX_AGE or broken
    submission = services.submission_claim(submission_id=submission_id, task_id=self.request.id)
    if submission is None:
        return None
    try:
        grade = services.code_grade(item=submission.item, code=submission.code, params=submission.params)
    except (SandboxFault, SoftTimeLimitExceeded) as exc:
        if self.request.retries < MAX_RETRIES:
            logger.warning("submission %s: sandbox fault (%s); retrying", submission_id, exc)
            raise self.retry(exc=exc, countdown=2 ** self.request.retries) from None
        grade = Grade(status=services.Status.INTERNAL_ERROR,
                      error="The grader is unavailable right now; this is not your fault. Please submit again later.")
    services.submission_record(submission=submission, grade=grade, task_id=self.request.id)
    return grade.status


@shared_task(name="grader.requeue_stuck")
def requeue_stuck() -> int:
    """Periodic sweep (Celery beat): re-queue submissions stuck in queued or running."""
    return len(services.submissions_requeue_stuck(older_than_seconds=settings.GRADER_STUCK_AFTER_SECONDS))
