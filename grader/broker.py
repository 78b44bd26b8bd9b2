"""What the broker holds of the grading queue: which submissions still have a message that will reach a worker.

The sweep (grader.services.submissions_requeue_stuck) compares this with the database. A queued submission whose
message is not here was lost: Redis restarted empty, or the enqueue failed while Redis was away. One whose message
a worker took but has not started for GRADER_LOST_MESSAGE_SECONDS was most likely prefetched by a worker that then
died: kombu keeps such a message in its `unacked` hash until the visibility timeout (300 s) runs out, and a live
worker starts what it prefetched within one grading (prefetch multiplier 1). Sending either again costs at worst a
duplicate message, which the claim refuses (grader.services.submission_claim).

Read-only, and tied to how kombu's Redis transport stores messages (a list per queue and priority, the `unacked`
hash and its `unacked_index` of delivery times); kept here so nothing else depends on it. Any message this cannot
read counts as absent, which again costs at most a duplicate.
"""
from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any

import redis
from kombu.exceptions import OperationalError as BrokerError

from config.celery_app import app

logger = logging.getLogger(__name__)

GRADING_QUEUE = "grading"
GRADING_TASK = "grader.grade_submission"
MAX_MESSAGES = 20_000  # beyond this many waiting messages the view is incomplete: the sweep sends nothing on it


def _submission_id(payload: Any) -> int | None:
    """The submission id a grade_submission message carries (Celery's message protocol 2), or None."""
    try:
        if payload["headers"]["task"] != GRADING_TASK:
            return None
        body = payload["body"]
        if payload.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return int(args[0])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def submissions_in_broker(*, held_within: float) -> set[int] | None:
    """Ids of submissions whose grading message is waiting in the queue, or was taken by a worker less than
    held_within seconds ago and not acknowledged yet. None when it cannot tell: the queue is too long to read whole,
    or Redis cannot be reached.

    One MULTI/EXEC, so a message moving from the queue to a worker between two reads is not missed (the
    moment between kombu's BRPOP and its write to the unacked hash is not covered: it costs a duplicate).
    """
    try:
        with app.connection_or_acquire() as conn:  # pooled: the sweep runs every 2 s
            channel = conn.default_channel
            lists = [channel._q_for_pri(GRADING_QUEUE, priority) for priority in channel.priority_steps]
            with channel.conn_or_acquire() as client:
                pipe = client.pipeline(transaction=True)
                for name in lists:
                    pipe.llen(name)
                    pipe.lrange(name, 0, MAX_MESSAGES - 1)
                pipe.hgetall(channel.unacked_key)
                pipe.zrange(channel.unacked_index_key, 0, -1, withscores=True)
                replies = pipe.execute()
    except (BrokerError, redis.RedisError, OSError) as exc:
        logger.warning("cannot read the grading queue (%s); lost messages are not looked for now", exc)
        return None
    lengths, waiting = replies[0:-2:2], replies[1:-2:2]
    unacked, delivered_at = replies[-2], dict(replies[-1])
    if any(length > MAX_MESSAGES for length in lengths):
        logger.warning("the grading queue holds more than %d messages; lost messages are not looked for now",
                       MAX_MESSAGES)
        return None
    present: set[int] = set()
    for raw in (message for messages in waiting for message in messages):
        try:
            submission_id = _submission_id(json.loads(raw))
        except ValueError:
            continue
        if submission_id is not None:
            present.add(submission_id)
    recent = time.time() - held_within
    for tag, raw in unacked.items():
        if delivered_at.get(tag, 0.0) < recent:
            continue
        try:
            submission_id = _submission_id(json.loads(raw)[0])
        except (ValueError, IndexError, TypeError):
            continue
        if submission_id is not None:
            present.add(submission_id)
    return present
