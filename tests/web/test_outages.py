"""The web tier through a broker or database outage (issue 14, point 1), on a real gunicorn.

Redis away: submissions are still stored and answered 202 `queued` at once, the throttle lets them through,
`?wait=` falls back to the database, and the sweep sends every one of them once Redis is back. The database
away: every request, API or page, is a 503 with Retry-After, never a 500.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis
import requests
from django.db import connection

from grader import services
from grader.models import Submission
from quiz.models import Item

from tests.worker import PrivateRedis

from .server import GunicornProcess, free_port

pytestmark = pytest.mark.django_db(transaction=True)
CODE = "import torch\nx = torch.tensor(2.0, requires_grad=True)\n(x ** 2 + 3 * x + 1).backward()\n"


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A redis-server for the web server under test (this process keeps the shared one): stopped and started again."""
    server = PrivateRedis()
    server.start()
    yield server
    server.close()


def submit(server: GunicornProcess, token: str, n: int) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.post(f"{server.url}/api/v1/submissions/", json={"item": "poly", "code": CODE + f"# {n}\n"},
                             headers={"Authorization": f"Token {token}"}, timeout=30)
    return response, time.monotonic() - started


def test_submissions_are_accepted_while_redis_is_down_and_sent_when_it_is_back(
        gunicorn: Callable[..., GunicornProcess], private_redis: PrivateRedis, code_item: Item, token: str) -> None:
    server = gunicorn(env={"CELERY_BROKER_URL": private_redis.url, "GRADER_SUBMISSION_RATE": "3/min"},
                      args=["--workers", "1"])
    response, _ = submit(server, token, 0)
    assert response.status_code == 202
    sent = response.json()["id"]
    assert redis.Redis.from_url(private_redis.url).llen("grading") == 1, "sent to the queue while Redis is up"

    private_redis.stop()  # the web process's pooled broker and cache connections are now dead
    answers = [submit(server, token, n) for n in range(1, 6)]
    print("POST latencies with Redis down (ms):", [round(seconds * 1000) for _, seconds in answers])
    assert [r.status_code for r, _ in answers] == [202] * 5, "stored, queued, and not throttled (fail open)"
    assert all(r.json()["status"] == "queued" for r, _ in answers)
    assert max(seconds for _, seconds in answers) < 2.0, "no hanging on the dead broker"
    unsent = [r.json()["id"] for r, _ in answers]
    stored = {s.pk: s for s in Submission.objects.all()}
    assert set(stored) == {sent, *unsent}
    assert all(stored[pk].queued_at == services.NEVER_SENT for pk in unsent)
    assert stored[sent].queued_at != services.NEVER_SENT

    # ?wait= without verdict notices: the database is polled, and a verdict stored meanwhile still comes back.
    def grade() -> None:
        Submission.objects.filter(pk=unsent[0]).update(status="passed", score=1.0, final_score=1.0)
        connection.close()

    timer = threading.Timer(1.0, grade)
    timer.start()
    started = time.monotonic()
    waited = requests.get(f"{server.url}/api/v1/submissions/{unsent[0]}/?wait=10",
                          headers={"Authorization": f"Token {token}"}, timeout=30)
    elapsed = time.monotonic() - started
    timer.join()
    assert waited.status_code == 200 and waited.json()["status"] == "passed"
    assert 0.9 < elapsed < 3.5, elapsed
    started = time.monotonic()
    pending = requests.get(f"{server.url}/api/v1/submissions/{unsent[1]}/?wait=1.5",
                           headers={"Authorization": f"Token {token}"}, timeout=30)
    assert pending.status_code == 200 and pending.json()["status"] == "queued"
    assert 1.4 < time.monotonic() - started < 4

    # Redis back: the sweep's next pass sends every submission the web tier could not, and only those.
    private_redis.start()
    requeued = services.submissions_requeue_stuck()  # what the periodic sweep always sends: NEVER_SENT rows
    assert sorted(requeued) == sorted(unsent[1:])
    assert not Submission.objects.filter(status="queued", queued_at=services.NEVER_SENT).exists()
    assert "Traceback" not in server.log_text()


def test_the_database_down_is_a_503_with_retry_after_never_a_500(
        gunicorn: Callable[..., GunicornProcess]) -> None:
    server = gunicorn(env={"DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/gone"},
                      args=["--workers", "1"])
    auth = {"Authorization": "Token 0123456789abcdef0123456789abcdef01234567"}
    api_calls = [
        ("GET", "/api/v1/quizzes/", auth, None),
        ("GET", "/api/v1/submissions/1/?wait=5", auth, None),
        ("POST", "/api/v1/submissions/", auth, {"item": "poly", "code": CODE}),
        ("POST", "/api/v1/auth/token/", {}, {"username": "ada", "password": "x"}),
    ]
    for method, path, headers, body in api_calls:
        response = requests.request(method, server.url + path, headers=headers, json=body, timeout=30)
        assert response.status_code == 503, (path, response.status_code, response.text[:300])
        assert response.headers["Retry-After"] == "5"
        assert response.json()["error"]["code"] == "service_unavailable", response.text
    for path in ("/", "/items/poly/", "/healthz/"):
        response = requests.get(server.url + path, cookies={"sessionid": "x" * 32}, timeout=30,
                                allow_redirects=False)
        assert response.status_code == 503, (path, response.status_code, response.text[:300])
        assert response.headers["Retry-After"] == "5"
        assert "text/html" in response.headers["Content-Type"]
        assert "Back in a moment" in response.text
