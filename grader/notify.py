"""Verdict notices over Redis pub/sub, so a client can wait for a verdict
(`?wait=` on the submission API) instead of polling the database."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import lru_cache

import redis
from django.conf import settings

logger = logging.getLogger(__name__)
RECHECK_SECONDS = 1.0  # a notice can be missed (Redis restarting): look at the database this often anyway


@lru_cache(maxsize=1)
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=5, socket_connect_timeout=2)


def channel(submission_id: int) -> str:
    return f"autograd-quiz:verdict:{submission_id}"


def verdict_published(submission_id: int) -> None:
    """Tell waiting clients that a submission has its verdict. Never raises: a lost
    notice only means a waiting client sees the verdict at its next recheck."""
    try:
        _client().publish(channel(submission_id), b"done")
    except redis.RedisError as exc:
        logger.warning("could not publish the verdict of submission %s: %s", submission_id, exc)


def wait_for_verdict(submission_id: int, timeout: float, is_final: Callable[[], bool]) -> bool:
    """Block until is_final() holds or timeout passes; True when it holds."""
    deadline = time.monotonic() + timeout
    try:
        pubsub = _client().pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(channel(submission_id))
    except redis.RedisError:
        pubsub = None
    try:
        while True:
            if is_final():  # checked after subscribing: a verdict cannot slip between the two
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            step = min(remaining, RECHECK_SECONDS)
            if pubsub is None:
                time.sleep(step)
                continue
            try:
                pubsub.get_message(timeout=step)
            except redis.RedisError:
                pubsub = None
    finally:
        if pubsub is not None:
            try:
                pubsub.close()
            except redis.RedisError:
                pass
