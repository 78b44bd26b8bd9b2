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
import os
import threading
import time
from collections.abc import Callable
from functools import lru_cache

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

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


CHANNEL_PREFIX = "autograd-quiz:verdict:"


def channel(submission_id: int) -> str:
    return f"{CHANNEL_PREFIX}{submission_id}"


def verdict_published(submission_id: int) -> None:
    """Tell waiting clients that a submission has its verdict. Never raises: a lost
    notice only means a waiting client sees the verdict at its next recheck."""
    try:
        _client().publish(channel(submission_id), b"done")
    except redis.RedisError as exc:
        logger.warning("could not publish the verdict of submission %s: %s", submission_id, exc)


class Wake(enum.Enum):
    NOTICE = "notice"  # a verdict notice for this submission came
    LOOK = "look"  # the listener (re)subscribed: notices may have been missed meanwhile, look again


class Waiter:
    """One waiting request, woken by the listener."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._notice = False

    def wake(self, why: Wake) -> None:
        if why is Wake.NOTICE:
            self._notice = True
        self._event.set()

    def wait(self, timeout: float) -> Wake | None:
        """Block until woken or timeout passes; None when nothing woke it."""
        if not self._event.wait(timeout):
            return None
        self._event.clear()  # before reading the notice: a wake after this sets the event again
        notice, self._notice = self._notice, False
        return Wake.NOTICE if notice else Wake.LOOK


class Listener:
    """This process's one subscription to every verdict notice, and a thread handing each to its waiters.

    Why one per process: a subscription per waiting request cost a connection to Redis, its handshake, a
    SUBSCRIBE and its teardown per long-poll, about a tenth of a web process's CPU per submission (issue 14's
    profile). Subscribed to the pattern of all verdict channels, each web process hears every verdict (a few
    bytes each) and wakes the requests waiting for that one.

    `live` is true while the subscription stands. A request that registers while it is live cannot miss its
    notice; otherwise it looks at the database every POLL_SECONDS. When the subscription comes (back), every
    waiter is woken to look once, since a verdict stored meanwhile sent its notice to nobody.
    """

    BACKOFF_START, BACKOFF_MAX = 0.25, 5.0  # seconds between attempts to (re)subscribe while Redis is away
    FIRST_ATTEMPT_WAIT = 3.0  # the first request waits this long at most for the first attempt to end

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.live = False
        self.pid = os.getpid()
        self._waiters: dict[int, set[Waiter]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._attempted = threading.Event()
        self._thread = threading.Thread(target=self._run, name="verdict-notices", daemon=True)

    def start(self) -> Listener:
        self._thread.start()
        self._attempted.wait(self.FIRST_ATTEMPT_WAIT)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def register(self, submission_id: int) -> Waiter:
        waiter = Waiter()
        with self._lock:
            self._waiters.setdefault(submission_id, set()).add(waiter)
        return waiter

    def unregister(self, submission_id: int, waiter: Waiter) -> None:
        with self._lock:
            waiters = self._waiters.get(submission_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[submission_id]

    def _wake(self, submission_id: int | None, why: Wake) -> None:
        with self._lock:
            if submission_id is None:
                woken = [w for waiters in self._waiters.values() for w in waiters]
            else:
                woken = list(self._waiters.get(submission_id, ()))
        for waiter in woken:
            waiter.wake(why)

    def _run(self) -> None:
        backoff = self.BACKOFF_START
        while not self._stop.is_set():
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.psubscribe(CHANNEL_PREFIX + "*")
                pubsub.get_message(timeout=1.0)  # the confirmation: from here on, every notice reaches us
                self.live = True
                self._attempted.set()
                backoff = self.BACKOFF_START
                self._wake(None, Wake.LOOK)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "pmessage":
                        self._dispatch(message.get("channel"))
            except Exception as exc:  # noqa: BLE001 - Redis gone, or anything else: subscribe again, never die
                if self.live:
                    logger.warning("verdict notices lost (%s); waiting requests look at the database until they "
                                   "are back", exc)
            finally:
                self.live = False
                self._attempted.set()
                try:
                    pubsub.close()
                except (redis.RedisError, OSError):
                    pass
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.BACKOFF_MAX)

    def _dispatch(self, name: object) -> None:
        if isinstance(name, bytes):
            name = name.decode("ascii", "replace")
        if isinstance(name, str) and name.startswith(CHANNEL_PREFIX) and name[len(CHANNEL_PREFIX):].isdigit():
            self._wake(int(name[len(CHANNEL_PREFIX):]), Wake.NOTICE)


def listener_name() -> str:
    """The listener's connection name in Redis's CLIENT LIST, for an operator (and the tests) to find it."""
    return f"verdict-notices-{os.getpid()}"


_listener_lock = threading.Lock()
_listener_now: Listener | None = None


def _listener() -> Listener:
    """This process's listener, started on first use (a forked process starts its own: threads do not fork)."""
    global _listener_now
    with _listener_lock:
        if _listener_now is None or _listener_now.pid != os.getpid():
            # No retries of redis-py's own: it would reconnect and subscribe again silently, and the listener
            # must know of the gap to wake its waiters. A PING every 10 s idle finds a connection that died quietly.
            _listener_now = Listener(redis.Redis.from_url(
                settings.CELERY_BROKER_URL, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10,
                retry=Retry(NoBackoff(), 0), client_name=listener_name())).start()
        return _listener_now


def reset() -> None:
    """Forget this process's Redis clients (the broker's URL changed): the next use connects afresh."""
    global _listener_now
    _client.cache_clear()
    with _listener_lock:
        if _listener_now is not None and _listener_now.pid == os.getpid():
            _listener_now.stop()
        _listener_now = None


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
    listener = _listener()
    waiter = listener.register(submission_id)
    try:
        if is_final(False):  # looked after registering: a verdict cannot slip between the two
            return True
        recheck = time.monotonic() + RECHECK_SECONDS
        while True:
            now = time.monotonic()
            if now >= deadline:
                return False
            live = listener.live
            woke = waiter.wait(max(0.0, min(deadline, recheck if live else now + POLL_SECONDS) - now))
            if woke is not None or not live or time.monotonic() >= recheck:
                if is_final(woke is Wake.NOTICE):
                    return True
                recheck = time.monotonic() + RECHECK_SECONDS
    finally:
        listener.unregister(submission_id, waiter)
