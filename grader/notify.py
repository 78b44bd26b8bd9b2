"""Verdict notices over Redis pub/sub, so a client can wait for a verdict
(`?wait=` on the submission API) instead of polling the database.

Redis is a convenience here, never a requirement: when it is unreachable a wait
falls back to looking at the database every POLL_SECONDS, and publishing
never raises. A waiting request holds a web thread, so each process lets at most
GRADER_WAITS_PER_PROCESS requests wait at once (config/gunicorn.conf.py gives it
more threads than that); any further request answers at once with what is stored,
which keeps threads free for ordinary requests however many clients long-poll. Such an
answer is turned away (wait_for_verdict says so), and the API tells its client when to
ask again (Retry-After: TURNED_AWAY_RETRY_SECONDS), so clients do not spin while the
server is busiest.
"""
from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from functools import lru_cache

import redis
from django.conf import settings

logger = logging.getLogger(__name__)
# While subscribed, the notice says when to look; the database is still read every RECHECK_SECONDS in case a notice
# was lost (redis-py re-subscribes by itself after a reconnect, and a verdict published in between is not replayed).
RECHECK_SECONDS = 5.0
POLL_SECONDS = 1.0  # without notices (Redis unreachable): how often the database is read instead
# A request turned away because too many wait already: the least a client should wait before it asks again. The
# clients (item.js, the notebook client) double it at each turn-away in a row, up to TURNED_AWAY_RETRY_MAX_SECONDS.
TURNED_AWAY_RETRY_SECONDS = 1
TURNED_AWAY_RETRY_MAX_SECONDS = 8


class Waited(enum.Enum):
    FINAL = "final"  # is_final held: the verdict is there
    TIMED_OUT = "timed_out"  # waited the whole time, no verdict
    TURNED_AWAY = "turned_away"  # did not wait: too many requests of this process wait already


class _Waiters:
    """How many requests of this process are waiting, up to a limit."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def enter(self) -> bool:
        with self.lock:
            if self.count >= settings.GRADER_WAITS_PER_PROCESS:
                return False
            self.count += 1
            return True

    def leave(self) -> None:
        with self.lock:
            self.count -= 1


_waiters = _Waiters()


def waiting() -> int:
    """How many requests of this process are waiting for a verdict right now."""
    return _waiters.count


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


def wait_for_verdict(submission_id: int, timeout: float, is_final: Callable[[bool], bool]) -> Waited:
    """Block until is_final(notified) holds or timeout passes. notified: whether a verdict notice has just come
    (the row is then almost surely final: a caller can read it whole at once rather than look first). With
    GRADER_WAITS_PER_PROCESS requests of this process waiting already, no blocking: is_final(False) as it is
    now, and TURNED_AWAY if that does not hold."""
    if not _waiters.enter():
        logger.warning("%d requests of this process are waiting already; submission %s answered without waiting",
                       settings.GRADER_WAITS_PER_PROCESS, submission_id)
        return Waited.FINAL if is_final(False) else Waited.TURNED_AWAY
    try:
        return Waited.FINAL if _wait(submission_id, time.monotonic() + timeout, is_final) else Waited.TIMED_OUT
    finally:
        _waiters.leave()


def _wait(submission_id: int, deadline: float, is_final: Callable[[bool], bool]) -> bool:
    pubsub = _client().pubsub(ignore_subscribe_messages=True)  # connects on subscribe, not here
    try:
        pubsub.subscribe(channel(submission_id))
        listening = True
    except (redis.RedisError, OSError) as exc:
        logger.info("no verdict notices (%s); submission %s is waited for by polling the database", exc,
                    submission_id)
        listening = False
    try:
        if is_final(False):  # checked after subscribing: a verdict cannot slip between the two
            return True
        recheck = time.monotonic() + RECHECK_SECONDS
        while True:
            now = time.monotonic()
            if now >= deadline:
                return False
            if not listening:
                time.sleep(min(deadline - now, POLL_SECONDS))
                if is_final(False):
                    return True
                continue
            try:
                # None also when what came was the subscription's confirmation (ignored): no reason to look.
                notice = pubsub.get_message(timeout=max(0.0, min(deadline, recheck) - now))
            except (redis.RedisError, OSError):
                listening = False  # Redis went away mid-wait: poll the database for the rest
                continue
            if notice is not None or time.monotonic() >= recheck:
                if is_final(notice is not None):
                    return True
                recheck = time.monotonic() + RECHECK_SECONDS
    finally:
        try:
            pubsub.close()
        except (redis.RedisError, OSError):
            pass
