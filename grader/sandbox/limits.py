"""Isolation layer: resource limits (rlimits) and a memory cgroup per child.

RLIMIT_AS caps the address space, and so gives a clean MemoryError at the line
that asked for too much, but it does not see memory held outside the address
space (tmpfs files, pipe buffers, kernel objects). A memory cgroup per child
counts all of it. For each job the child lowers its own CPU and address-space
limits, soft equal to hard, before seccomp forbids any further change, and the
zygote sets the child's cgroup limit, whose files belong to root.

cgroup v1 (a `memory` hierarchy, as on this machine) and v2 (the unified
hierarchy with the memory controller) are both handled; without either, the
layer is reported inactive and RLIMIT_AS (with seccomp refusing memfd and SysV
shared memory) is what limits memory.
"""
from __future__ import annotations

import errno
import math
import os
import resource
import secrets
from dataclasses import dataclass
from typing import Any

MiB = 1 << 20
CGROUP_ROOT = "/sys/fs/cgroup"

# Set by the child on itself while it is still root, before the job arrives.
CHILD_RLIMITS = {
    "core": 0,
    "nofile": 64,
    "fsize": 16 * MiB,
    "nproc": 64,
}
MAX_MEMORY_MB = 1024  # the largest job budget (jobs.MAX_MEMORY_MB); the pool child's cap until a job arrives
MAX_CPU_SECONDS = 10
# Room beyond the learner's budget for the grader's own reading of the results in the same process.
MEMORY_HEADROOM = 64 * MiB


def set_child_rlimits() -> str:
    """Fixed limits of a graded child (called by the child on itself, before it drops root)."""
    for name, value in CHILD_RLIMITS.items():
        limit = getattr(resource, f"RLIMIT_{name.upper()}")
        resource.setrlimit(limit, (value, value))
    return (f"core 0, nofile {CHILD_RLIMITS['nofile']}, fsize {CHILD_RLIMITS['fsize'] // MiB} MiB, nproc "
            f"{CHILD_RLIMITS['nproc']}; CPU and address space lowered to each job's budget; soft = hard")


def address_space_cap(vm_base: int, memory_mb: int) -> int:
    return vm_base + memory_mb * MiB + MEMORY_HEADROOM


def cpu_cap(used_seconds: float, cpu_seconds: float) -> int:
    """RLIMIT_CPU counts whole seconds of the process's life, its preparation included: round up."""
    return math.ceil(used_seconds + cpu_seconds)


def set_job_rlimits(*, vm_base: int, used_cpu: float, memory_mb: int, cpu_seconds: float) -> None:
    """Lower the calling child's CPU and address-space limits to one job's budget (soft = hard).

    The child does it itself, when the job arrives and before seccomp goes in (after
    which it could not even lower them): lowering needs no privilege, while setting
    another process's limits from outside needs CAP_SYS_RESOURCE, which a container
    may not grant (this machine's does not).
    """
    if not (0 < memory_mb <= MAX_MEMORY_MB and 0 < cpu_seconds <= MAX_CPU_SECONDS):
        raise ValueError(f"job limits out of range: {memory_mb} MB, {cpu_seconds} s")
    as_cap = address_space_cap(vm_base, memory_mb)
    cpu = cpu_cap(used_cpu, cpu_seconds)
    resource.setrlimit(resource.RLIMIT_AS, (as_cap, as_cap))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))


# -- memory cgroups ------------------------------------------------------------------------
class CgroupUnavailable(Exception):
    """No memory cgroup can be made here; the reason is the message."""


@dataclass(frozen=True)
class Flavour:
    """File names of one cgroup version's memory controller."""

    version: int
    limit: str
    usage: str
    swap_limit: str | None

    def events(self, read: Any) -> dict[str, int]:
        """failcnt (the limit was hit) and oom_kill (a process was killed for it)."""
        if self.version == 1:
            oom = _keyed(read("memory.oom_control"))
            return {"failcnt": int(read("memory.failcnt")), "oom_kill": oom.get("oom_kill", 0)}
        events = _keyed(read("memory.events"))
        return {"failcnt": events.get("max", 0), "oom_kill": events.get("oom_kill", 0)}


V1 = Flavour(1, "memory.limit_in_bytes", "memory.usage_in_bytes", "memory.memsw.limit_in_bytes")
V2 = Flavour(2, "memory.max", "memory.current", "memory.swap.max")


