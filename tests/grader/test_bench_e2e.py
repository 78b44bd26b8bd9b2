"""The end-to-end benchmark's own parts: reading CPU from /proc, adding it up by component, and the report.
(The benchmark itself is `make bench-e2e`; nothing here starts a stack or asserts a timing.)"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from grader import bench_e2e
from grader.bench_cpu import (
    MS_PER_TICK, ProcStat, Snapshot, Usage, parse_stat, process_table, read_cmdline, read_cwd, read_stat, snapshot,
    tree, usage,
)
from grader.bench_e2e import (
    Phase, RootedStack, comparison_rows, comparison_table, make_jobs, phase_report, target_lines,
)

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")


def stat(pid: int, ppid: int, cpu: int, reaped: int = 0, started: int = 100) -> ProcStat:
    return ProcStat(pid=pid, ppid=ppid, started=started, cpu=cpu, reaped=reaped)


def burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_parse_stat_counts_fields_after_a_name_with_spaces_and_parentheses() -> None:
    # pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
    # priority nice threads itrealvalue starttime ...
    line = "4242 (a (b) c) S 17 4242 4242 0 -1 4194304 10 0 0 0 30 12 5 2 20 0 3 0 98765 1000 20 " + "0 " * 30

    parsed = parse_stat(line)

    assert parsed == ProcStat(pid=4242, ppid=17, started=98765, cpu=42, reaped=7)


def test_read_stat_of_this_process_sees_its_cpu_grow() -> None:
    before = read_stat(os.getpid())
    burn(0.1)
    after = read_stat(os.getpid())

    assert before is not None and after is not None
    assert after.key == before.key and after.ppid == os.getppid()
    assert after.cpu > before.cpu


def test_reads_of_a_process_that_is_gone_say_so() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()

    assert read_stat(child.pid) is None
    assert read_cmdline(child.pid) == ""
    assert read_cwd(child.pid) is None


def test_read_cmdline_and_cwd_of_a_running_process(tmp_path: Path) -> None:
    code = "import sys; print('up', flush=True); sys.stdin.read()"
    child = subprocess.Popen([sys.executable, "-c", code, "an argument"], cwd=tmp_path,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        # Read /proc only once the child says it runs: between fork and exec its command line is not yet its own
        # (on a busy machine the test read an empty one).
        assert child.stdout is not None and child.stdout.readline() == b"up\n"
        assert read_cmdline(child.pid) == f"{sys.executable} -c {code} an argument"
        assert read_cwd(child.pid) == str(tmp_path)
    finally:
        child.communicate(b"")


def test_tree_finds_descendants_and_leaves_pruned_subtrees_out() -> None:
    table = {s.pid: s for s in [stat(1, 0, 0), stat(10, 1, 0), stat(11, 10, 0), stat(12, 10, 0), stat(13, 12, 0),
                                stat(20, 1, 0)]}

    assert tree(table, 10) == {10, 11, 12, 13}
    assert tree(table, 10, prune=lambda pid: pid == 12) == {10, 11}
    assert tree(table, 99) == set()


def test_usage_counts_a_child_reaped_inside_the_component_once() -> None:
    # The parent used 10 ticks; its child used 20 in the phase (30 before it), ended and was reaped (50 in all).
    before = Snapshot({(1, 100): stat(1, 0, cpu=100), (2, 100): stat(2, 1, cpu=30)})
    after = Snapshot({(1, 100): stat(1, 0, cpu=110, reaped=50)})

    spent = usage(before, after)

    assert spent == Usage(ms=30 * MS_PER_TICK, appeared=0, gone=1)


def test_usage_counts_a_new_process_whole_and_loses_one_reaped_outside() -> None:
    # Process 3 started in the phase (8 ticks); 4, a backend, disconnected, was never sampled, and its parent is
    # not a member: what it used in the phase is lost.
    before = Snapshot({(1, 100): stat(1, 0, cpu=100), (4, 100): stat(4, 99, cpu=40)})
    after = Snapshot({(1, 100): stat(1, 0, cpu=105), (3, 200): stat(3, 1, cpu=8, started=200)})

    spent = usage(before, after)

    assert spent == Usage(ms=13 * MS_PER_TICK, appeared=1, gone=1)
    assert spent.note() == "1 appeared, 1 gone"


def test_usage_counts_a_disconnected_backend_up_to_its_last_sample() -> None:
    # Backend 4 (parent: the postmaster, not a member) used 15 ticks by its last sample, then disconnected;
    # backend 5 connected and disconnected between the snapshots, sampled once at 6 ticks.
    before = Snapshot({(4, 100): stat(4, 99, cpu=40)})
    after = Snapshot({})
    seen = {(4, 100): stat(4, 99, cpu=55), (5, 300): stat(5, 99, cpu=6, started=300)}

    spent = usage(before, after, seen)

    assert spent == Usage(ms=21 * MS_PER_TICK, appeared=1, gone=2)


def test_usage_of_a_real_tree_includes_a_child_that_ended() -> None:
    table = process_table()
    before = snapshot(table, tree(table, os.getpid()))
    subprocess.run([sys.executable, "-c", f"import time\nend = time.process_time() + 0.2\n"
                    "while time.process_time() < end: pass"], check=True)
    table = process_table()
    after = snapshot(table, tree(table, os.getpid()))

    assert usage(before, after).ms >= 150  # the child's 200 ms, through this process's reaped children


def phase(name: str, graded: int = 100, elapsed: float = 2.0, p50: float = 20.0, p99: float = 40.0,
          cpu: dict[str, float | None] | None = None, **bad: int) -> Phase:
    spent: dict[str, float | None] = {"gunicorn": 500.0, "celery": 600.0, "database": 100.0, "redis": 50.0,
                                      "sandbox": 3000.0}
    spent.update(cpu or {})
    return Phase(name=name, graded=graded, sent=graded, elapsed=elapsed, p50=p50, p99=p99,
                 lost=bad.get("lost", 0), errors=bad.get("errors", 0), wrong=bad.get("wrong", 0),
                 verdicts={"passed": graded}, cpu={k: None if v is None else Usage(v) for k, v in spent.items()})


def test_per_submission_adds_up_around_the_sandbox() -> None:
    measured = phase("saturation (20 clients)")
    unmeasured = phase("saturation (20 clients)", cpu={"database": None})

    assert measured.per_submission("gunicorn") == 5.0
    assert measured.per_submission("around") == 12.0
    assert unmeasured.per_submission("around") is None


def test_comparison_table_aligns_columns_and_shows_the_change() -> None:
    baseline = [phase("saturation (20 clients)", cpu={"gunicorn": 1000.0}), phase("paced (20 clients)")]
    now = [phase("saturation (20 clients)"), phase("paced (20 clients)", cpu={"database": None})]

    lines = comparison_table(comparison_rows(baseline, now), "baseline", "now")

    assert lines[0].split() == ["phase", "figure", "baseline", "now", "change"]
    gunicorn = next(line for line in lines if "gunicorn" in line)
    assert gunicorn.split() == ["saturation", "gunicorn,", "ms", "CPU", "10.0", "5.0", "-50%"]
    assert sum(line.lstrip().startswith("saturation") for line in lines) == 1
    paced_database = [line for line in lines if "database" in line][1]
    assert paced_database.split()[-2:] == ["1.0", "n/a"]
    for column in ("baseline", "now"):  # right-aligned under their headings
        end = lines[0].index(f" {column} ") + len(column) + 1
        assert all(line[end - 1] != " " and line[end:end + 1] in ("", " ") for line in lines[1:])


def test_targets_say_pass_miss_or_not_applicable() -> None:
    good = [phase("saturation (20 clients)", graded=500, elapsed=5.0), phase("paced (20 clients)", graded=500,
                                                                            elapsed=12.6)]
    slow = [phase("saturation (20 clients)", graded=500, elapsed=10.0, cpu={"celery": 6000.0}),
            phase("paced (20 clients)", graded=500, elapsed=12.6, p99=300.0, lost=1)]

    passed = target_lines(good, 40.0, postgres=True)
    missed = target_lines(slow, 40.0, postgres=True)
    other = target_lines(good, 10.0, postgres=False)

    assert all(line.endswith("PASS") or "PASS" in line for line in passed) and not any("MISS" in l for l in passed)
    assert [("MISS" in line) for line in missed] == [True, True, True, True]
    assert "p50 <= 60 ms: 20 ms PASS" in missed[2] and "p99 <= 250 ms: 300 ms MISS" in missed[2]
    assert other[1].endswith("n/a (this run is SQLite)") and other[2].endswith("n/a (this run offered 10/s)")


def test_make_jobs_alternates_solutions_and_starters_and_never_repeats_an_answer() -> None:
    class Spec:
        def __init__(self, slug: str) -> None:
            self.slug, self.solution, self.starter = slug, f"{slug} = 1", f"{slug} = None"

    jobs = make_jobs([Spec("a"), Spec("b")], 8, "saturation") + make_jobs([Spec("a"), Spec("b")], 8, "paced")

    assert [(slug, must_pass) for slug, _, must_pass in jobs[:4]] == [("a", True), ("a", False), ("b", True),
                                                                       ("b", False)]
    assert len({code for _, code, _ in jobs}) == len(jobs)
    assert all("_touched = 1" in code for _, code, must_pass in jobs if not must_pass)


def test_rooted_stack_runs_in_its_root_with_this_interpreter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    started: dict[str, Any] = {}

    def popen(argv: list[str], **kwargs: Any) -> Any:
        started.update(argv=argv, **kwargs)
        return None

    monkeypatch.setattr(bench_e2e.subprocess, "Popen", popen)
    conf = str(bench_e2e.ROOT / "config" / "gunicorn.conf.py")

    RootedStack(tmp_path)._spawn([sys.executable, "-m", "gunicorn", "-c", conf], None, True)

    assert started["argv"] == [sys.executable, "-m", "gunicorn", "-c", str(tmp_path / "config" / "gunicorn.conf.py")]
    assert started["cwd"] == tmp_path


def test_phase_report_adds_up_the_components_and_notes_processes_that_came_and_went() -> None:
    measured = phase("paced (20 clients offering 40/s)")
    measured.cpu["database"] = Usage(100.0, appeared=2, gone=1)
    measured.cpu["sandbox"] = Usage(3000.0, appeared=50, gone=50)

    report = phase_report(measured, engine="PostgreSQL")

    assert "gunicorn 5.0 ms + Celery 6.0 ms + PostgreSQL 1.0 ms = 12.0 ms around the sandbox" in report
    assert "was about 24: PASS" in report
    assert "database 2 appeared, 1 gone" in report and "sandbox (info) 50" not in report
