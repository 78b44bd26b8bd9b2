"""End-to-end benchmark: the whole stack on loopback, real HTTP, real workers, and the CPU each part spends.

    python -m grader.bench_e2e [--submissions 500] [--clients 20] [--rate 40] [--database-url URL]
                               [--baseline REV | --no-baseline]

Starts gunicorn, one Celery worker with two processes (each with its zygote), uses Redis on 127.0.0.1
(database 14, flushed) and a fresh database (SQLite by default, or --database-url: a PostgreSQL database that
is dropped and created), loads the seed quiz, then grades the seed code items (reference solutions and starter
code, alternating) from C concurrent HTTP clients. Each client posts with `?wait=`, so the answer carries the
verdict as soon as it is stored, checks the verdict, and goes on. Two phases, N submissions each:

  saturation  every client posts its next submission as soon as it has a verdict: the most the stack grades
              per second (latency here is queueing: C submissions are always in flight)
  paced       the clients together offer --rate submissions per second, evenly spread: the latency a learner
              sees at that load

Per phase it prints throughput, p50/p99 latency from POST to final status, verdicts, how many submissions were
lost (never graded), and the CPU each component spent per graded submission (ms), from /proc (grader.bench_cpu):

  gunicorn            the master and its worker processes
  Celery              the worker's main process and its pool processes, not the sandbox zygotes they start
  PostgreSQL          the backends connected to the bench database (pg_stat_activity); SQLite runs inside
                      gunicorn and Celery and is counted there
  around the sandbox  the three added up: the figure issue 14 asks to bring down
  Redis               the redis-server process (INFO cpu): shared with anything else that uses that server
  sandbox             the zygotes and their children, for information (not this benchmark's business)

Baseline: before that, the same phases with the same counts run against --baseline REV, checked out with
`git worktree add` into a temporary directory (removed at exit, Ctrl-C included) and served from there by the
same interpreter, with a fresh database of its own (the URL's name + "_baseline"; for SQLite
var/bench-e2e-baseline.sqlite3); each side grades its own revision's seed items. Then a table: figure, baseline,
now, change. The default, 58d0522, is the code before this round's web-tier changes (the state issue 14's
figures start from); it is a fixed commit rather than HEAD~N so that runs on other days compare with the same
code. `--baseline HEAD` shows the run-to-run noise; `--no-baseline` runs this tree alone. "Now" is this working
tree, uncommitted changes included.

The issue's targets are printed with PASS or MISS; the exit status is 0 whatever the figures, and 1 when a
submission was lost, refused or got the wrong verdict (on either side). With the defaults it takes two to
three minutes on two idle cores (half that without the baseline). Progress goes to stderr, results to stdout.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from config.devstack import Stack, answers, start_web, start_workers
from grader.bench_cpu import (
    ProcStat, Snapshot, Usage, process_table, read_cmdline, read_cwd, read_stat, snapshot, tree, usage,
)

ROOT = Path(__file__).resolve().parents[1]
BROKER = "redis://127.0.0.1:6379/14"
DEFAULT_BASELINE = "58d0522"
SEED_QUIZ = Path("quiz", "content", "autograd-basics.yaml")
# Issue 14's targets.
CPU_TARGET_MS = 12.0  # CPU around the sandbox (gunicorn + Celery + database) per graded submission
CPU_BEFORE_MS = 24.0  # what the issue measured before
THROUGHPUT_TARGET = 70.0  # graded per second at saturation, on PostgreSQL
TARGET_RATE = 40.0  # the paced phase's offered load the latency targets are for
P50_TARGET_MS = 60.0
P99_TARGET_MS = 250.0
# The zygote's command line (grader.sandbox.client.BOOTSTRAP, the same at the default baseline): it and its
# children are the sandbox, counted apart from the Celery pool process that started it.
ZYGOTE_MARK = "from grader.sandbox import zygote"
AROUND = ("gunicorn", "celery", "database")
LABELS = {"gunicorn": "gunicorn", "celery": "Celery", "database": "database", "around": "around the sandbox",
          "redis": "Redis (shared)", "sandbox": "sandbox (info)"}
POOL = 2  # Celery pool processes, each with its zygote; gunicorn runs as many worker processes
SAMPLE_SECONDS = 0.2  # how often the bench database's backends are read during a phase
SETTLE_SECONDS = 0.5  # after the last verdict, so the last tasks' acknowledgements land in their phase

Job = tuple[str, str, bool]  # item slug, code, whether it must pass


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# -- what is measured --------------------------------------------------------------------------------------------


@dataclass
class Phase:
    """One phase's outcome on one side."""

    name: str
    graded: int
    sent: int
    elapsed: float
    p50: float
    p99: float
    lost: int
    errors: int
    wrong: int
    verdicts: dict[str, int]
    cpu: dict[str, Usage | None] = field(default_factory=dict)  # None: not measurable here

    @property
    def throughput(self) -> float:
        return self.graded / self.elapsed

    @property
    def bad(self) -> int:
        return self.lost + self.errors + self.wrong

    def per_submission(self, component: str) -> float | None:
        """ms of CPU per graded submission; 'around' adds up gunicorn, Celery and the database."""
        if component == "around":
            parts = [self.per_submission(c) for c in AROUND]
            return None if None in parts else sum(p for p in parts if p is not None)
        spent = self.cpu.get(component)
        return None if spent is None or not self.graded else spent.ms / self.graded


