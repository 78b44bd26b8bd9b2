"""Verdict notices: one subscription per process, shared by every waiting request (grader.notify.Listener).

Against the real Redis the tests use (CELERY_BROKER_URL): waits are woken by the notice of their own submission
only, however many wait there is one connection, and a subscription that is cut is noticed, made again, and
every waiter is told to look (a verdict published in the gap reached nobody).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings
from pytest_django.fixtures import Settings

from grader import notify

SUBMISSION = 9_100_000  # ids no test row has: these tests need no database


@pytest.fixture
def server() -> Iterator[redis.Redis]:
    notify.reset()  # a listener of this test's own, on the broker the settings name
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    yield client
    client.close()
    notify.reset()


def listener_connections(server: redis.Redis) -> list[dict]:
    return [c for c in server.client_list(_type="pubsub") if c.get("name") == notify.listener_name()]


def test_a_notice_wakes_the_requests_waiting_for_its_submission_and_no_other(server: redis.Redis) -> None:
    listener = notify._listener()
    assert listener.live
    mine, other = listener.register(SUBMISSION), listener.register(SUBMISSION + 1)
    try:
        notify.verdict_published(SUBMISSION)
        assert mine.wait(2.0) is notify.Wake.NOTICE
        assert other.wait(0.3) is None
    finally:
        listener.unregister(SUBMISSION, mine)
        listener.unregister(SUBMISSION + 1, other)


def test_many_waits_share_one_subscription(server: redis.Redis) -> None:
    notify._listener()
    connections_before = int(server.info("stats")["total_connections_received"])
    ended: list[notify.Waited] = []

    def wait(n: int) -> None:
        ended.append(notify.wait_for_verdict(SUBMISSION + n, 5.0, lambda notified: notified))

    threads = [threading.Thread(target=wait, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    for n in range(20):
        notify.verdict_published(SUBMISSION + n)
    for thread in threads:
        thread.join(timeout=10)
    assert ended == [notify.Waited.FINAL] * 20
    assert len(listener_connections(server)) == 1
    # Before: a connection (and its handshake, SUBSCRIBE, teardown) per wait; now only the publisher's, if any.
    assert int(server.info("stats")["total_connections_received"]) - connections_before <= 2


def test_a_cut_subscription_is_made_again_and_every_waiter_looks(server: redis.Redis) -> None:
    listener = notify._listener()
    waiter = listener.register(SUBMISSION)
    try:
        (connection,) = listener_connections(server)
        server.client_kill_filter(_id=connection["id"])
        assert waiter.wait(5.0) is notify.Wake.LOOK  # a notice may have been lost: look at the database
        assert listener.live
        (again,) = listener_connections(server)
        assert again["id"] != connection["id"]
        notify.verdict_published(SUBMISSION)
        assert waiter.wait(2.0) is notify.Wake.NOTICE
    finally:
        listener.unregister(SUBMISSION, waiter)


def test_without_redis_a_wait_looks_at_the_database_every_poll(
        server: redis.Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    notify.reset()
    monkeypatch.setattr(notify, "POLL_SECONDS", 0.2)
    looks: list[bool] = []

    def is_final(notified: bool) -> bool:
        looks.append(notified)
        return False

    started = time.monotonic()
    assert notify.wait_for_verdict(SUBMISSION, 1.0, is_final) is notify.Waited.TIMED_OUT
    assert not notify._listener().live
    assert 4 <= len(looks) <= 7 and not any(looks), looks  # the first look, then one per 0.2 s
    assert time.monotonic() - started < 2.0
