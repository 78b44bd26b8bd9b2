"""A real gunicorn serving the project to tests, on the test database, configured by config/gunicorn.conf.py."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import Any

from django.conf import settings

from tests.worker import ROOT, _die_with_parent, free_port, stop_group, test_database_url


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


class GunicornProcess:
    """`gunicorn -c config/gunicorn.conf.py config.wsgi:application` as a subprocess; `env` overrides variables
    (a dead broker or database URL), `args` adds command-line options."""

    def __init__(self, env: dict[str, str] | None = None, args: list[str] | None = None) -> None:
        self.port = free_port()
        self.extra_env = env or {}
        self.args = args or []
        self.log = ROOT / "var" / "test-gunicorn.log"  # the latest server's, as var/test-worker.log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, Any]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_", "GRADER_"))}
        env.update(DJANGO_SETTINGS_MODULE="config.settings.test", DATABASE_URL=test_database_url(),
                   CELERY_BROKER_URL=settings.CELERY_BROKER_URL, DJANGO_SECRET_KEY=settings.SECRET_KEY)
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60) -> GunicornProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "config" / "gunicorn.conf.py"),
                 "config.wsgi:application", "--bind", f"127.0.0.1:{self.port}", *self.args],
                cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log}")
            if answers(self.port):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not listen within {timeout} s; see {self.log}")

    def stop(self) -> None:
        stop_group(self.process, timeout=10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


__all__ = ["GunicornProcess", "free_port"]
