"""Shared fixtures. Tests talk to the real database, Redis and sandbox."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from grader.runner import get_sandbox
from grader.sandbox import Sandbox
from quiz.services import CONTENT_DIR

from .factories import UserFactory
from .web.server import GunicornProcess

FLUSH_ATTEMPTS = 5


def _flush_outlasting_deadlocks() -> None:
    """A transactional test's teardown flush (one TRUNCATE of every table) tries again when PostgreSQL picks it as
    a deadlock's victim.

    Why: the session's Celery worker may still be grading the test's last submission. Its reads join tables (the
    item and its checks in one statement), taking their locks in the join's order, while TRUNCATE takes them in
    the order of a set, which varies per process. Crossed, PostgreSQL aborts the statement that waited longer,
    the TRUNCATE: the flush failed, the rows stayed and the next test met them as duplicate keys (it failed one
    CI run; tests/test_flush_deadlock.py makes the crossing certain). A retry waits behind the worker's
    statement, which holds its locks for milliseconds."""
    from django.db import OperationalError
    from django.db.backends.base.operations import BaseDatabaseOperations
    from django.db.backends.postgresql.operations import DatabaseOperations

    flush = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self: BaseDatabaseOperations, sql_list: Iterable[str]) -> None:
        for attempt in range(1, FLUSH_ATTEMPTS + 1):
            try:
                return flush(self, sql_list)
            except OperationalError as exc:  # the block rolled back: trying again starts clean
                if getattr(exc.__cause__, "sqlstate", None) != "40P01" or attempt == FLUSH_ATTEMPTS:
                    raise

    DatabaseOperations.execute_sql_flush = execute_sql_flush  # type: ignore[method-assign]


_flush_outlasting_deadlocks()


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """A zygote of the tests' own, started once (importing torch takes about a second)."""
    with Sandbox() as box:
        yield box


@pytest.fixture
def seed_quiz(db: None) -> None:
    """The real autograd-basics quiz, references computed through the process's sandbox."""
    get_sandbox()
    call_command("load_quizzes", str(CONTENT_DIR / "autograd-basics.yaml"), verbosity=0, stdout=open("/dev/null", "w"))


@pytest.fixture
def practice_quiz(db: None) -> None:
    """The real autograd-in-practice quiz (every item with variants)."""
    get_sandbox()
    call_command("load_quizzes", str(CONTENT_DIR / "autograd-in-practice.yaml"), verbosity=0,
                 stdout=open("/dev/null", "w"))


@pytest.fixture
def learner(db: None) -> User:
    return UserFactory.create(username="ada")


@pytest.fixture
def other_learner(db: None) -> User:
    return UserFactory.create(username="grace")


@pytest.fixture(autouse=True)
def _no_throttle_history() -> None:
    """Each test starts with no request history in the throttle's cache.

    Why: the cache is Redis, outside the test's transaction, and keys the history by user id. On SQLite a
    rolled-back test hands its ids to the next test's users, so one test's submissions (many, under
    `unthrottled`) counted against another test's learner, which got a 429 within the same minute."""
    import redis
    from django.conf import settings

    location, prefix = settings.CACHES["default"]["LOCATION"], settings.CACHES["default"].get("KEY_PREFIX", "")
    try:
        client = redis.Redis.from_url(location, socket_timeout=2, socket_connect_timeout=1)
        stale = list(client.scan_iter(match=f"{prefix}:*throttle_*", count=1000))
        if stale:
            client.delete(*stale)
    except redis.RedisError:
        pass  # Redis away (a test stops it): no history can be read either


@pytest.fixture(scope="session")
def _broker_flushed() -> None:
    """Start each test session with an empty test broker database (never the dev one)."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    db = client.connection_pool.connection_kwargs.get("db", 0)
    assert db != 0, "tests flush their broker database: it must not be 0, the development one"
    client.flushdb()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup: None, django_db_blocker: object, _broker_flushed: None) -> Iterator[object]:
    """A real Celery worker (two pool processes, each with its zygote) on the real Redis.

    Tests using it must be transactional (pytest.mark.django_db(transaction=True)):
    the worker is another process and only sees committed rows.
    """
    from .worker import WorkerProcess

    worker = WorkerProcess(concurrency=2).start()
    yield worker
    worker.stop()


@pytest.fixture
def gunicorn(transactional_db: None) -> Iterator[Callable[..., GunicornProcess]]:
    """Start real gunicorn servers (config/gunicorn.conf.py) on the test database; stopped before it is flushed.
    Tests using it must be transactional: the server only sees committed rows."""
    started: list[GunicornProcess] = []

    def start(env: dict[str, str] | None = None, args: list[str] | None = None) -> GunicornProcess:
        server = GunicornProcess(env=env, args=args).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
