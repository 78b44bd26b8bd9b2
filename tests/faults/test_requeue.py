"""The sweep (grader.requeue_stuck) on a real, private Redis: what it sends again, and what it must leave alone.

No worker runs here, so every message the sweep sends stays in Redis, where the test counts it.
"""
from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from typing import cast

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from kombu import Connection, Exchange, Queue
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from grader import broker
from grader.models import Submission
from grader.services import NEVER_SENT, submissions_enqueue
from grader.tasks import requeue_stuck
from tests.factories import SubmissionFactory
from tests.worker import PrivateRedis

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def messages(server: PrivateRedis) -> list[int]:
    """The submission ids of the grade_submission messages waiting in the grading queue, read independently."""
    ids = []
    for raw in server.client().lrange("grading", 0, -1):
        payload = json.loads(raw)
        if payload["headers"]["task"] == "grader.grade_submission":
            ids.append(json.loads(base64.b64decode(payload["body"]))[0][0])
    return ids


def waiting_since(seconds: float, **fields: object) -> Submission:
    """A queued submission sent `seconds` ago (its message sent now, if asked)."""
    return SubmissionFactory.create(status="queued", queued_at=timezone.now() - timedelta(seconds=seconds), **fields)


def sweep() -> None:
    requeue_stuck()  # the beat task's body, in this process


def test_a_running_submission_whose_lease_ran_out_is_sent_again_and_shown_as_requeued(
        private_redis: PrivateRedis, learner: User) -> None:
    now = timezone.now()
    dead = SubmissionFactory.create(user=learner, status="running", claim="dead-task", started_at=now, deliveries=1,
                                    lease_until=now - timedelta(seconds=0.5))
    alive = SubmissionFactory.create(user=learner, status="running", claim="live-task", started_at=now - timedelta(minutes=5),
                                     deliveries=1, lease_until=now + timedelta(seconds=5))
    sweep()
    assert messages(private_redis) == [dead.pk], "the live lease is left alone, however old the grading"
    dead.refresh_from_db()
    assert (dead.status, dead.claim, dead.lease_until) == ("queued", "", None)
    assert dead.requeued_at is not None and dead.requeued_at == dead.queued_at and dead.requeued_at >= now
    api = APIClient()
    api.force_authenticate(learner)
    assert api.get(f"/api/v1/submissions/{dead.pk}/").json()["requeued"] is True
    assert api.get(f"/api/v1/submissions/{alive.pk}/").json()["requeued"] is False


def test_a_long_healthy_queue_is_never_sent_twice(private_redis: PrivateRedis) -> None:
    """A deadline rush: messages wait minutes in the queue. The old 120 s sweep sent them all again."""
    waiting = [waiting_since(600) for _ in range(5)]
    submissions_enqueue([s.pk for s in waiting])
    for _ in range(3):
        sweep()
    assert sorted(messages(private_redis)) == sorted(s.pk for s in waiting)


def test_messages_lost_with_an_emptied_redis_are_sent_again_once(
        private_redis: PrivateRedis, settings: Settings) -> None:
    lost = [waiting_since(settings.GRADER_LOST_MESSAGE_SECONDS + 1) for _ in range(3)]
    submissions_enqueue([s.pk for s in lost])
    private_redis.client().flushdb()  # what a restart without persistence leaves
    fresh = waiting_since(0)  # just stored: its message may be on its way (on commit); not yet
    sweep()
    assert sorted(messages(private_redis)) == sorted(s.pk for s in lost)
    sweep()
    assert sorted(messages(private_redis)) == sorted(s.pk for s in lost), "present now: not sent a second time"
    assert all(Submission.objects.get(pk=s.pk).requeued_at for s in lost)
    assert Submission.objects.get(pk=fresh.pk).requeued_at is None


def test_a_submission_never_sent_goes_out_at_the_next_sweep(private_redis: PrivateRedis) -> None:
    """Stored while Redis was down: submissions_enqueue marked it NEVER_SENT."""
    unsent = SubmissionFactory.create(status="queued", queued_at=NEVER_SENT)
    sweep()
    assert messages(private_redis) == [unsent.pk]


def test_a_message_prefetched_by_a_worker_that_died_is_sent_again(
        private_redis: PrivateRedis, settings: Settings) -> None:
    """Taken by a worker (in kombu's unacked hash) and not started: recently, it is left alone; long ago (the
    worker died with it), it is sent again instead of waiting for Redis's 300 s visibility timeout."""
    prefetched = waiting_since(settings.GRADER_LOST_MESSAGE_SECONDS + 1)
    submissions_enqueue([prefetched.pk])
    queue = Queue("grading", Exchange("grading", "direct"), "grading")
    taken = []
    with Connection(private_redis.url) as conn:
        consumer = conn.Consumer([queue], callbacks=[lambda body, message: taken.append(message)], accept=["json"])
        consumer.consume()
        conn.drain_events(timeout=5)
        assert len(taken) == 1 and messages(private_redis) == []
        assert broker.submissions_in_broker(held_within=60) == {prefetched.pk}
        sweep()
        assert messages(private_redis) == [], "a live worker starts what it prefetched: left alone"
        client = private_redis.client()
        tag = cast(bytes, client.zrange("unacked_index", 0, -1)[0])  # without scores, zrange gives the members
        client.zadd("unacked_index", {tag: time.time() - settings.GRADER_LOST_MESSAGE_SECONDS - 1})
        sweep()
        assert messages(private_redis) == [prefetched.pk]
        consumer.cancel()


def test_the_broker_view_reads_what_kombu_stores(private_redis: PrivateRedis) -> None:
    """Tied to kombu's layout: if an upgrade changed it, this fails rather than the sweep sending everything."""
    submissions = [SubmissionFactory.create() for _ in range(3)]
    submissions_enqueue([s.pk for s in submissions])
    assert broker.submissions_in_broker(held_within=5) == {s.pk for s in submissions}
    private_redis.client().rpush("grading", b"not a kombu message")
    assert broker.submissions_in_broker(held_within=5) == {s.pk for s in submissions}
