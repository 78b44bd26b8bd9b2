"""Nothing lost, nothing graded twice: killed workers and an emptied Redis.

Each test runs its own worker and pauses any other test worker's consumption of
the grading queue, so it knows which process holds which submission; the test that
restarts Redis does it on a private one. The fault suite (tests/faults/) runs the
same faults under load, with the sweep on beat, and times the recovery.
"""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from config.celery_app import app
from grader.models import Submission
from grader.services import submission_create
from grader.tasks import grade_submission
from quiz.models import Item
from tests.worker import PrivateRedis, WorkerProcess, private_redis  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

SLOW_CORRECT = ("import time\ntime.sleep(1.5)\nimport torch\nx = torch.tensor(2.0, requires_grad=True)\n"
                "y = x**2 + 3*x + 1\ny.backward()\n")
CORRECT = "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\ny.backward()\n"


def wait(predicate: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def status(pk: int) -> str:
    return Submission.objects.values_list("status", flat=True).get(pk=pk)


@pytest.fixture
def grading_paused() -> Iterator[None]:
    """Stop every other worker from taking grading jobs during the test."""
    with app.connection_for_write() as conn:
        app.control.cancel_consumer("grading", reply=True, timeout=2, connection=conn)
    yield
    with app.connection_for_write() as conn:  # fresh: a test may have restarted Redis
        app.control.add_consumer("grading", reply=True, timeout=2, connection=conn)


@pytest.fixture
def worker(grading_paused: None, django_db_setup: None, _broker_flushed: None) -> Iterator[WorkerProcess]:
    process = WorkerProcess(concurrency=1).start()
    yield process
    process.stop()


@pytest.fixture
def item(seed_quiz: None) -> Item:
    return Item.objects.get(slug="grad-of-polynomial")


def assert_left_alone(pk: int, worker: WorkerProcess, learner: User, item: Item) -> None:
    """Send the submission's message again (same task id, and a new one): the verdict must not change."""
    before = Submission.objects.values("status", "deliveries", "finished_at", "claim").get(pk=pk)
    grade_submission.apply_async(args=(pk,), task_id=before["claim"])
    grade_submission.apply_async(args=(pk,))
    marker = submission_create(user=learner, item=item, code=CORRECT)  # a FIFO queue and one pool process:
    wait(lambda: status(marker.pk) == "passed", "the marker submission")  # the duplicates went first
    assert Submission.objects.values("status", "deliveries", "finished_at", "claim").get(pk=pk) == before


def test_a_pool_process_killed_while_grading_is_graded_exactly_once(
        worker: WorkerProcess, learner: User, item: Item) -> None:
    submission = submission_create(user=learner, item=item, code=SLOW_CORRECT)
    wait(lambda: status(submission.pk) == "running", "grading to start")
    assert worker.process is not None
    main = worker.process.pid
    pool = [pid for pid in worker.pids() if pid != main]
    assert len(pool) == 1
    os.kill(pool[0], signal.SIGKILL)
    wait(lambda: status(submission.pk) not in ("queued", "running"), "the verdict after the pool process died")
    submission.refresh_from_db()
    assert submission.status == "passed" and submission.score == 1.0
    assert submission.deliveries == 2, "the lost delivery and the one that finished"
    assert Submission.objects.filter(user=learner).count() == 1
    assert_left_alone(submission.pk, worker, learner, item)


def test_a_worker_killed_outright_is_recovered_by_the_sweep_after_a_restart(
        worker: WorkerProcess, learner: User, item: Item) -> None:
    submission = submission_create(user=learner, item=item, code=SLOW_CORRECT)
    wait(lambda: status(submission.pk) == "running", "grading to start")
    worker.kill()
    assert status(submission.pk) == "running"
    worker.start()
    out = []
    call_command("requeue_stuck", older_than=0, stdout=type("W", (), {"write": lambda self, s: out.append(s)})())
    assert f"Re-queued 1 submission(s): {submission.pk}" in "".join(out)
    wait(lambda: status(submission.pk) not in ("queued", "running"), "the verdict after the restart")
    submission.refresh_from_db()
    assert submission.status == "passed" and submission.deliveries == 2
    assert_left_alone(submission.pk, worker, learner, item)


def test_submissions_in_flight_survive_a_redis_restart_with_an_empty_queue(
        private_redis: PrivateRedis, learner: User, item: Item) -> None:
    """On a private Redis (tests.worker.PrivateRedis): stopping the shared test broker would break other test
    runs on this machine."""
    submissions = [submission_create(user=learner, item=item, code=CORRECT + f"# {n}\n") for n in range(5)]
    broker = private_redis.client()
    wait(lambda: broker.llen("grading") == 5, "the messages to reach Redis")
    private_redis.stop()
    private_redis.start()
    assert private_redis.client().llen("grading") == 0, "Redis came back empty: the messages are lost"
    assert all(status(s.pk) == "queued" for s in submissions)
    worker = WorkerProcess(concurrency=1).start()
    try:
        ids = []
        call_command("requeue_stuck", older_than=0, stdout=type("W", (), {"write": lambda self, s: ids.append(s)})())
        wait(lambda: all(status(s.pk) == "passed" for s in submissions), "every submission to be graded", timeout=90)
        assert sorted(Submission.objects.values_list("deliveries", flat=True)) == [1] * 5
    finally:
        worker.stop()
