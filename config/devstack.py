"""`make run` and the end-to-end benchmark: start the whole stack on this machine.

Migrates, loads the quizzes, makes the demo users, starts Redis when nothing
answers on the broker URL (and redis-server is installed), then a Celery worker
(with beat) and gunicorn. Ctrl-C stops everything it started.
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
from collections.abc import Sequence
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


def wait_until(check: callable, what: str, timeout: float = 30.0) -> None:  # type: ignore[valid-type]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not come up within {timeout:.0f} s")


class Stack:
    """Child processes started by us, stopped together."""

    def __init__(self) -> None:
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None,
              quiet: bool = False) -> subprocess.Popen[bytes]:
        out = subprocess.DEVNULL if quiet else None
        process = subprocess.Popen(list(argv), cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True)
        self.processes.append((name, process))
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

    def wait_any(self) -> tuple[str, int]:
        while True:
            for name, process in self.processes:
                if process.poll() is not None:
                    return name, process.returncode
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
    argv = [PY, "-m", "celery", "-A", "config", "worker", "-Q", "grading,default", "--concurrency", str(concurrency),
            "--loglevel", "INFO", "--hostname", f"devstack-{os.getpid()}@%h", "--without-gossip", "--without-mingle"]
    if beat:
        argv.append("--beat")
    stack.start("celery worker", argv, env=env, quiet=quiet)


def start_web(stack: Stack, host: str, port: int, workers: int, env: dict[str, str] | None = None,
              quiet: bool = False) -> None:
    argv = [PY, "-m", "gunicorn", "config.wsgi:application", "--bind", f"{host}:{port}", "--workers", str(workers),
            "--threads", "8", "--access-logfile", "-" if not quiet else "/dev/null", "--graceful-timeout", "5"]
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
        say(f"Starting a Celery worker ({args.workers} processes, with beat)")
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
