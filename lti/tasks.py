"""Celery tasks of the LTI tool. Thin: ids in, one service call. Only platform faults that may pass
(no connection, a timeout, 5xx, 429) are retried, with exponential backoff."""
from __future__ import annotations

import logging

from celery import shared_task
from django.db import close_old_connections

from .models import CourseContext
from .roster import RosterUnavailable, roster_sync
from .scores import score_publish
from .tool import PlatformUnavailable

logger = logging.getLogger(__name__)

MAX_RETRIES = 5
BACKOFF_MAX_SECONDS = 600


@shared_task(name="lti.publish_score", autoretry_for=(PlatformUnavailable,), retry_backoff=True,
             retry_backoff_max=BACKOFF_MAX_SECONDS, retry_jitter=True, max_retries=MAX_RETRIES, acks_late=True)
def publish_score(link_id: int, user_id: int, submission_id: int) -> str:
    """Send a learner's score on a linked quiz to the platform after an attempt was graded.

    Idempotent: a repeated or late delivery sends nothing older than what was sent (see lti.scores).
    """
    close_old_connections()
    return score_publish(link_id=link_id, user_id=user_id, submission_id=submission_id)


@shared_task(name="lti.sync_roster", autoretry_for=(PlatformUnavailable,), retry_backoff=True,
             retry_backoff_max=BACKOFF_MAX_SECONDS, retry_jitter=True, max_retries=MAX_RETRIES, acks_late=True)
def sync_roster(course_context_id: int) -> str:
    """Enrol a platform course's members (NRPS); run on an instructor's launch. Idempotent: memberships
    are ensured, never duplicated."""
    close_old_connections()
    course_context = CourseContext.objects.select_related("course", "context__deployment__registration").filter(
        pk=course_context_id).first()
    if course_context is None:
        return "gone"
    try:
        result = roster_sync(course_context=course_context)
    except RosterUnavailable as exc:
        logger.warning("roster of course context %s: %s", course_context_id, exc)
        return "unavailable"
    return f"{result.enrolled} enrolled"
