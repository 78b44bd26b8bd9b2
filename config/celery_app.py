"""The Celery application. Settings come from Django's, under the CELERY_ namespace.

Additions for riding out broker loss (issue 14), each small and explained where it is: a consumer that
reconnects at most 3 s apart, `--heartbeat-file` (a file the worker touches only while it is connected and
consuming, read by the container's health check), and a guard in kombu's Redis transport. One more patch there is for
speed: a channel reuses its Redis client.
"""
from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any

from celery import Celery, bootsteps
from celery.worker.consumer import Consumer as _Consumer
from click import Option

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

logger = logging.getLogger(__name__)

app = Celery("autograd_quiz")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

HEARTBEAT_SECONDS = 5.0  # docker-compose.yml's health check allows 30 s without a touch
RECONNECT_INTERVAL_MAX = 3.0


class HeartbeatFile(bootsteps.StartStopStep):
    """Touch `--heartbeat-file` every few seconds while the worker is connected to the broker and consuming.

    Why: a worker can be alive but useless: reconnecting to a broker that is gone, its event loop stuck, or its
    queues cancelled. A health check that only asks whether the process exists passes; one that sends
    `celery inspect ping` costs a Python start with Django each time. This step runs on the consumer's event
    loop, so the touches stop as soon as the connection is lost (Celery stops the consumer's steps before it
    reconnects) or the loop stops turning, and the file goes stale.
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, heartbeat_file: str | None = None, **kwargs: Any) -> None:
        self.path = Path(heartbeat_file) if heartbeat_file else None
        self.timer_entry: Any = None
        super().__init__(parent, **kwargs)

    def start(self, consumer: Any) -> None:
        if self.path is None:
            return
        self.beat(consumer)
        self.timer_entry = consumer.timer.call_repeatedly(HEARTBEAT_SECONDS, self.beat, (consumer,))

    def stop(self, consumer: Any) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None

    shutdown = stop

    def beat(self, consumer: Any) -> None:
        task_consumer = consumer.task_consumer
        if consumer.connection is None or task_consumer is None or not task_consumer.queues:
            return  # not consuming: let the file go stale
        try:
            self.path.touch()  # type: ignore[union-attr]  # start() schedules beats only when there is a path
        except OSError as exc:
            logger.warning("cannot touch the heartbeat file %s: %s", self.path, exc)


class Consumer(_Consumer):
    """Celery's consumer, reconnecting to a lost broker every 1, 2, 3, 3, 3 ... s instead of 2, 4, 6 ... 30 s.

    Why: the worker retries for ever (CELERY_BROKER_CONNECTION_MAX_RETRIES = None), and with Celery's back-off it
    would stay away for up to 30 s after Redis came back; here at most 3 s, at the cost of a refused TCP connect
    every 3 s while Redis is down.
    """

    def ensure_connected(self, conn: Any) -> Any:
        conn.ensure_connection = functools.partial(
            conn.ensure_connection, interval_start=1, interval_step=1, interval_max=RECONNECT_INTERVAL_MAX)
        return super().ensure_connected(conn)


app.user_options["worker"].add(Option(
    ["--heartbeat-file"], default=None,
    help="Touch this file every 5 s while connected to the broker and consuming (for health checks)."))
app.steps["consumer"].add(HeartbeatFile)


def _guard_closed_redis_channel() -> None:
    """Make kombu report a Redis channel whose connection was closed as a connection error.

    Why: when the broker goes away, Celery collects and closes the broken connection, which detaches kombu's
    transport from it (`transport.client = None`). A channel that was not fully closed (one whose close failed
    part-way because Redis was gone) can still be asked to act afterwards: restore its unacknowledged messages
    (at close, or from a finalizer), or ack a message of a grading that finished during the outage. It then builds
    a new connection pool from `self.connection.client.hostname` and raises
    `AttributeError: 'NoneType' object has no attribute 'hostname'`. Kombu and Celery handle connection errors
    there (logged, the message comes back after the visibility timeout) but not an AttributeError, which is how
    a worker exited with status 1 on losing Redis (issue 14). tests/faults/test_broker_loss.py reproduces the
    AttributeError on kombu's own objects and checks the guard. The messages concerned are not lost: they stay in
    Redis's unacked hash (restored after the visibility timeout), and the sweep re-sends their submissions anyway.
    """
    import redis
    from kombu.transport import redis as kombu_redis

    channel: Any = kombu_redis.Channel  # _connparams is private to kombu: celery-types does not describe it
    original = channel._connparams
    if getattr(original, "guarded", False):
        return

    def _connparams(self: Any, asynchronous: bool = False) -> Any:
        if self.connection is None or self.connection.client is None:
            raise redis.exceptions.ConnectionError("the broker connection of this channel was closed")
        return original(self, asynchronous=asynchronous)

    setattr(_connparams, "guarded", True)
    setattr(_connparams, "original", original)
    channel._connparams = _connparams


_guard_closed_redis_channel()


def _reuse_redis_clients() -> None:
    """Let each kombu Redis channel build its synchronous client once, not at every command.

    Why: kombu builds a new redis.Redis (with its table of a few hundred response callbacks) for every publish, ack
    and restore, and only then takes a connection from the channel's pool. In a worker's main process that was
    15 % of its CPU at saturation (py-spy, issue 14); the web processes pay it once per submission they publish.
    The client is a thin object over the channel's pool, so one per channel behaves the same; it is built again
    when the channel gets a new pool (after a reconnect). The asynchronous client (the consumer's) is kombu's.
    """
    from kombu.transport import redis as kombu_redis

    channel: Any = kombu_redis.Channel  # _create_client is private to kombu: celery-types does not describe it
    original = channel._create_client
    if getattr(original, "reused", False):
        return

    def _create_client(self: Any, asynchronous: bool = False) -> Any:
        if asynchronous:
            return original(self, asynchronous=True)
        pool = self.pool  # raises for a closed channel (the guard above), as building a client did
        client = self.__dict__.get("_reused_client")
        if client is None or client.connection_pool is not pool:
            client = self.__dict__["_reused_client"] = original(self)
        return client

    setattr(_create_client, "reused", True)
    channel._create_client = _create_client


_reuse_redis_clients()
