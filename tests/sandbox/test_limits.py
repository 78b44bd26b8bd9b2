"""The memory cgroup layer against the real kernel, and finding the cgroup from /proc/self/cgroup."""
from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.sandbox.limits import MEMORY_HEADROOM, V1, V2, CgroupUnavailable, MemoryCgroups, own_memory_cgroup

MiB = 1 << 20


def test_the_v1_memory_hierarchy_is_found(tmp_path: Path) -> None:
    (tmp_path / "memory" / "workers" / "w1").mkdir(parents=True)
    text = "9:name=systemd:/\n4:memory:/workers/w1\n0::/\n"
    assert own_memory_cgroup(text, str(tmp_path)) == (str(tmp_path / "memory" / "workers" / "w1"), V1)


def test_the_unified_hierarchy_is_used_when_it_has_the_memory_controller(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    (tmp_path / "worker.scope").mkdir()
    assert own_memory_cgroup("0::/worker.scope\n", str(tmp_path)) == (str(tmp_path / "worker.scope"), V2)


def test_no_memory_controller_is_a_clear_refusal(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("hugetlb\n")
    with pytest.raises(CgroupUnavailable, match="no memory cgroup controller"):
        own_memory_cgroup("1:cpu:/\n0::/\n", str(tmp_path))


@pytest.fixture
def cgroups() -> Iterator[MemoryCgroups]:
    try:
        group = MemoryCgroups.create()
    except CgroupUnavailable as exc:
        pytest.fail(f"this machine has a memory cgroup hierarchy the sandbox uses; it could not be made: {exc}")
    yield group
    group.remove_all()
    assert not os.path.exists(group.path), "the group was not removed"


def test_a_child_over_its_budget_is_killed_and_the_event_is_counted(cgroups: MemoryCgroups) -> None:
    procs = cgroups.make_child("c1")
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(procs, b"0")  # as a graded child does: join, then wait for the job's limit
            os.write(ready_w, b"x")
            os.read(go_r, 1)
            hoard = bytearray(200 * MiB)  # touched page by page: every page is charged to the cgroup
            for i in range(0, len(hoard), 4096):
                hoard[i] = 1
        finally:
            os._exit(0)
    os.close(procs)
    assert os.read(ready_r, 1) == b"x"
    limit = cgroups.limit_job("c1", 32)
    assert 32 * MiB + MEMORY_HEADROOM <= limit < 200 * MiB
    os.write(go_w, b"g")
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
    events = cgroups.events("c1")
    assert events["oom_kill"] >= 1, events
    cgroups.remove_child("c1")
    assert not os.path.exists(os.path.join(cgroups.path, "c1"))


def test_a_child_within_its_budget_is_left_alone(cgroups: MemoryCgroups) -> None:
    procs = cgroups.make_child("c2")
    pid = os.fork()
    if pid == 0:
        try:
            os.write(procs, b"0")
            hoard = bytearray(8 * MiB)
            for i in range(0, len(hoard), 4096):
                hoard[i] = 1
        finally:
            os._exit(0)
    os.close(procs)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert cgroups.events("c2")["oom_kill"] == 0
