"""Real Celery worker and beat processes for tests, on a real Redis (the shared test broker or a private one) and
the test database."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection
from pytest_django.fixtures import Settings

from config.celery_app import app

ROOT = Path(__file__).resolve().parents[1]


def test_database_url() -> str:
    """The URL of the database pytest-django created, for processes outside the test run."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def stop_group(process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM a process started in a session of its own, with its whole group; SIGKILL the group if it has not
    exited within timeout."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _die_with_parent() -> None:
    """In the worker before exec: if the test run dies, so does the worker."""
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class WorkerProcess:
    """`celery -A config worker` as a subprocess; killable, restartable."""

    def __init__(self, concurrency: int = 1, log: Path | None = None, heartbeat_file: Path | None = None) -> None:
        self.concurrency = concurrency
        self.log = log or ROOT / "var" / "test-worker.log"
        self.heartbeat_file = heartbeat_file
        self.process: subprocess.Popen[bytes] | None = None
        self.hostname = ""

    def env(self) -> dict[str, Any]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_"))}
        env.update(DJANGO_SETTINGS_MODULE="config.settings.test", DATABASE_URL=test_database_url(),
                   CELERY_BROKER_URL=settings.CELERY_BROKER_URL, DJANGO_SECRET_KEY=settings.SECRET_KEY)
        return env

    def start(self, timeout: float = 60) -> WorkerProcess:
        self.hostname = f"test-{uuid.uuid4().hex[:8]}@localhost"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "grading,default",
                 "--concurrency", str(self.concurrency), "--hostname", self.hostname, "--loglevel", "INFO",
                 "--without-gossip", "--without-mingle", "--without-heartbeat",
                 *(["--heartbeat-file", str(self.heartbeat_file)] if self.heartbeat_file else [])],
                cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent)
        try:
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the Celery worker exited with {self.process.returncode}; see {self.log}")
                with app.connection_for_write() as conn:  # fresh: the broker may have restarted since
                    if app.control.ping(destination=[self.hostname], timeout=0.5, connection=conn):
                        return self
            raise RuntimeError(f"the Celery worker did not answer within {timeout} s; see {self.log}")
        except BaseException:
            self.kill()  # never leave a worker behind to steal another test's tasks
            raise

    def pids(self) -> list[int]:
        """The worker's main process and its pool processes."""
        assert self.process is not None
        out = subprocess.run(["pgrep", "-g", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def kill(self) -> None:
        """SIGKILL the whole worker: main process, pool processes and their zygotes."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        stop_group(self.process, timeout=20)


class BeatProcess:
    """`celery -A config beat` as a subprocess: the periodic sweep (grader.requeue_stuck), as in production."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.log = directory / "beat.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> BeatProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        env = WorkerProcess().env()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
                 "--schedule", str(self.directory / "celerybeat-schedule")],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent)
        return self

    def stop(self) -> None:
        stop_group(self.process, timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRedis:
    """A redis-server of the test's own on a free port, stopped and started again empty.

    Tests that stop the broker use one, never the Redis on 6379 that other test runs on this machine share.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="test-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=1)

    def start(self) -> None:
        with open(self.dir / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
                 "--dir", str(self.dir)], stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                if self.client().ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"the private redis-server on port {self.port} did not start; see {self.dir}")

    def stop(self) -> None:
        """SIGKILL: nothing is saved, so it comes back empty, as a crashed broker does."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def use_broker(url: str) -> None:
    """Point this process's Celery app and verdict notices at another broker.

    Celery reads CELERY_BROKER_URL from the environment before its settings, so that changes too; the
    connection pools and the control mailbox's cached producer pool are dropped so nothing keeps the old one.
    """
    from grader import notify

    celery: Any = app  # what is reset below is Celery's private state, which celery-types does not describe
    os.environ["CELERY_BROKER_URL"] = url
    celery.conf.broker_url = url
    if celery._pool is not None:
        celery._pool.force_close_all()
        celery._pool = None
    celery.amqp._producer_pool = None
    celery.control.mailbox.__dict__.pop("producer_pool", None)
    notify.reset()


@pytest.fixture
def private_redis(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateRedis]:
    """A private broker for this test: this process and the workers it starts use it."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    server = PrivateRedis()
    server.start()
    previous = settings.CELERY_BROKER_URL
    monkeypatch.setenv("CELERY_BROKER_URL", previous)  # restored after the test, whatever use_broker sets
    settings.CELERY_BROKER_URL = server.url  # read by WorkerProcess.env
    use_broker(server.url)
    try:
        yield server
    finally:
        use_broker(previous)
        server.close()
