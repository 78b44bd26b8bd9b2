"""CPU time of processes, by component, read from /proc (Linux): the meter of the end-to-end benchmark.

A component is a set of processes: a process tree (gunicorn's master and its workers), a tree with subtrees left
out (the Celery worker without the sandbox zygotes its pool processes start), or a list of pids (the PostgreSQL
backends serving one database). `snapshot()` reads each of its processes' clocks at one moment; `usage()` turns
two snapshots into the CPU the component used in between. No Django here: grader.bench_e2e finds the processes.

/proc/PID/stat counts every thread of a process (live or ended), and what it has waited for of its children
(cutime, cstime). So a child that starts and ends between two snapshots (a sandbox child that ran one job) is
counted through the parent that reaped it. A process reaped by a parent outside the component (a PostgreSQL
backend that disconnected: the postmaster reaps it, and the postmaster serves every database on the server) is
counted up to the latest of its readings sampled in between; `Usage.gone` says how many ended.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
MS_PER_TICK = 1000.0 / TICKS_PER_SECOND


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/PID/stat the meter needs."""

    pid: int
    ppid: int
    started: int  # clock ticks after boot: (pid, started) names one process even if its pid is reused later
    cpu: int  # utime + stime of all its threads, in clock ticks
    reaped: int  # cutime + cstime: the CPU of the children it has waited for (theirs included), in clock ticks

    @property
    def key(self) -> tuple[int, int]:
        return self.pid, self.started


def parse_stat(text: str) -> ProcStat:
    """One /proc/PID/stat line (proc(5)). Field 2, the command name, is in parentheses and may itself hold spaces
    and parentheses, so the fields are counted from the last ')'."""
    fields = text[text.rindex(")") + 2:].split()  # fields[0] is field 3 (state): field n is fields[n - 3]
    return ProcStat(pid=int(text[:text.index(" ")]), ppid=int(fields[1]), started=int(fields[19]),
                    cpu=int(fields[11]) + int(fields[12]), reaped=int(fields[13]) + int(fields[14]))


def read_stat(pid: int, proc: Path = PROC) -> ProcStat | None:
    """The process's clocks, or None if it is gone."""
    try:
        return parse_stat((proc / str(pid) / "stat").read_text())
    except (FileNotFoundError, ProcessLookupError):
        return None


def read_cmdline(pid: int, proc: Path = PROC) -> str:
    """The command line, arguments joined by spaces ('' for a process that is gone or a kernel thread)."""
    try:
        return (proc / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def read_cwd(pid: int, proc: Path = PROC) -> str | None:
    """The process's working directory (None if it is gone or not ours to read)."""
    try:
        return os.readlink(proc / str(pid) / "cwd")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def process_table(proc: Path = PROC) -> dict[int, ProcStat]:
    """Every process on the machine, by pid."""
    table = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            stat = read_stat(int(entry.name), proc)
            if stat is not None:
                table[stat.pid] = stat
    return table


def tree(table: dict[int, ProcStat], root: int, prune: Callable[[int], bool] = lambda pid: False) -> set[int]:
    """root and its descendants, without any process for which prune() is true and its own descendants."""
    children: dict[int, list[int]] = {}
    for stat in table.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found: set[int] = set()
    todo = [root] if root in table else []
    while todo:
        pid = todo.pop()
        if pid in found or prune(pid):
            continue
        found.add(pid)
        todo.extend(children.get(pid, ()))
    return found


@dataclass(frozen=True)
class Snapshot:
    """A component's processes and their clocks at one moment."""

    processes: dict[tuple[int, int], ProcStat]


def snapshot(table: dict[int, ProcStat], pids: Iterable[int]) -> Snapshot:
    return Snapshot({table[pid].key: table[pid] for pid in pids if pid in table})


@dataclass(frozen=True)
class Usage:
    """The CPU a component used between two snapshots, and how many of its processes started or ended meanwhile."""

    ms: float
    appeared: int = 0
    gone: int = 0

    def note(self) -> str:
        """'' or e.g. '2 processes appeared, 1 gone', for the report."""
        parts = [f"{self.appeared} appeared" if self.appeared else "", f"{self.gone} gone" if self.gone else ""]
        return ", ".join(p for p in parts if p)


def usage(before: Snapshot, after: Snapshot, seen: Mapping[tuple[int, int], ProcStat] | None = None) -> Usage:
    """CPU used between the snapshots: each process's clocks (its own and its reaped children's) since `before`,
    all of them for a process that started in between. A process that ended in between and was reaped by a member
    of the component is counted through that parent's `reaped`, which holds its whole life: the part before
    `before` is taken off. One reaped by an outsider (a PostgreSQL backend that disconnected) is counted up to its
    latest reading in `seen`, the component's processes sampled in between, if any; its CPU after that is lost.
    A zygote that died and was reaped by its Celery pool process would be counted in Celery: `gone` shows that
    it happened."""
    def total(stat: ProcStat | None) -> int:
        return 0 if stat is None else stat.cpu + stat.reaped

    seen = seen or {}
    ticks = 0
    for key, now in after.processes.items():
        ticks += total(now) - total(before.processes.get(key))
    members_after = {pid for pid, _ in after.processes}
    gone = (before.processes.keys() | seen.keys()) - after.processes.keys()
    for key in gone:
        first, last = before.processes.get(key), seen.get(key)
        latest = last or first
        assert latest is not None
        if latest.ppid in members_after:
            ticks -= total(first)
        else:
            ticks += max(0, total(last or first) - total(first))
    appeared = len((after.processes.keys() | seen.keys()) - before.processes.keys())
    return Usage(ms=ticks * MS_PER_TICK, appeared=appeared, gone=len(gone))
