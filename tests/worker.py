"""A real Celery worker process for tests, on the real Redis and the test database."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

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


def _die_with_parent() -> None:
    """In the worker before exec: if the test run dies, so does the worker."""
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class WorkerProcess:
    """`celery -A config worker` as a subprocess; killable, restartable."""

    def __init__(self, concurrency: int = 1, log: Path | None = None) -> None:
        self.concurrency = concurrency
        self.log = log or ROOT / "var" / "test-worker.log"
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
                 "--without-gossip", "--without-mingle", "--without-heartbeat"],
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
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
