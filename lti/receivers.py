"""Listens to the grading pipeline (grader.events) and queues what the platforms should hear."""
from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.db import transaction

from .scores import links_for_attempt
from .tasks import publish_score

logger = logging.getLogger(__name__)


def attempt_graded_publish(sender: Any, *, submission_id: int, user_id: int, course_id: int, item_id: int,
                           **kwargs: Any) -> None:
    """After a verdict is stored: one score task per linked quiz of the course that holds the item, for
    learners with an identity on that platform. Never fails the grading that sent the signal."""
    try:
        link_ids = links_for_attempt(user_id=user_id, course_id=course_id, item_id=item_id)
    except Exception:
        logger.exception("submission %s: could not look up LTI links; no score sent", submission_id)
        return
    for link_id in link_ids:
        # partial binds link_id now: a bare lambda in the loop would see the last one only.
        transaction.on_commit(partial(publish_score.delay, link_id, user_id, submission_id))