@dataclass(frozen=True)
class Reading:
    snapshots: dict[str, Snapshot]  # gunicorn, celery, sandbox, and database when PostgreSQL's backends are ours
    redis_ms: float


class Meter:
    """Reads the CPU clocks of one side's components: gunicorn's tree, Celery's tree without the zygotes, the
    zygotes' trees, the PostgreSQL backends of the bench database, and Redis."""

    def __init__(self, gunicorn: int, celery: int, database_url: str) -> None:
        import redis

        self.gunicorn, self.celery = gunicorn, celery
        self.redis = redis.Redis.from_url(BROKER)
        self.database: str | None = None
        self.pg: Any = None
        self.remote_database = False
        if database_url.startswith("postgres"):
            import psycopg

            parsed = urlparse(database_url)
            self.database = parsed.path.lstrip("/")
            # Connected to the maintenance database, so this connection is not one of the bench database's.
            self.pg = psycopg.connect(_libpq_url(parsed._replace(path="/postgres").geturl()), autocommit=True)
            own = self.pg.execute("SELECT pg_backend_pid()").fetchone()[0]
            self.remote_database = not read_cmdline(own).startswith("postgres")

    def close(self) -> None:
        if self.pg is not None:
            self.pg.close()
        self.redis.close()

    def zygotes(self, table: dict[int, ProcStat] | None = None) -> set[int]:
        """The zygotes the pool processes started (their children, forked, carry the same command line); any a
        gunicorn worker started too (code whose web tier runs the sandbox), so they are not counted as gunicorn."""
        table = process_table() if table is None else table
        marked = {pid for root in (self.celery, self.gunicorn) for pid in tree(table, root)
                  if ZYGOTE_MARK in read_cmdline(pid)}
        return {pid for pid in marked if table[pid].ppid not in marked}

    def read(self) -> Reading:
        table = process_table()
        zygotes = self.zygotes(table)
        pids = {"gunicorn": tree(table, self.gunicorn, prune=zygotes.__contains__),
                "celery": tree(table, self.celery, prune=zygotes.__contains__),
                "sandbox": set().union(*(tree(table, pid) for pid in zygotes))}
        if self.pg is not None and not self.remote_database:
            pids["database"] = self.backends()
        info = self.redis.info("cpu")
        return Reading({name: snapshot(table, found) for name, found in pids.items()},
                       redis_ms=1000.0 * (float(info["used_cpu_user"]) + float(info["used_cpu_sys"])))

    def backends(self) -> set[int]:
        rows = self.pg.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.database]).fetchall()
        return {pid for (pid,) in rows}

    def sample(self, seen: dict[tuple[int, int], ProcStat]) -> None:
        """Note the latest reading of each backend of the bench database: one that disconnects before the phase
        ends (CONN_MAX_AGE) is counted up to its last sample rather than not at all."""
        if self.pg is None or self.remote_database:
            return
        for pid in self.backends():
            stat = read_stat(pid)
            if stat is not None:
                seen[stat.key] = stat

    def usage(self, before: Reading, after: Reading,
              seen: dict[tuple[int, int], ProcStat] | None = None) -> dict[str, Usage | None]:
        spent: dict[str, Usage | None] = {
            name: usage(before.snapshots[name], after.snapshots[name], seen if name == "database" else None)
            for name in before.snapshots}
        if self.pg is None:
            spent["database"] = Usage(0.0)  # SQLite: inside gunicorn and Celery, counted there
        elif self.remote_database:
            spent["database"] = None
        spent["redis"] = Usage(after.redis_ms - before.redis_ms)
        return spent


