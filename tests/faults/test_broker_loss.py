"""A worker that loses Redis must not exit: kombu's failure on a closed channel, and the guard against it.

The worker-level row (Redis stopped 15 s under load, the worker reconnecting) is in test_worker_faults.py.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from kombu import Connection, Exchange, Queue
from kombu.transport import redis as kombu_redis

from tests.worker import PrivateRedis

REDIS_CHANNEL: Any = kombu_redis.Channel  # config.celery_app's guard sits on a private method the stubs lack

pytestmark = [pytest.mark.worker]


@pytest.fixture
def detached(private_redis: PrivateRedis) -> Iterator[tuple[Any, Any]]:
    """A channel left as Celery leaves one after collecting a broken connection: pools gone, transport detached
    (`transport.client = None`), and a delivered message not acknowledged. Yields (channel, message)."""
    queue = Queue("grading", Exchange("grading", "direct"), "grading")
    with Connection(private_redis.url) as producer:
        producer.Producer().publish({"n": 1}, exchange=queue.exchange, routing_key="grading", declare=[queue])
    conn = Connection(private_redis.url)
    channel: Any = conn.channel()  # kombu's Redis channel: its pools and QoS are not in the stubs
    taken: list[Any] = []
    conn.Consumer([queue], channel=channel, callbacks=[lambda body, message: taken.append(message)],
                  accept=["json"]).consume()
    conn.drain_events(timeout=5)
    assert len(taken) == 1 and private_redis.client().hlen("unacked") == 1
    channel._disconnect_pools()
    conn._do_close_transport()
    yield channel, taken[0]
    channel.qos._on_collect.cancel()  # or its finalizer tries once more when pytest exits, and prints it


def test_kombu_fails_on_a_detached_channel_without_the_guard(
        detached: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14's crash, reproduced on kombu's own objects: restoring unacked messages (or acking) on a channel
    whose connection was closed raises AttributeError, which neither kombu nor Celery handles."""
    monkeypatch.setattr(kombu_redis.Channel, "_connparams", REDIS_CHANNEL._connparams.original)
    channel, message = detached
    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'hostname'"):
        channel.qos.restore_unacked()
    with pytest.raises(AttributeError, match="hostname"):
        message.ack_log_error(logging.getLogger("test"), channel.connection_errors)


def test_the_guard_turns_it_into_a_connection_error_and_loses_nothing(
        detached: tuple[Any, Any], private_redis: PrivateRedis) -> None:
    assert getattr(REDIS_CHANNEL._connparams, "guarded", False), "config.celery_app installs the guard"
    channel, message = detached
    with pytest.raises(redis.exceptions.ConnectionError) as raised:
        channel.qos.restore_unacked()
    assert isinstance(raised.value, channel.connection_errors), "what kombu and Celery handle as a lost connection"
    message.ack_log_error(logging.getLogger("test"), channel.connection_errors)  # logged, not raised
    assert private_redis.client().hlen("unacked") == 1, "the message stays in Redis for the visibility timeout"


def test_a_channel_reuses_one_redis_client_until_its_pool_is_replaced(private_redis: PrivateRedis) -> None:
    """config.celery_app's speed patch: kombu built a redis.Redis for every publish and ack; a channel now builds
    one, and builds it again over the new pool after a reconnect, so nothing goes to a pool that was closed."""
    assert getattr(REDIS_CHANNEL._create_client, "reused", False), "config.celery_app installs it"
    queue = Queue("reuse", Exchange("reuse", "direct"), "reuse")
    with Connection(private_redis.url) as conn:
        channel: Any = conn.channel()
        producer = conn.Producer(channel)
        producer.publish({"n": 1}, exchange=queue.exchange, routing_key="reuse", declare=[queue])
        first = channel._create_client()
        producer.publish({"n": 2}, exchange=queue.exchange, routing_key="reuse")
        assert channel._create_client() is first
        channel._disconnect_pools()  # what a reconnect does to a channel's pools
        producer.publish({"n": 3}, exchange=queue.exchange, routing_key="reuse")
        again = channel._create_client()
        assert again is not first and again.connection_pool is channel.pool
        assert private_redis.client().llen("reuse") == 3, "every publish reached Redis"
