"""End-to-end benchmark: the whole stack on loopback, real HTTP, real workers.

    python -m grader.bench_e2e [--submissions 500] [--clients 20] [--rate 40] [--database-url URL]

Starts gunicorn, one Celery worker with two processes (each with its zygote),
uses Redis on 127.0.0.1 (database 14, flushed) and a fresh database (SQLite by
default, or --database-url, e.g. a PostgreSQL database that is dropped and
created), loads the seed quiz, then grades the seed code items (reference
solutions and starter code, alternating) from C concurrent HTTP clients. Each
client posts with `?wait=`, so the answer carries the verdict as soon as it is
stored, checks the verdict, and goes on. Two phases, N submissions each:

  saturation  every client posts its next submission as soon as it has a verdict:
              the most the stack grades per second (latency here is queueing:
              C submissions are always in flight)
  paced       the clients together offer --rate submissions per second, evenly
              spread: the latency a learner sees at that load

Prints throughput, p50/p99 latency from POST to final status, verdicts, and how
many submissions were lost (never graded).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
BROKER = "redis://127.0.0.1:6379/14"
THROUGHPUT_TARGET = 40.0
P50_TARGET_MS = 150.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def fresh_database(url: str | None) -> str:
    if not url:
        path = ROOT / "var" / "bench-e2e.sqlite3"
        path.parent.mkdir(exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    import psycopg

    with psycopg.connect(admin.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url


class Client(threading.Thread):
    """Posts its jobs one at a time; with an interval, starts job j no earlier than start + j * interval."""

    def __init__(self, port: int, token: str, jobs: list[tuple[str, str, bool]], deadline: float,
                 start: float = 0.0, interval: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.port, self.token, self.jobs, self.deadline = port, token, jobs, deadline
        self.start_at, self.interval = start, interval
        self.latencies: list[float] = []
        self.statuses: list[str] = []
        self.wrong = self.lost = self.errors = 0

    def request(self, conn: http.client.HTTPConnection, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        headers = {"Authorization": f"Token {self.token}", "Content-Type": "application/json"}
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        for index, (slug, code, must_pass) in enumerate(self.jobs):
            if self.interval:
                delay = self.start_at + index * self.interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            started = time.perf_counter()
            status, body = self.request(conn, "POST", "/api/v1/submissions/?wait=25", {"item": slug, "code": code})
            if status not in (201, 202):
                self.errors += 1
                continue
            while body.get("status") in ("queued", "running"):
                remaining = self.deadline - time.monotonic()
                if remaining <= 0:
                    self.lost += 1
                    break
                status, body = self.request(conn, "GET", f"{body['url']}?wait={min(25.0, remaining):.1f}")
            else:
                self.latencies.append((time.perf_counter() - started) * 1000)
                self.statuses.append(body["status"])
                self.wrong += (body["status"] == "passed") != must_pass
        conn.close()


def run_phase(name: str, port: int, tokens: list[str], jobs: list[tuple[str, str, bool]], clients: int,
              timeout: float, rate: float = 0.0) -> dict:
    """Grade jobs with `clients` threads; with a rate, the clients together offer `rate` jobs per second."""
    start = time.monotonic() + 0.2
    interval = clients / rate if rate else 0.0
    threads = [Client(port, tokens[c], jobs[c::clients], start + timeout, start + c / rate if rate else 0.0,
                      interval) for c in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    latencies = [ms for t in threads for ms in t.latencies]
    statuses = [st for t in threads for st in t.statuses]
    result = {
        "name": name, "graded": len(latencies), "sent": len(jobs), "elapsed": elapsed,
        "throughput": len(latencies) / elapsed, "p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
        "lost": sum(t.lost for t in threads), "errors": sum(t.errors for t in threads),
        "wrong": sum(t.wrong for t in threads), "verdicts": {s: statuses.count(s) for s in sorted(set(statuses))},
    }
    print(f"  {name}: graded {result['graded']} of {result['sent']} in {elapsed:.1f} s = {result['throughput']:.1f}/s; "
          f"POST -> verdict p50 {result['p50']:.0f} ms, p99 {result['p99']:.0f} ms; verdicts {result['verdicts']}; "
          f"wrong {result['wrong']}, refused {result['errors']}, lost {result['lost']}", flush=True)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m grader.bench_e2e", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--submissions", type=int, default=500)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rate", type=float, default=40.0, help="submissions per second offered in the paced phase")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL URL (dropped and created); default SQLite")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a missing verdict counts as lost")
    args = parser.parse_args(argv)

    from config.devstack import Stack, answers, manage, start_web, start_workers

    if not answers("127.0.0.1", 6379):
        raise SystemExit("Redis must answer on 127.0.0.1:6379")
    import redis

    redis.Redis.from_url(BROKER).flushdb()
    database = fresh_database(args.database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_", "GRADER_"))}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.production", DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
               DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost", DATABASE_URL=database, CELERY_BROKER_URL=BROKER,
               GRADER_SUBMISSION_RATE="1000000/min", DJANGO_LOG_LEVEL="WARNING")
    engine = "PostgreSQL" if database.startswith("postgres") else "SQLite"
    print(f"End-to-end benchmark: {args.submissions} submissions, {args.clients} clients, {engine}, "
          f"{os.cpu_count()} CPUs", flush=True)
    print("  preparing: migrate, load the seed quiz, make users and tokens ...", flush=True)
    manage("migrate", "--noinput", "-v", "0", env=env)
    manage("load_quizzes", env=env)
    tokens = json.loads(subprocess.run(
        [sys.executable, "manage.py", "shell", "-c",
         "import json\nfrom django.contrib.auth import get_user_model\nfrom rest_framework.authtoken.models import Token\n"
         f"users=[get_user_model().objects.create_user(f'bench{{i}}', password=None) for i in range({args.clients})]\n"
         "print(json.dumps([Token.objects.create(user=u).key for u in users]))"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    # The starter with a token added, so it is graded (the unchanged starter is refused without running).
    items = [(spec.slug, spec.solution, spec.starter + "\n_touched = 1\n") for spec in _seed_items()]

    stack = Stack()
    try:
        print("  starting gunicorn and a Celery worker with two processes ...", flush=True)
        start_workers(stack, 2, beat=False, env=env, quiet=True)
        start_web(stack, "127.0.0.1", args.port, workers=2, env=env, quiet=True)
        _wait_for_zygotes(args.port, tokens[0])
        jobs = []
        for i in range(args.submissions):
            slug, solution, starter = items[(i // 2) % len(items)]
            jobs.append((slug, solution, True) if i % 2 == 0 else (slug, starter, False))
        saturation = run_phase(f"saturation ({args.clients} clients, back to back)", args.port, tokens, jobs,
                               args.clients, args.timeout)
        paced = run_phase(f"paced ({args.clients} clients offering {args.rate:g}/s)", args.port, tokens, jobs,
                          args.clients, args.timeout, rate=args.rate)
    finally:
        stack.stop()

    lost = saturation["lost"] + paced["lost"]
    bad = lost + saturation["errors"] + paced["errors"] + saturation["wrong"] + paced["wrong"]
    met = (saturation["throughput"] >= THROUGHPUT_TARGET and paced["throughput"] >= 0.95 * args.rate
           and paced["p50"] <= P50_TARGET_MS and not bad)
    print(f"  target: >= {THROUGHPUT_TARGET:.0f}/s at saturation, p50 <= {P50_TARGET_MS:.0f} ms at "
          f"{args.rate:g}/s offered, 0 lost: {'MET' if met else 'NOT MET'} "
          f"({saturation['throughput']:.1f}/s; p50 {paced['p50']:.0f} ms; lost {lost})")
    if bad:
        raise SystemExit(1)


def _seed_items() -> list:
    from quiz.content_format import load_file

    return [s for s in load_file(ROOT / "quiz" / "content" / "autograd-basics.yaml").items if s.kind == "code"]


def _wait_for_zygotes(port: int, token: str) -> None:
    """Grade two warm-up submissions, so neither zygote's start-up is counted."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(4):
        conn.request("POST", "/api/v1/submissions/", body=json.dumps({"item": "vector-grad", "code": "pass"}),
                     headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
        url = json.loads(conn.getresponse().read())["url"]
        conn.request("GET", f"{url}?wait=60", headers={"Authorization": f"Token {token}"})
        conn.getresponse().read()
    conn.close()


if __name__ == "__main__":
    main()