# -- the clients ---------------------------------------------------------------------------------------------------


class Client(threading.Thread):
    """Posts its jobs one at a time; with an interval, starts job j no earlier than start + j * interval."""

    def __init__(self, port: int, token: str, jobs: list[Job], deadline: float,
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
            try:
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
            except (OSError, http.client.HTTPException, ValueError):  # counted, on a new connection
                self.errors += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.close()


def run_phase(name: str, port: int, tokens: list[str], jobs: list[Job], clients: int, timeout: float,
              meter: Meter, rate: float = 0.0) -> Phase:
    """Grade jobs with `clients` threads; with a rate, the clients together offer `rate` jobs per second."""
    before = meter.read()
    start = time.monotonic() + 0.2
    interval = clients / rate if rate else 0.0
    threads = [Client(port, tokens[c], jobs[c::clients], start + timeout, start + c / rate if rate else 0.0,
                      interval) for c in range(clients)]
    seen: dict[tuple[int, int], ProcStat] = {}
    done = threading.Event()
    sampler = threading.Thread(target=_sample, args=(meter, seen, done), daemon=True)
    sampler.start()
    for thread in threads:
        thread.start()
    report_at = time.monotonic() + 5.0
    while alive := [t for t in threads if t.is_alive()]:
        alive[0].join(timeout=0.5)
        if time.monotonic() >= report_at:
            report_at += 5.0
            progress(f"    {name.split()[0]}: {sum(len(t.latencies) for t in threads)} of {len(jobs)} graded, "
                     f"{time.monotonic() - start:.0f} s")
    elapsed = time.monotonic() - start
    time.sleep(SETTLE_SECONDS)
    done.set()
    sampler.join()
    after = meter.read()
    latencies = [ms for t in threads for ms in t.latencies]
    statuses = [st for t in threads for st in t.statuses]
    return Phase(name=name, graded=len(latencies), sent=len(jobs), elapsed=elapsed,
                 p50=percentile(latencies, 50), p99=percentile(latencies, 99),
                 lost=sum(t.lost for t in threads), errors=sum(t.errors for t in threads),
                 wrong=sum(t.wrong for t in threads), verdicts={s: statuses.count(s) for s in sorted(set(statuses))},
                 cpu=meter.usage(before, after, seen))


def _sample(meter: Meter, seen: dict[tuple[int, int], ProcStat], done: threading.Event) -> None:
    while not done.is_set():
        meter.sample(seen)
        done.wait(SAMPLE_SECONDS)


# -- one side: a tree served and measured ------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    name: str  # "baseline" or "now"
    label: str  # the revision, e.g. "58d0522" or "4fd79cc + uncommitted changes"
    root: Path  # the tree its processes run from
    database_url: str | None  # None: SQLite
    sqlite_name: str  # the SQLite file's name under var/ when there is no database URL


class RootedStack(Stack):
    """config.devstack's Stack, its processes started in `root` (a baseline's worktree) rather than this checkout:
    the working directory comes first on a `python -m` process's path, so gunicorn, Celery and the zygotes import
    that tree's code; an argument naming a file of this checkout (gunicorn.conf.py) names root's copy. The
    interpreter (argv[0], this checkout's .venv) stays."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def _spawn(self, argv: Sequence[str], env: dict[str, str] | None, quiet: bool) -> subprocess.Popen[bytes]:
        here = f"{ROOT}/"
        argv = [argv[0]] + [f"{self.root}/{arg[len(here):]}" if arg.startswith(here) else arg for arg in argv[1:]]
        out = subprocess.DEVNULL if quiet else None
        return subprocess.Popen(argv, cwd=self.root, env=env, stdout=out, stderr=out, start_new_session=True)


@dataclass
class Served:
    """A side's stack, up and warmed: where to send submissions, as whom, what, and how to read its CPU."""

    port: int
    tokens: list[str]
    items: list[Any]
    meter: Meter
    stack: Stack


@contextmanager
def served(side: Side, port: int, clients: int) -> Iterator[Served]:
    """Serve side.root on a fresh database (gunicorn, a Celery worker with POOL processes), warmed up; stopped at
    exit. Shared by the end-to-end bench and the soak (grader.bench_soak)."""
    import redis

    redis.Redis.from_url(BROKER).flushdb()
    database = fresh_database(side.database_url, side.sqlite_name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_", "GRADER_"))}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.production", DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
               DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost", DATABASE_URL=database, CELERY_BROKER_URL=BROKER,
               GRADER_SUBMISSION_RATE="1000000/min", DJANGO_LOG_LEVEL="WARNING", PYTHONPATH=str(side.root))
    progress(f"  {side.name} ({side.label}): migrate, load the seed quiz, make users and tokens ...")
    _manage(side.root, env, "migrate", "--noinput", "-v", "0")
    _manage(side.root, env, "load_quizzes", str(side.root / SEED_QUIZ))  # the items graded here; the others cost time
    tokens = _make_tokens(side.root, env, clients)
    items = _seed_items(side.root)

    stack = RootedStack(side.root)
    meter: Meter | None = None
    try:
        progress(f"  {side.name}: starting gunicorn and a Celery worker with two processes ...")
        start_workers(stack, POOL, beat=False, env=env, quiet=True)
        start_web(stack, "127.0.0.1", port, workers=POOL, env=env, quiet=True)
        pids = {name: process.pid for name, process in stack.processes}
        meter = Meter(pids["gunicorn"], pids["celery worker"], database)
        progress(f"  {side.name}: warming up (each item's solution, {POOL} at once) ...")
        _warm_up(port, tokens, items, meter)
        _check_origin(side, meter)
        yield Served(port, tokens, items, meter, stack)
    finally:
        if meter is not None:
            meter.close()
        stack.stop()


def run_side(side: Side, args: argparse.Namespace) -> list[Phase]:
    """Serve side.root on a fresh database and run both phases against it."""
    with served(side, args.port, args.clients) as up:
        phases = []
        for name, rate in ((f"saturation ({args.clients} clients, back to back)", 0.0),
                           (f"paced ({args.clients} clients offering {args.rate:g}/s)", args.rate)):
            progress(f"  {side.name}: {name} ...")
            jobs = make_jobs(up.items, args.submissions, name.split()[0])
            phases.append(run_phase(name, up.port, up.tokens, jobs, args.clients, args.timeout, up.meter, rate=rate))
            print(phase_report(phases[-1], engine="PostgreSQL" if up.meter.pg is not None else "SQLite"), flush=True)
        return phases


def _check_origin(side: Side, meter: Meter) -> None:
    """Refuse to measure a side whose processes run another tree's code."""
    for name, pid in (("gunicorn", meter.gunicorn), ("Celery", meter.celery)):
        cwd = read_cwd(pid)
        if cwd != str(side.root):
            raise SystemExit(f"{side.name}: {name} (pid {pid}) runs in {cwd}, not in {side.root}")
    zygotes = meter.zygotes()
    strays = [pid for pid in zygotes if repr(str(side.root)) not in read_cmdline(pid)]
    if not zygotes or strays:
        raise SystemExit(f"{side.name}: zygotes {sorted(zygotes)} do not all import from {side.root}")
    progress(f"  {side.name}: gunicorn (pid {meter.gunicorn}), Celery (pid {meter.celery}) and zygotes "
             f"{sorted(zygotes)} run from {side.root}"
             + ("; the PostgreSQL server is not on this machine: its CPU is not measured" if meter.remote_database
                else ""))


def fresh_database(url: str | None, sqlite_name: str = "bench-e2e") -> str:
    if not url:
        path = ROOT / "var" / f"{sqlite_name}.sqlite3"
        path.parent.mkdir(exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    import psycopg

    with psycopg.connect(_libpq_url(parsed._replace(path="/postgres").geturl()), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url


def _libpq_url(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


def _manage(root: Path, env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=root, env=env, check=True, stdout=sys.stderr)


def _make_tokens(root: Path, env: dict[str, str], clients: int) -> list[str]:
    """A user per client, enrolled as a signing-up learner is (the default course, which runs the seed quiz)."""
    script = ("import json\nfrom django.contrib.auth import get_user_model\n"
              "from rest_framework.authtoken.models import Token\nfrom courses.services import self_enrol\n"
              f"users=[get_user_model().objects.create_user(f'bench{{i}}', password=None) for i in range({clients})]\n"
              "[self_enrol(user=u) for u in users]\n"
              "print(json.dumps([Token.objects.create(user=u).key for u in users]))")
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=root, env=env, check=True,
                         capture_output=True, text=True).stdout
    tokens: list[str] = json.loads(out.strip().splitlines()[-1])
    return tokens


def make_jobs(items: Sequence[Any], count: int, tag: str) -> list[Job]:
    """Reference solutions (must pass) and starters (must not), alternating over the items. The starter gets a
    statement added, so it is graded (the unchanged starter is refused without running), and every answer a
    comment of its own, so none repeats an earlier one of its learner (a repeat is refused, not graded)."""
    jobs: list[Job] = []
    for i in range(count):
        spec = items[(i // 2) % len(items)]
        if i % 2 == 0:
            jobs.append((spec.slug, f"{spec.solution}\n# bench {tag} {i}\n", True))
        else:
            jobs.append((spec.slug, f"{spec.starter}\n_touched = 1\n# bench {tag} {i}\n", False))
    return jobs


def _seed_items(root: Path) -> list[Any]:
    from quiz.content_format import load_file

    return [s for s in load_file(root / SEED_QUIZ).items if s.kind == "code"]


def _warm_up(port: int, tokens: list[str], items: Sequence[Any], meter: Meter, pool: int = POOL) -> None:
    """Grade each item's solution `pool` times at once (so each pool process most likely grades it), then more
    until every pool process has started its zygote: no zygote's start-up (torch's import, seconds of CPU) and
    no first use of an item is counted in a phase."""
    for rounds in range(len(items) + 10):
        spec = items[rounds % len(items)]
        errors: list[str] = []
        threads = [threading.Thread(target=_warm_one, args=(port, tokens[n % len(tokens)], spec.slug,
                                                            f"{spec.solution}\n# warm-up {rounds} {n}\n", errors))
                   for n in range(pool)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise SystemExit(f"a warm-up submission was refused: {errors[0]}")
        if rounds >= len(items) - 1 and len(_pool_zygotes(meter)) >= pool:
            return
    progress(f"  warning: after the warm-up, {len(_pool_zygotes(meter))} of {pool} zygotes are up: "
             "the others' start-up will be counted")


def _pool_zygotes(meter: Meter) -> set[int]:
    table = process_table()
    return meter.zygotes(table) & tree(table, meter.celery)


def _warm_one(port: int, token: str, slug: str, code: str, errors: list[str]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    conn.request("POST", "/api/v1/submissions/?wait=25", body=json.dumps({"item": slug, "code": code}),
                 headers=headers)
    response = conn.getresponse()
    body = json.loads(response.read() or b"{}")
    if response.status not in (201, 202):
        errors.append(f"{response.status} {json.dumps(body)[:500]}")
    elif body.get("status") in ("queued", "running"):
        conn.request("GET", f"{body['url']}?wait=60", headers=headers)
        conn.getresponse().read()
    conn.close()


# -- the baseline's tree -----------------------------------------------------------------------------------------


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def describe_tree() -> str:
    """This checkout's revision, and whether tracked files differ from it."""
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return _git("rev-parse", "--short", "HEAD") + (" + uncommitted changes" if dirty else "")


@contextmanager
def worktree(rev: str) -> Iterator[tuple[Path, str]]:
    """REV checked out (detached) in a temporary directory, removed on the way out, however that happens."""
    try:
        commit = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except subprocess.CalledProcessError:
        raise SystemExit(f"--baseline {rev}: no such commit") from None
    path = Path(tempfile.mkdtemp(prefix="bench-e2e-baseline-"))
    try:
        progress(f"  baseline: git worktree add {path} {commit[:12]}")
        _git("worktree", "add", "--detach", "--quiet", str(path), commit)
        yield path, _git("rev-parse", "--short", commit)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, capture_output=True)
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=ROOT, capture_output=True)
        progress(f"  baseline: worktree {path} removed")


def side_database_url(url: str | None, suffix: str) -> str | None:
    if not url:
        return None
    parsed = urlparse(url)
    return parsed._replace(path=parsed.path + suffix).geturl()


# -- the report --------------------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def phase_report(phase: Phase, engine: str) -> str:
    """The phase's lines: throughput and latency, then CPU per graded submission by component."""
    per = phase.per_submission
    around = per("around")
    cpu_verdict = "" if around is None else f": {'PASS' if around <= CPU_TARGET_MS else 'MISS'}"
    database = "PostgreSQL" if engine == "PostgreSQL" else "SQLite (inside the two)"
    lines = [
        f"  {phase.name}: graded {phase.graded} of {phase.sent} in {phase.elapsed:.1f} s = {phase.throughput:.1f}/s; "
        f"POST -> verdict p50 {phase.p50:.0f} ms, p99 {phase.p99:.0f} ms; verdicts {phase.verdicts}; "
        f"wrong {phase.wrong}, refused or failed {phase.errors}, lost {phase.lost}",
        f"    CPU per graded submission: gunicorn {_ms(per('gunicorn'))} + Celery {_ms(per('celery'))} + "
        f"{database} {_ms(per('database'))} = {_ms(around)} around the sandbox "
        f"(target <= {CPU_TARGET_MS:g} ms, was about {CPU_BEFORE_MS:g}{cpu_verdict})",
        f"    also: Redis {_ms(per('redis'))} (the whole server, shared with its other users), "
        f"sandbox {_ms(per('sandbox'))} (zygotes and children, for information)",
    ]
    # The sandbox forks a child per job: its processes come and go by design, and are reaped inside it.
    changes = [f"{LABELS[name]} {spent.note()}" for name in AROUND if (spent := phase.cpu.get(name)) and spent.note()]
    if changes:
        lines.append(f"    processes that started or ended during the phase: {'; '.join(changes)} (a backend that "
                     f"disconnected is counted up to its last sample, every {SAMPLE_SECONDS:g} s)")
    return "\n".join(lines)


Row = tuple[str, str, float | None, float | None]  # phase, figure, baseline, now


def comparison_rows(baseline: list[Phase], now: list[Phase]) -> list[Row]:
    rows: list[Row] = []
    for before, after in zip(baseline, now):
        phase = after.name.split()[0]
        for name in ("gunicorn", "celery", "database", "around", "redis", "sandbox"):
            rows.append((phase, f"{LABELS[name]}, ms CPU", before.per_submission(name), after.per_submission(name)))
        rows.append((phase, "graded per second", before.throughput, after.throughput))
        rows.append((phase, "p50 latency, ms", before.p50, after.p50))
        rows.append((phase, "p99 latency, ms", before.p99, after.p99))
    return rows


def comparison_table(rows: Sequence[Row], baseline: str, now: str) -> list[str]:
    """Aligned lines: phase (on its first row), figure, baseline, now, change in per cent."""
    def number(value: float | None) -> str:
        return "n/a" if value is None or value != value else f"{value:.1f}"

    def change(before: float | None, after: float | None) -> str:
        if before is None or after is None or not before or before != before or after != after:
            return ""
        return f"{(after - before) / before * 100:+.0f}%"

    phase_width = max([len("phase")] + [len(row[0]) for row in rows])
    figure_width = max([len("figure")] + [len(row[1]) for row in rows])
    width = max(10, len(baseline), len(now))
    lines = [f"  {'phase':<{phase_width}}  {'figure':<{figure_width}}  {baseline:>{width}}  "
             f"{now:>{width}}  change"]
    previous = None
    for phase, figure, before, after in rows:
        shown = phase if phase != previous else ""
        previous = phase
        lines.append(f"  {shown:<{phase_width}}  {figure:<{figure_width}}  {number(before):>{width}}  "
                     f"{number(after):>{width}}  {change(before, after)}".rstrip())
    return lines


def target_lines(phases: list[Phase], rate: float, postgres: bool) -> list[str]:
    """Issue 14's targets, each with PASS or MISS (or n/a when this run does not measure it)."""
    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    saturation, paced = phases
    lines = []
    around = [phase.per_submission("around") for phase in phases]
    figures = ", ".join(f"{p.name.split()[0]} {_ms(a)}" for p, a in zip(phases, around))
    measured = [a for a in around if a is not None]
    lines.append(f"  CPU around the sandbox <= {CPU_TARGET_MS:g} ms per graded submission (was about "
                 f"{CPU_BEFORE_MS:g}): {figures}: "
                 + (verdict(all(a <= CPU_TARGET_MS for a in measured)) if len(measured) == len(around) else "n/a"))
    lines.append(f"  saturation >= {THROUGHPUT_TARGET:g} graded/s on PostgreSQL: {saturation.throughput:.1f}/s: "
                 + (verdict(saturation.throughput >= THROUGHPUT_TARGET) if postgres else "n/a (this run is SQLite)"))
    latency = (f"p50 <= {P50_TARGET_MS:g} ms: {paced.p50:.0f} ms, p99 <= {P99_TARGET_MS:g} ms: {paced.p99:.0f} ms, "
               f"rate sustained: {paced.throughput:.1f}/s")
    if rate != TARGET_RATE:
        lines.append(f"  at {TARGET_RATE:g}/s offered, {latency}: n/a (this run offered {rate:g}/s)")
    else:
        lines.append(f"  at {TARGET_RATE:g}/s offered: " + "; ".join([
            f"p50 <= {P50_TARGET_MS:g} ms: {paced.p50:.0f} ms {verdict(paced.p50 <= P50_TARGET_MS)}",
            f"p99 <= {P99_TARGET_MS:g} ms: {paced.p99:.0f} ms {verdict(paced.p99 <= P99_TARGET_MS)}",
            f"rate sustained: {paced.throughput:.1f}/s {verdict(paced.throughput >= 0.95 * rate)}"]))
    bad = sum(phase.bad for phase in phases)
    lines.append(f"  0 lost, refused, failed or wrong: {bad}: {verdict(not bad)}")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m grader.bench_e2e", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--submissions", type=int, default=500, help="submissions per phase (default 500)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent HTTP clients (default 20)")
    parser.add_argument("--rate", type=float, default=TARGET_RATE,
                        help=f"submissions per second offered in the paced phase (default {TARGET_RATE:g})")
    parser.add_argument("--port", type=int, default=8123, help="gunicorn's port on 127.0.0.1 (default 8123)")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL URL, e.g. postgres://postgres@127.0.0.1:5432/bench_e2e: that database "
                             "(and its name + _baseline) is dropped and created; default SQLite under var/")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a missing verdict counts as lost")
    baseline = parser.add_mutually_exclusive_group()
    baseline.add_argument("--baseline", metavar="REV", default=DEFAULT_BASELINE,
                          help=f"the revision to compare with, run first in a git worktree (default {DEFAULT_BASELINE}"
                               ", the code before this round's web-tier changes)")
    baseline.add_argument("--no-baseline", action="store_true", help="measure this tree only")
    args = parser.parse_args(argv)

    if not answers("127.0.0.1", 6379):
        raise SystemExit("Redis must answer on 127.0.0.1:6379")

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # Installed explicitly (a shell starts background jobs with SIGINT ignored): each stops the stack and removes
    # the worktree on its way out.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)
    engine = "PostgreSQL" if (args.database_url or "").startswith("postgres") else "SQLite"
    now = Side("now", describe_tree(), ROOT, args.database_url, "bench-e2e")
    print(f"End-to-end benchmark: {args.submissions} submissions per phase, {args.clients} clients, {engine}, "
          f"{os.cpu_count()} CPUs; this tree: {now.label}"
          + ("" if args.no_baseline else f"; baseline: {args.baseline}"), flush=True)
    try:
        if args.no_baseline:
            print(f"now ({now.label}):", flush=True)
            results = {"now": run_side(now, args)}
        else:
            with worktree(args.baseline) as (path, short):
                base = Side("baseline", short, path, side_database_url(args.database_url, "_baseline"),
                            "bench-e2e-baseline")
                baseline_label = base.label
                print(f"baseline ({base.label}, from a worktree):", flush=True)
                results = {"baseline": run_side(base, args)}
            print(f"now ({now.label}):", flush=True)
            results["now"] = run_side(now, args)
    except KeyboardInterrupt:
        raise SystemExit("interrupted: the stack is stopped and the worktree removed") from None

    if "baseline" in results:
        print(f"\nBaseline ({baseline_label}) against now ({now.label}):")
        print("\n".join(comparison_table(comparison_rows(results["baseline"], results["now"]), "baseline", "now")))
        print("  (The sides run one after the other: where the sandbox's code is about the same on both, as from "
              "58d0522,\n  its row mostly shows how far the machine itself drifted in between.)")
    print("\nTargets (issue 14), this tree:")
    print("\n".join(target_lines(results["now"], args.rate, engine == "PostgreSQL")), flush=True)
    bad = {name: sum(phase.bad for phase in phases) for name, phases in results.items()}
    if any(bad.values()):
        progress("submissions lost, refused, failed or wrongly graded: "
                 + ", ".join(f"{name} {count}" for name, count in bad.items()))
        raise SystemExit(1)


if __name__ == "__main__":
    main()
