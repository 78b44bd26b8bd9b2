"""The fault suite: real worker and beat processes, a private Redis per test, the real test database.

Every verdict stored is also written, by a trigger of the test database, to a log of its own: a submission that
was graded twice (a verdict stored, then the submission sent back and graded again) shows there twice, whatever
the application code believes it did.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import InterfaceError, OperationalError, connection, connections
from django.utils import timezone

from grader.models import Submission
from grader.services import submission_create
from quiz.models import Item
from tests.worker import free_port, private_redis  # noqa: F401  (a fixture)

FAST = "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\ny.backward()\n"
SLOW = "import time\ntime.sleep(1.5)\n" + FAST  # long enough to be killed mid-grading
PENDING = ("queued", "running")

_POSTGRES_LOG = [
    "CREATE TABLE fault_verdicts (submission_id integer NOT NULL, status varchar(20) NOT NULL)",
    """CREATE FUNCTION fault_log_verdict() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN INSERT INTO fault_verdicts VALUES (NEW.id, NEW.status); RETURN NEW; END $$""",
    """CREATE TRIGGER fault_log_verdict AFTER UPDATE OF status ON grader_submission FOR EACH ROW
       WHEN (OLD.status IN ('queued', 'running') AND NEW.status NOT IN ('queued', 'running'))
       EXECUTE FUNCTION fault_log_verdict()""",
]
_POSTGRES_DROP = ["DROP TRIGGER IF EXISTS fault_log_verdict ON grader_submission",
                  "DROP FUNCTION IF EXISTS fault_log_verdict()", "DROP TABLE IF EXISTS fault_verdicts"]
_SQLITE_LOG = [
    "CREATE TABLE fault_verdicts (submission_id integer NOT NULL, status varchar(20) NOT NULL)",
    """CREATE TRIGGER fault_log_verdict AFTER UPDATE OF status ON grader_submission FOR EACH ROW
       WHEN OLD.status IN ('queued', 'running') AND NEW.status NOT IN ('queued', 'running')
       BEGIN INSERT INTO fault_verdicts VALUES (NEW.id, NEW.status); END""",
]
_SQLITE_DROP = ["DROP TRIGGER IF EXISTS fault_log_verdict", "DROP TABLE IF EXISTS fault_verdicts"]


class VerdictLog:
    def counts(self) -> Counter[int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT submission_id FROM fault_verdicts")
            return Counter(row[0] for row in cursor.fetchall())


def install_verdict_log() -> VerdictLog:
    """The trigger and its table, in the database the default connection points at now."""
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        for statement in (_POSTGRES_DROP + _POSTGRES_LOG) if postgres else (_SQLITE_DROP + _SQLITE_LOG):
            cursor.execute(statement)
    return VerdictLog()


def drop_verdict_log() -> None:
    with connection.cursor() as cursor:
        for statement in _POSTGRES_DROP if connection.vendor == "postgresql" else _SQLITE_DROP:
            cursor.execute(statement)


@pytest.fixture
def verdict_log(transactional_db: None) -> Iterator[VerdictLog]:
    yield install_verdict_log()
    drop_verdict_log()


@pytest.fixture
def item(seed_quiz: None) -> Item:
    return Item.objects.get(slug="grad-of-polynomial")


@dataclass
class Load:
    """Learners submitting at a steady rate from a thread, as the web tier would store them; every eighth is slow.

    A submission that could not be stored (an exception, the service-level 5xx) is kept in `errors`.
    """

    user: object
    item: Item
    per_second: float = 3.0
    ids: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Load:
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        n = 0
        try:
            while not self._stop.wait(1 / self.per_second):
                n += 1
                code = (SLOW if n % 8 == 0 else FAST) + f"# submission {n}\n"  # a repeat would be refused
                try:
                    self.ids.append(submission_create(user=self.user, item=self.item, code=code).pk)
                except Exception as exc:  # noqa: BLE001 - counted and asserted on
                    self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            connections.close_all()

    def stop(self) -> list[int]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return list(self.ids)


def wait_for_verdicts(ids: list[int], timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if not Submission.objects.filter(pk__in=ids, status__in=PENDING).exists():
                return
        except (OperationalError, InterfaceError):  # the database restarting: this connection went with it
            connection.close()
        time.sleep(0.1)
    left = list(Submission.objects.filter(pk__in=ids, status__in=PENDING).values_list("pk", "status", "queued_at"))
    raise AssertionError(f"{len(left)} submission(s) still pending after {timeout} s: {left[:10]}")


def pending_at(moment: datetime, ids: list[int]) -> list[int]:
    """The submissions stored by then whose verdict came after it: what the fault held up."""
    return list(Submission.objects.filter(pk__in=ids, created_at__lte=moment).exclude(
        finished_at__lt=moment).values_list("pk", flat=True))


def recovery_seconds(moment: datetime, ids: list[int]) -> float:
    """From `moment` to the last verdict of the given submissions."""
    finished = Submission.objects.filter(pk__in=ids).values_list("finished_at", flat=True)
    last = max((at for at in finished if at is not None), default=moment)
    return max((last - moment).total_seconds(), 0.0)


def assert_nothing_lost_or_graded_twice(ids: list[int], log: VerdictLog) -> None:
    rows = dict(Submission.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert len(rows) == len(ids) == len(set(ids)), "every stored submission is there, once"
    # Every answer here is correct: anything but passed is a wrong verdict. (This suite found the sandbox's park race,
    # "Your code was still running something when it ended" for about one correct answer in 100 on a busy machine;
    # grader/sandbox/observe.py `finish` now gives the learner's thread time to reach its parking spot.)
    others = list(Submission.objects.filter(pk__in=ids).exclude(status="passed").values_list("pk", "status", "error"))
    assert not others, f"{Counter(rows.values())}; not passed: {others[:3]}"
    counts = log.counts()
    twice = {pk: n for pk, n in counts.items() if n > 1}
    assert not twice, f"graded more than once: {twice}"
    assert set(counts) >= set(ids), f"verdicts missing from the log: {sorted(set(ids) - set(counts))[:10]}"


def now() -> datetime:
    return timezone.now()


PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (initdb in a temporary directory, run as the postgres user, since
    PostgreSQL refuses root), on a free port: restarted by the test, never the shared server on 5432."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="test-postgres-"))
        shutil.chown(self.dir, "postgres")
        self.data = self.dir / "data"

    def _pg(self, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self._pg(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                 "--no-sync")
        self.start()

    def start(self) -> None:
        self._pg(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-o",
                 f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self, mode: str = "fast") -> None:
        self._pg(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def copy_of(self, settings_dict: dict, name: str = "grader") -> None:
        """A database here holding what the given one holds (schema, the quizzes, the learners)."""
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-qc",
                        f"CREATE DATABASE {name}"], check=True, capture_output=True)
        dump = subprocess.run([str(PG_BIN / "pg_dump"), "-h", settings_dict.get("HOST") or "127.0.0.1",
                               "-p", str(settings_dict.get("PORT") or 5432), "-U", settings_dict.get("USER") or "postgres",
                               "--no-owner", settings_dict["NAME"]],
                              check=True, capture_output=True, env={**os.environ,
                                                                    "PGPASSWORD": settings_dict.get("PASSWORD") or ""})
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-q", "-v",
                        "ON_ERROR_STOP=1", name], input=dump.stdout, check=True, capture_output=True)

    def close(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # not running
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_postgres(transactional_db: None, seed_quiz: None, learner: User) -> Iterator[PrivatePostgres]:
    """The test's default database connection (and the workers it starts) moved to a private cluster holding a
    copy of the test database, seed quiz and learner included; moved back afterwards."""
    if (connection.vendor != "postgresql" or not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None
            or os.geteuid() != 0):
        pytest.skip("needs PostgreSQL 15's server binaries, and root to run them as the postgres user")
    server = PrivatePostgres()
    server.init()
    shared = dict(connection.settings_dict)
    try:
        server.copy_of(shared)
        connection.close()
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(server.port), NAME="grader", USER="postgres",
                                        PASSWORD="")
        yield server
    finally:
        connections.close_all()
        connection.settings_dict.update({k: shared[k] for k in ("HOST", "PORT", "NAME", "USER", "PASSWORD")})
        server.close()
