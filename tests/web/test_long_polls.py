"""Long-polls do not starve ordinary requests (issue 14, point 5).

A real gunicorn with config/gunicorn.conf.py (what `make run` and docker-compose use), 50 clients waiting on
`?wait=` for a verdict that does not come, and meanwhile an ordinary API request, timed: it may not be more
than 100 ms slower than on the idle server. With the sync workers compose had before, it waited out a long-poll.
"""
from __future__ import annotations

import runpy
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import requests
import yaml
from django.conf import settings
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from grader import notify
from grader.models import Submission
from quiz.models import Item
from tests.factories import SubmissionFactory

from .server import GunicornProcess

ROOT = Path(__file__).resolve().parents[2]
LONG_POLLS = 50
WAIT_SECONDS = 10
ALLOWED_DELAY = 0.100


def server_connections() -> int | None:
    """Connections to the test database other than this test's own: the server's (PostgreSQL only)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0]


def timed_get(url: str, token: str) -> float:
    started = time.monotonic()
    response = requests.get(url, headers={"Authorization": f"Token {token}"}, timeout=30)
    assert response.status_code == 200, response.text[:300]
    return time.monotonic() - started


def latencies(url: str, token: str, count: int = 20, spacing: float = 0.1) -> list[float]:
    figures = []
    for _ in range(count):
        figures.append(timed_get(url, token))
        time.sleep(spacing)
    return figures


@pytest.mark.django_db(transaction=True)
def test_fifty_long_polls_do_not_delay_an_ordinary_request(
        gunicorn: Callable[..., GunicornProcess], code_item: Item, learner: Any, token: str) -> None:
    server = gunicorn()
    pending = SubmissionFactory.create(user=learner, item=code_item, status=Submission.Status.QUEUED)  # no worker: stays
    graded = SubmissionFactory.create(user=learner, item=code_item, status=Submission.Status.PASSED, score=1.0)
    ordinary = f"{server.url}/api/v1/submissions/{graded.pk}/"
    for _ in range(3):  # warm every process (and some of its threads): concurrent, or one process gets them all
        warm = [threading.Thread(target=timed_get, args=(ordinary, token)) for _ in range(8)]
        for thread in warm:
            thread.start()
        for thread in warm:
            thread.join()
    idle = latencies(ordinary, token)

    polls: list[tuple[float, int, str]] = []

    def long_poll() -> None:
        started = time.monotonic()
        response = requests.get(f"{server.url}/api/v1/submissions/{pending.pk}/?wait={WAIT_SECONDS}",
                                headers={"Authorization": f"Token {token}"}, timeout=60)
        polls.append((time.monotonic() - started, response.status_code, response.json().get("status", "")))

    threads = [threading.Thread(target=long_poll) for _ in range(LONG_POLLS)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)  # every long-poll connected, authenticated and waiting
    loaded = latencies(ordinary, token)
    still_waiting = LONG_POLLS - len(polls)
    database_connections = server_connections()  # while they wait
    for thread in threads:
        thread.join(WAIT_SECONDS + 30)
    latencies(ordinary, token, count=100, spacing=0)  # ordinary traffic after the burst ...
    connections_after = server_connections()  # ... stays on a few threads and their connections

    ms = lambda values: [round(v * 1000, 1) for v in values]  # noqa: E731
    print(f"\nordinary request, idle server: p50 {statistics.median(idle) * 1000:.1f} ms, "
          f"max {max(idle) * 1000:.1f} ms")
    print(f"ordinary request, {LONG_POLLS} long-polls waiting: p50 {statistics.median(loaded) * 1000:.1f} ms, "
          f"max {max(loaded) * 1000:.1f} ms; all: {ms(loaded)}")
    print(f"long-polls: {len(polls)} answered after {min(p[0] for p in polls):.2f}-{max(p[0] for p in polls):.2f} s;"
          f" the server held {database_connections} database connections while they waited and "
          f"{connections_after} after 100 ordinary requests that followed")
    assert still_waiting == LONG_POLLS, "the long-polls were all still waiting while the ordinary requests ran"
    assert all(code == 200 and status == "queued" for _, code, status in polls)
    assert min(seconds for seconds, _, _ in polls) >= WAIT_SECONDS - 0.5, "each really waited"
    holding = settings.GRADER_WAITS_HOLDING_CONNECTIONS
    if database_connections is not None and connections_after is not None:
        assert database_connections <= 2 * holding + 10, "past the first few, waiting requests hold no connection"
        assert connections_after <= 2 * holding, "the threads the burst added do not each keep a connection"
    delay = max(loaded) - statistics.median(idle)
    assert delay <= ALLOWED_DELAY, f"an ordinary request was delayed {delay * 1000:.0f} ms by the long-polls"


@pytest.mark.django_db(transaction=True)
def test_a_process_lets_only_so_many_requests_wait(code_item: Item, learner: Any) -> None:
    """Past GRADER_WAITS_PER_PROCESS, a wait answers at once rather than taking the threads ordinary requests
    need."""
    pending = SubmissionFactory.create(user=learner, item=code_item, status=Submission.Status.QUEUED)
    is_final = lambda notified: not Submission.objects.filter(pk=pending.pk, status__in=Submission.PENDING).exists()  # noqa: E731
    def hold() -> None:
        try:
            notify.wait_for_verdict(pending.pk, 3.0, is_final)
        finally:
            connection.close()

    with override_settings(GRADER_WAITS_PER_PROCESS=1):
        holder = threading.Thread(target=hold)
        holder.start()
        time.sleep(0.5)
        assert notify.waiting() == 1
        started = time.monotonic()
        assert notify.wait_for_verdict(pending.pk, 3.0, is_final) is notify.Waited.TURNED_AWAY
        refused_after = time.monotonic() - started
        holder.join()
        assert notify.waiting() == 0
        started = time.monotonic()
        assert notify.wait_for_verdict(pending.pk, 1.0, is_final) is notify.Waited.TIMED_OUT  # room to wait again
        waited = time.monotonic() - started
    assert refused_after < 0.2 and waited >= 0.95


@pytest.mark.django_db(transaction=True)
def test_a_turned_away_wait_tells_the_client_when_to_ask_again(code_item: Item, learner: Any) -> None:
    """A pending answer given without waiting (too many wait already) carries Retry-After, so clients back off
    instead of asking again at once; one that waited its time does not (the client may ask again at once)."""
    pending = SubmissionFactory.create(user=learner, item=code_item, status=Submission.Status.QUEUED)
    client = APIClient()
    client.force_authenticate(learner)
    url = f"/api/v1/submissions/{pending.pk}/"
    with override_settings(GRADER_WAITS_PER_PROCESS=0):
        started = time.monotonic()
        turned_away = client.get(url, {"wait": 5})
        assert time.monotonic() - started < 1.0
    assert turned_away.status_code == 200 and turned_away.json()["status"] == "queued"
    assert turned_away["Retry-After"] == str(notify.TURNED_AWAY_RETRY_SECONDS)
    waited = client.get(url, {"wait": 0.3})
    assert waited.status_code == 200 and waited.json()["status"] == "queued"
    assert "Retry-After" not in waited


def test_make_run_and_compose_serve_with_the_threaded_config(monkeypatch: pytest.MonkeyPatch) -> None:
    config = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))
    assert config["worker_class"] == "config.gunicorn_worker.LifoThreadWorker"
    assert config["threads"] >= settings.GRADER_WAITS_PER_PROCESS + 16, "threads left for ordinary requests"
    assert settings.GRADER_WAITS_PER_PROCESS >= LONG_POLLS, "50 long-polls fit in one process (the kernel may send them all there)"
    assert config["preload_app"], "workers start at once, sharing the imported app"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert "-c config/gunicorn.conf.py" in " ".join(compose["services"]["web"]["command"])
    from config import devstack

    started: list[list[str]] = []

    class Stack:
        def start(self, name: str, argv: list[str], **kwargs: Any) -> None:
            started.append(argv)

    monkeypatch.setattr(devstack, "wait_until", lambda *args, **kwargs: None)  # nothing is started
    devstack.start_web(cast(devstack.Stack, Stack()), "127.0.0.1", 0, workers=2)  # a stand-in that records argv
    argv = started[0]
    assert argv[argv.index("-c") + 1] == str(ROOT / "config" / "gunicorn.conf.py")
    assert "--threads" not in argv and "--worker-class" not in argv


@pytest.mark.django_db(transaction=True)
def test_a_wait_looks_once_then_once_per_notice(code_item: Any, learner: Any) -> None:
    """The subscription's confirmation is no reason to look at the database: a wait looks once when it starts
    and then once per verdict notice (the look after a notice told that it came, so it may read the row whole)."""
    pending = SubmissionFactory.create(user=learner, item=code_item, status=Submission.Status.QUEUED)
    looks: list[bool] = []

    def is_final(notified: bool) -> bool:
        looks.append(notified)
        return notified

    def publish_soon() -> None:
        time.sleep(0.5)
        notify.verdict_published(pending.pk)

    publisher = threading.Thread(target=publish_soon)
    publisher.start()
    started = time.monotonic()
    assert notify.wait_for_verdict(pending.pk, 5.0, is_final) is notify.Waited.FINAL
    publisher.join()
    assert looks == [False, True], looks
    assert time.monotonic() - started < notify.RECHECK_SECONDS
