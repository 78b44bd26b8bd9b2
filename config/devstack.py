"""`make run` and the end-to-end benchmark: start the whole stack on this machine.

Migrates, loads the quizzes, makes the demo users, starts Redis when nothing
answers on the broker URL (and redis-server is installed), then a Celery worker,
Celery beat and gunicorn. A worker or beat that exits is restarted (with back-off,
logged); Ctrl-C stops everything it started.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def manage(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run([PY, "manage.py", *args], cwd=ROOT, check=True, env=env)


def broker_address(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or 6379


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def wait_until(check: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not come up within {timeout:.0f} s")


@dataclass
class Service:
    """One child process of the stack, and how to start it again."""

    name: str
    argv: list[str]
    env: dict[str, str] | None
    quiet: bool
    restart: bool
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    failures: int = 0  # exits in a row, each after running less than STABLE_SECONDS
    restart_at: float | None = None  # when it exited: the time it is due to be started again


class Stack:
    """Child processes started by us, stopped together; those started with restart=True are restarted when they
    exit (a worker that died on a fault of its own), with back-off: 1, 2, 4 ... 30 s, reset once it ran a minute."""

    BACKOFF_MAX = 30.0
    STABLE_SECONDS = 60.0

    def __init__(self) -> None:
        self.services: list[Service] = []

    @property
    def processes(self) -> list[tuple[str, subprocess.Popen[bytes]]]:
        return [(service.name, service.process) for service in self.services]

    def _spawn(self, argv: Sequence[str], env: dict[str, str] | None, quiet: bool) -> subprocess.Popen[bytes]:
        out = subprocess.DEVNULL if quiet else None
        return subprocess.Popen(list(argv), cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True)

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None,
              quiet: bool = False, restart: bool = False) -> subprocess.Popen[bytes]:
        process = self._spawn(argv, env, quiet)
        self.services.append(Service(name, list(argv), env, quiet, restart, process))
        return process

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for _, process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def supervise_once(self) -> tuple[str, int] | None:
        """Restart what is due; returns (name, status) of a process that exited and is not restarted."""
        now = time.monotonic()
        for service in self.services:
            code = service.process.poll()
            if code is None:
                continue
            if not service.restart:
                return service.name, code
            if service.restart_at is None:
                ran = now - service.started
                service.failures = 0 if ran >= self.STABLE_SECONDS else service.failures + 1
                delay = min(2.0 ** max(service.failures - 1, 0), self.BACKOFF_MAX)
                service.restart_at = now + delay
                say(f"{service.name} exited with status {code} after {ran:.0f} s; restarting it in {delay:.0f} s")
            elif now >= service.restart_at:
                try:  # the group may hold orphans of the dead process (a zygote): they go with it
                    os.killpg(service.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                service.process = self._spawn(service.argv, service.env, service.quiet)
                service.started, service.restart_at = time.monotonic(), None
                say(f"{service.name} restarted (pid {service.process.pid})")
        return None

    def wait_any(self) -> tuple[str, int]:
        """Supervise until a process that is not restarted exits; its name and status."""
        while True:
            exited = self.supervise_once()
            if exited is not None:
                return exited
            time.sleep(0.5)


def ensure_redis(stack: Stack, broker_url: str, quiet: bool = False) -> None:
    host, port = broker_address(broker_url)
    if answers(host, port):
        say(f"Redis answers on {host}:{port}")
        return
    server = shutil.which("redis-server")
    if server is None or host not in ("127.0.0.1", "localhost"):
        raise SystemExit(
            f"Nothing answers on the broker URL {broker_url}. Start Redis (Debian: apt-get install redis-server; "
            "or docker run -p 6379:6379 redis:7) or set CELERY_BROKER_URL, then run again.")
    say(f"Starting redis-server on 127.0.0.1:{port} (nothing answered there)")
    stack.start("redis", [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
                quiet=True)
    wait_until(lambda: answers(host, port), "Redis")


def start_workers(stack: Stack, concurrency: int, beat: bool, env: dict[str, str] | None = None,
                  quiet: bool = False) -> None:
    """A Celery worker, and beat as a process of its own (not `--beat` inside the worker: a worker that dies
    would take the sweep that recovers its work with it). Both are restarted if they exit."""
    argv = [PY, "-m", "celery", "-A", "config", "worker", "-Q", "grading,default", "--concurrency", str(concurrency),
            "--loglevel", "INFO", "--hostname", f"devstack-{os.getpid()}@%h", "--without-gossip", "--without-mingle"]
    stack.start("celery worker", argv, env=env, quiet=quiet, restart=True)
    if beat:
        stack.start("celery beat", [PY, "-m", "celery", "-A", "config", "beat", "--loglevel", "WARNING"], env=env,
                    quiet=quiet, restart=True)


def start_web(stack: Stack, host: str, port: int, workers: int, env: dict[str, str] | None = None,
              quiet: bool = False) -> None:
    # Worker class and threads from config/gunicorn.conf.py, as in docker-compose: long-polls never starve pages.
    argv = [PY, "-m", "gunicorn", "-c", str(ROOT / "config" / "gunicorn.conf.py"), "config.wsgi:application",
            "--bind", f"{host}:{port}", "--workers", str(workers), "--access-logfile", "-" if not quiet else "/dev/null",
            "--graceful-timeout", "5"]
    stack.start("gunicorn", argv, env=env, quiet=quiet)

    def up() -> bool:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            return False

    wait_until(up, "the web server", timeout=60)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes (each owns a zygote)")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings

    stack = Stack()

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # Installed explicitly: a shell starts background jobs with SIGINT ignored, and
    # Python then has no handler of its own. Any of these stops the whole stack.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)
    try:
        say("Applying database migrations")
        manage("migrate", "--noinput", "-v", "1")
        ensure_redis(stack, settings.CELERY_BROKER_URL)
        say("Loading quizzes (reference solutions run in the sandbox)")
        manage("load_quizzes")
        say("Demo accounts")
        manage("create_demo_users")
        say(f"Starting a Celery worker ({args.workers} processes) and beat, restarted if they exit")
        start_workers(stack, args.workers, beat=True)
        say(f"Starting gunicorn on {args.host}:{args.port}")
        start_web(stack, args.host, args.port, workers=2)
        base = f"http://{args.host}:{args.port}"
        print(f"""
  The autograd quiz is running.
    Quiz site:     {base}/
    Admin panel:   {base}/admin/
    API docs:      {base}/api/docs/
  Logins: learner / learner-demo-pass   instructor / instructor-demo-pass
  Ctrl-C stops everything.
""", flush=True)
        name, code = stack.wait_any()
        say(f"{name} exited with status {code}; stopping the rest")
    except KeyboardInterrupt:
        say("Stopping")
    except subprocess.CalledProcessError as exc:
        say(f"{' '.join(exc.cmd[1:3])} failed (status {exc.returncode})")
        stack.stop()
        raise SystemExit(1) from None
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