def _keyed(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def own_memory_cgroup(proc_cgroup: str, cgroup_root: str = CGROUP_ROOT) -> tuple[str, Flavour]:
    """The directory of the calling process's memory cgroup, from /proc/self/cgroup's text."""
    unified = None
    for line in proc_cgroup.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if "memory" in controllers.split(","):
            directory = os.path.join(cgroup_root, "memory", path.lstrip("/"))
            if os.path.isdir(directory):
                return directory, V1
        if hierarchy == "0" and controllers == "":
            unified = path
    if unified is not None:
        for base in (cgroup_root, os.path.join(cgroup_root, "unified")):
            directory = os.path.join(base, unified.lstrip("/"))
            controllers_file = os.path.join(base, "cgroup.controllers")
            if os.path.isfile(controllers_file) and "memory" in open(controllers_file).read().split():
                return directory, V2
    raise CgroupUnavailable("no memory cgroup controller is mounted here")


class MemoryCgroups:
    """A group of per-child memory cgroups, made by the zygote under its own cgroup.

    Held through a directory descriptor, so it keeps working after the zygote
    has pivoted into its minimal root (where /sys does not exist). The template
    makes a child's cgroup and hands the child a descriptor of its cgroup.procs
    (the child writes "0" into it, joining it, before it drops root); the zygote
    sets the child's limit for each job and reads whether the limit was hit.
    """

    def __init__(self, path: str, flavour: Flavour, dir_fd: int) -> None:
        self.path = path
        self.flavour = flavour
        self.dir_fd = dir_fd

    @classmethod
    def create(cls) -> MemoryCgroups:
        if os.geteuid() != 0:
            raise CgroupUnavailable("not root")
        with open("/proc/self/cgroup") as fh:
            parent, flavour = own_memory_cgroup(fh.read())
        path = os.path.join(parent, f"autograd-grader-{secrets.token_hex(6)}")
        try:
            os.mkdir(path, 0o700)
        except OSError as exc:
            raise CgroupUnavailable(f"cannot make a cgroup under {parent}: {exc.strerror}") from None
        if flavour.version == 2:
            try:
                with open(os.path.join(path, "cgroup.subtree_control"), "w") as fh:
                    fh.write("+memory")
            except OSError as exc:
                os.rmdir(path)
                raise CgroupUnavailable(f"cannot enable the memory controller in {path}: {exc.strerror}") from None
        return cls(path, flavour, os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))

    @property
    def detail(self) -> str:
        return f"cgroup v{self.flavour.version} memory controller, one cgroup per child under {self.path}"

    # file access, relative to the group's directory descriptor
    def _write(self, child: str, name: str, value: str) -> None:
        fd = os.open(f"{child}/{name}", os.O_WRONLY | os.O_CLOEXEC, dir_fd=self.dir_fd)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)

    def _read(self, child: str, name: str) -> str:
        fd = os.open(f"{child}/{name}", os.O_RDONLY | os.O_CLOEXEC, dir_fd=self.dir_fd)
        try:
            return os.read(fd, 4096).decode()
        finally:
            os.close(fd)

    # per child
    def make_child(self, child: str) -> int:
        """Make the child's cgroup, capped at the largest budget; returns a descriptor of its cgroup.procs."""
        os.mkdir(child, 0o700, dir_fd=self.dir_fd)
        self._set_limit(child, MAX_MEMORY_MB * MiB + MEMORY_HEADROOM, raising=True)
        return os.open(f"{child}/cgroup.procs", os.O_WRONLY | os.O_CLOEXEC, dir_fd=self.dir_fd)

    def _set_limit(self, child: str, limit: int, *, raising: bool) -> None:
        # With swap accounting, memory+swap must stay >= memory: raise it first, lower it last.
        order = [self.flavour.swap_limit, self.flavour.limit] if raising else [self.flavour.limit, self.flavour.swap_limit]
        for name in order:
            if name is None:
                continue
            value = str(limit)
            if name == "memory.swap.max":
                value = "0"
            try:
                self._write(child, name, value)
            except FileNotFoundError:
                if name == self.flavour.limit:
                    raise
            except OSError as exc:
                if name == self.flavour.limit or exc.errno not in (errno.EINVAL, errno.EBUSY):
                    raise

    def limit_job(self, child: str, memory_mb: int) -> int:
        """Cap the child at what it uses now plus the job's budget; returns the limit."""
        limit = int(self._read(child, self.flavour.usage)) + memory_mb * MiB + MEMORY_HEADROOM
        self._set_limit(child, limit, raising=False)
        return limit

    def events(self, child: str) -> dict[str, int]:
        return self.flavour.events(lambda name: self._read(child, name))

    def remove_child(self, child: str) -> None:
        try:
            os.rmdir(child, dir_fd=self.dir_fd)
        except OSError:
            pass

    def remove_all(self) -> None:
        """Remove the group (from the host side, once every process in it is gone)."""
        remove_group(self.path)


def remove_group(path: str) -> None:
    """rmdir a zygote's group and its child cgroups; never raises (a cgroup with tasks stays)."""
    try:
        children = [e.path for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for child in children:
        try:
            os.rmdir(child)
        except OSError:
            pass
    try:
        os.rmdir(path)
    except OSError:
        pass
