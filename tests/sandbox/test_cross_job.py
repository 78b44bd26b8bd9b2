"""Several learners' jobs through one zygote, as a worker runs them: no job sees another's.

Children are forked from the template, which never receives job data, and
each job reaches its child over the child's own pipe. Checked two ways: from
inside (a later job walks its frames, asks gc, and reads its heap through
numpy), and from outside (this test reads the memory of the template and of
the pool children waiting for the next job, through /proc/PID/mem).
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from grader.sandbox import Check, Job, Limits, Sandbox, grade_code, observe_reference

from .scans import scanner_code, secret, victim_code

LIMITS = Limits(cpu_seconds=2, memory_mb=256)
CHECKS = [Check("x.grad")]


def children_of(pid: int) -> list[int]:
    """Live children (a killed child the template has not reaped yet is not one)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces and parentheses
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if int(ppid) == pid and state not in ("Z", "X"):
                found.append(int(entry.name))
    return found


def anonymous_memory_holds(pid: int, needle: bytes) -> bool:
    """Whether the needle is anywhere in the process's writable anonymous memory (heap, arenas, stacks)."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            fields = line.split()
            path = fields[5] if len(fields) > 5 else ""
            if not fields[1].startswith("rw") or (path and not path.startswith("[")) or path in ("[vvar]", "[vsyscall]"):
                continue
            low, high = (int(x, 16) for x in fields[0].split("-"))
            position = low
            previous = b""
            while position < high:
                mem.seek(position)
                try:
                    chunk = mem.read(min(8 << 20, high - position))
                except OSError:
                    break
                if needle in previous + chunk:
                    return True
                previous = chunk[-len(needle):]
                position += len(chunk)
    return False


def processes(sandbox: Sandbox) -> tuple[int, int, list[int]]:
    """(zygote server, template, pool children waiting for a job), as host pids."""
    assert sandbox.zygote_pid is not None
    (server,) = children_of(sandbox.zygote_pid)
    (template,) = children_of(server)
    deadline = time.monotonic() + 10
    # The last job's child may still be dying: wait until exactly the pool is left.
    while len(pool := children_of(template)) != sandbox.pool_size and time.monotonic() < deadline:
        time.sleep(0.05)
    return server, template, pool


@pytest.fixture(scope="module")
def reference(sandbox: Sandbox) -> list[dict]:
    first, second = secret()
    return observe_reference(sandbox, solution=victim_code(first, second), setup="", targets=["x.grad"],
                             limits=LIMITS)


def test_a_later_job_finds_nothing_of_an_earlier_one_from_inside(sandbox: Sandbox, reference: list[dict]) -> None:
    first, second = secret()
    victim = grade_code(sandbox, code=victim_code(first, second), setup="", checks=CHECKS, reference=reference,
                        limits=LIMITS, reveal_expected=True)
    assert victim.status == "passed" and first + second in victim.stdout
    for _ in range(3):  # every later job, not just the next one
        outcome = sandbox.run(Job(code=scanner_code(first, second), targets=(), limits=LIMITS))
        out = outcome.output
        assert re.search(r"^frames: clean \d+$", out, re.M), out
        assert "gc: refused: the grader does not allow walking the garbage collector's objects" in out, out
        pages = re.search(r"^heap: clean (\d+)$", out, re.M)
        assert pages and int(pages[1]) > 100, out
        assert "FOUND" not in out and first + second not in out


def test_the_template_and_waiting_children_never_hold_a_job(sandbox: Sandbox, reference: list[dict]) -> None:
    first, second = secret()
    needle = (first + second).encode()
    victim = grade_code(sandbox, code=victim_code(first, second), setup="", checks=CHECKS, reference=reference,
                        limits=LIMITS, reveal_expected=True)
    assert victim.status == "passed"
    sandbox.ping()  # the pool is topped up after each request
    server, template, pool = processes(sandbox)
    assert len(pool) == sandbox.pool_size
    # The scan can find it: the server, which read the job, still holds the code in its heap.
    assert anonymous_memory_holds(server, needle), "the scan cannot find the job where it must be"
    assert not anonymous_memory_holds(template, needle), "the template received job data"
    for child in pool:
        assert not anonymous_memory_holds(child, needle), f"waiting child {child} holds an earlier job's code"


def test_the_template_stays_the_same_process_across_jobs(sandbox: Sandbox, reference: list[dict]) -> None:
    _, template, _ = processes(sandbox)
    for _ in range(3):
        first, second = secret()
        grade_code(sandbox, code=victim_code(first, second), setup="", checks=CHECKS, reference=reference,
                   limits=LIMITS, reveal_expected=True)
    assert processes(sandbox)[1] == template
    assert os.path.exists(f"/proc/{template}")
