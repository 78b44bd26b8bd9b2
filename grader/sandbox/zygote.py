"""The zygote: a long-lived process with torch imported that serves jobs, one at a time.

It is started by the client (`client.py`) with a scrubbed environment and never
imports Django, so no secret can reach it. As root it moves into new pid and
mount namespaces (pid 1 of its own pid namespace: its death kills every child),
makes a memory cgroup for its children, warms torch up, pivots into the
minimal root (namespaces.py) and forks the template (template.py), from which
every graded child is forked. Children are prepared ahead of time: a small
pool of them harden and warm up while the zygote waits for work, so a job
only pays for sending its code.

Jobs arrive as frames on a Unix socket (descriptor given on the command line).
For each, the zygote takes a ready child, sets the job's CPU and memory limits
on it from outside, sends it the job over the child's own pipe and collects
its output and result frame. A fault while serving a job costs that job only.
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

from . import child, guard, limits, namespaces, policy, protocol, template
from .limits import CgroupUnavailable, MemoryCgroups

REQUEST_LIMIT = 4 << 20
RESULT_LIMIT = 4 << 20
OUTPUT_KEEP = 32 << 10
OUTPUT_FLOOD = 1 << 20
READY_TIMEOUT = 10.0
TEMPLATE_TIMEOUT = 10.0
CPU_PRESSURE = "/proc/pressure/cpu"
# Past this share of the last 10 s with some task waiting for a CPU, new children skip their warm-up.
BUSY_CPU_PRESSURE = 25.0
UID_BASE = 200_000
UID_RANGE = 1 << 20


@dataclass
class Prepared:
    id: int
    job_w: int
    result_r: int
    out_r: int
    pid: int | None = None
    hello: dict[str, Any] | None = None


def _log(message: str) -> None:
    sys.stderr.write(f"[grader-zygote {os.getpid()}] {message}\n")
    sys.stderr.flush()


def cpu_contended() -> bool:
    """Whether the machine's CPUs are contended right now: PSI's "some avg10" over BUSY_CPU_PRESSURE (without
    PSI, a 1-minute load average at the CPU count). A child's warm-up buys a job a few ms of latency with
    ~10 ms of CPU, and under contention (a deadline rush) that CPU is better spent grading."""
    try:
        with open(CPU_PRESSURE) as pressure:
            some = pressure.readline().split()
        return float(some[1].partition("=")[2]) > BUSY_CPU_PRESSURE
    except (OSError, IndexError, ValueError):
        try:
            return os.getloadavg()[0] >= (os.cpu_count() or 1)
        except OSError:
            return False


class TemplateLink:
    """The zygote's end of the template's socket: fork requests out, fork and exit reports in."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.forked: dict[int, int | str] = {}  # child id -> pid, or the error
        self.exits: dict[int, dict[str, Any]] = {}  # pid -> exit report

    def request(self, spec: dict[str, Any], fds: list[int]) -> None:
        socket.send_fds(self.sock, [json.dumps({"op": "fork", "spec": spec}).encode()], fds)

    def _receive(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return False
        data = self.sock.recv(template.PACKET)
        if not data:
            raise RuntimeError("the template is gone")
        message = json.loads(data)
        if "forked" in message:
            self.forked[message["id"]] = message["forked"] or message.get("error", "fork failed")
        elif "exited" in message:
            self.exits[message["exited"]] = message
        return True

    def drain(self) -> None:
        while self._receive(0):
            pass

    def pid_of(self, child_id: int) -> int:
        deadline = time.monotonic() + TEMPLATE_TIMEOUT
        while child_id not in self.forked:
            if not self._receive(max(0.0, deadline - time.monotonic())):
                raise RuntimeError("the template did not report a fork in time")
        pid = self.forked.pop(child_id)
        if isinstance(pid, str):
            raise RuntimeError(pid)
        return pid

    def exit_of(self, pid: int, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while pid not in self.exits:
            if not self._receive(max(0.0, deadline - time.monotonic())):
                return None
        return self.exits.pop(pid)


class Zygote:
    def __init__(self, channel: int, pool_size: int, link: TemplateLink, cgroups: MemoryCgroups | None,
                 base_spec: dict[str, Any]) -> None:
        self.channel = channel
        self.pool_size = pool_size
        self.link = link
        self.cgroups = cgroups
        self.base_spec = base_spec
        self.pool: list[Prepared] = []
        self.require: list[str] = []
        self.next_id = 0

    # -- children ---------------------------------------------------------------------
    def request_child(self) -> Prepared:
        self.next_id += 1
        uid = UID_BASE + secrets.randbelow(UID_RANGE) if os.geteuid() == 0 else None
        spec = {**self.base_spec, "id": self.next_id, "uid": uid, "gid": uid, "require": self.require,
                "warm_up": not cpu_contended()}
        job_r, job_w = os.pipe2(os.O_CLOEXEC)
        result_r, result_w = os.pipe2(os.O_CLOEXEC)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        try:
            self.link.request(spec, [job_r, result_w, out_w])
        finally:
            for fd in (job_r, result_w, out_w):
                os.close(fd)
        return Prepared(self.next_id, job_w, result_r, out_r)

    def take(self) -> Prepared:
        """The first pool child to be ready (asking for one if the pool is empty)."""
        if not self.pool:
            self.pool.append(self.request_child())
        ready, _, _ = select.select([p.result_r for p in self.pool], [], [], READY_TIMEOUT)
        prepared = next((p for p in self.pool if p.result_r in ready), self.pool[0])
        self.pool.remove(prepared)
        try:
            prepared.pid = self.link.pid_of(prepared.id)
        except RuntimeError as exc:
            prepared.hello = {"ready": False, "error": str(exc)}
            return prepared
        try:
            if not ready:
                raise protocol.FrameError("the child did not get ready in time")
            prepared.hello = protocol.read_frame(prepared.result_r, 1 << 16)
        except protocol.FrameError as exc:
            prepared.hello = {"ready": False, "error": str(exc)}
        return prepared

    def dispose(self, prepared: Prepared) -> None:
        for fd in (prepared.job_w, prepared.result_r, prepared.out_r):
            if fd >= 0:
                os.close(fd)
        if prepared.pid is not None:
            self._kill(prepared.pid)

    def housekeeping(self) -> None:
        """Read the template's reports and top the pool up (the template forks while we serve)."""
        self.link.drain()
        self.link.exits.clear()  # exits of children nobody waits for
        while len(self.pool) < self.pool_size:
            self.pool.append(self.request_child())

    # -- jobs -------------------------------------------------------------------------
    def run(self, request: dict[str, Any], op: str = "run") -> dict[str, Any]:
        started = time.perf_counter()
        prepared = self.take()
        hello = prepared.hello or {}
        if not hello.get("ready"):
            self.dispose(prepared)
            reason = hello.get("error") or hello.get("detail") or "no reason given"
            return {"ok": False, "error": f"child hardening failed: {reason}"}
        job = {"op": op, **{k: request[k] for k in ("setup", "code", "targets", "probes", "trace", "token", "limits")
                                 if k in request}}
        job_limits = request.get("limits", {})
        try:
            if op == "run":
                self._limit(prepared, hello, job_limits)
            protocol.write_frame(prepared.job_w, job)
        except (OSError, ValueError) as exc:
            self.dispose(prepared)
            return {"ok": False, "error": f"could not hand the job to the child: {exc}"}
        os.close(prepared.job_w)
        prepared.job_w = -1
        wall = float(job_limits.get("wall_seconds", 5.0))
        reply = self._collect(prepared, deadline=time.monotonic() + wall)
        reply["layers"] = hello["layers"]
        reply["wall_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return reply

    def _limit(self, prepared: Prepared, hello: dict[str, Any], job_limits: dict[str, Any]) -> None:
        """The job's memory budget on the child's cgroup (the child lowers its own rlimits)."""
        memory_mb = int(job_limits.get("memory_mb", limits.MAX_MEMORY_MB))
        if not 0 < memory_mb <= limits.MAX_MEMORY_MB:
            raise ValueError(f"memory limit out of range: {memory_mb} MB")
        if self.cgroups is not None and hello["layers"].get("memory_cgroup", {}).get("active"):
            self.cgroups.limit_job(template._cgroup_name(prepared.id), memory_mb)

    def _collect(self, prepared: Prepared, deadline: float) -> dict[str, Any]:
        for fd in (prepared.result_r, prepared.out_r):
            os.set_blocking(fd, False)
        frame = protocol.FrameBuffer(RESULT_LIMIT + len(child.RUNNING))
        output = bytearray()
        output_total = 0
        open_fds = {prepared.result_r, prepared.out_r}
        killed_for = None
        poller = select.poll()
        for fd in open_fds:
            poller.register(fd, select.POLLIN)
        while prepared.result_r in open_fds:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                killed_for = "wall"
                break
            for fd, _ in poller.poll(remaining * 1000):
                try:
                    chunk = os.read(fd, 1 << 16)
                except BlockingIOError:
                    continue
                if not chunk:
                    open_fds.discard(fd)
                    poller.unregister(fd)
                elif fd == prepared.out_r:
                    output_total += len(chunk)
                    if len(output) < OUTPUT_KEEP:
                        output += chunk[: OUTPUT_KEEP - len(output)]
                    if output_total > OUTPUT_FLOOD:
                        killed_for = "output"
                elif not frame.feed(chunk):
                    killed_for = "frame"
            if killed_for:
                break
        # The marker the child's own code wrote just before the learner's code started.
        started = bytes(frame.data[: len(child.RUNNING)]) == child.RUNNING
        if started:
            del frame.data[: len(child.RUNNING)]
        exit_code = exit_signal = cpu_seconds = memory = None
        assert prepared.pid is not None
        if frame.complete and not killed_for:
            self._kill(prepared.pid)  # the child is done; it need not be waited for before replying
        else:
            # No usable frame: the exit status tells what happened. A child that closed its
            # result pipe but lingers gets what is left of its wall time.
            report = None
            if not killed_for:
                report = self.link.exit_of(prepared.pid, deadline - time.monotonic())
                killed_for = "wall" if report is None else None
            self._kill(prepared.pid)
            if report is None:
                report = self.link.exit_of(prepared.pid, TEMPLATE_TIMEOUT)
            if report is None:
                raise RuntimeError("the template did not report a killed child's exit")
            status, cpu_seconds, memory = report["status"], report["cpu"], report["memory"]
            if os.WIFSIGNALED(status):
                exit_signal = os.WTERMSIG(status)
            elif os.WIFEXITED(status):
                exit_code = os.WEXITSTATUS(status)
        # Whatever is still in the output pipe was written before the frame.
        try:
            while len(output) < OUTPUT_KEEP and (chunk := os.read(prepared.out_r, 1 << 16)):
                output_total += len(chunk)
                output += chunk[: OUTPUT_KEEP - len(output)]
        except OSError:
            pass
        prepared.pid = None  # killed above, and reaped by the template
        self.dispose(prepared)
        return {
            "ok": True,
            "frame": base64.b64encode(bytes(frame.data)).decode() if frame.data else None,
            "started": started,
            "killed_for": killed_for,
            "exit_code": exit_code,
            "exit_signal": exit_signal,
            "cpu_seconds": cpu_seconds,
            "memory": memory,
            "output": output.decode("utf-8", errors="replace"),
            "output_bytes": output_total,
        }

    @staticmethod
    def _kill(pid: int) -> None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def serve(self) -> None:
        while True:
            try:
                request = protocol.read_frame(self.channel, REQUEST_LIMIT)
            except protocol.FrameError:
                return  # the client went away: pid 1 exiting takes every child with it
            op = request.get("op")
            try:
                if op == "run":
                    reply = self.run(request)
                elif op == "probe":
                    reply = self.run({"limits": {"wall_seconds": 10}}, op="probe")
                elif op == "ping":
                    reply = {"ok": True, "pid": os.getpid(), "pool": len(self.pool)}
                elif op == "stop":
                    return
                else:
                    reply = {"ok": False, "error": f"unknown op {op!r}"}
            except RuntimeError as exc:
                if "template" in str(exc):
                    raise  # no more children can be made: let the client start a new zygote
                reply = {"ok": False, "error": f"the zygote failed this job: {exc}"}
            except Exception as exc:  # noqa: BLE001 - a fault costs its own job, never the zygote
                reply = {"ok": False, "error": f"the zygote failed this job: {exc!r}"}
            try:
                protocol.write_frame(self.channel, reply)
            except OSError:
                return  # the client died while the job ran (its worker was killed): nothing to answer
            try:
                self.housekeeping()
            except RuntimeError:
                raise
            except Exception as exc:  # noqa: BLE001
                _log(f"housekeeping failed: {exc!r}")


def _warm_up() -> str:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = "1"
    import warnings

    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    # One forward and backward, so lazy initialisation happens before any fork.
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    x = torch.tensor([0.5, 2.0], requires_grad=True)
    (torch.sin(x) * x).sum().backward()
    torch.autograd.grad((x ** 2).mean(), x)
    model(torch.randn(5, 3)).pow(2).mean().backward()
    with torch.no_grad():
        x.detach().requires_grad_().clone().zero_()
    x.tolist()
    str(x), repr(model[0].weight), str(torch.arange(3))  # tensor printing imports and caches lazily
    # The optimizers import torch._dynamo on first use, which registers operator libraries: the child refuses
    # that (guard.block_operator_registration), so it must happen here, once, before any fork.
    for optimizer in (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                      torch.optim.Adam(model.parameters(), lr=0.01)):
        optimizer.zero_grad()
        model(torch.randn(5, 3)).pow(2).mean().backward()
        optimizer.step()
    for name in ("math", "random", "itertools", "functools", "collections", "json", "traceback", "socket",
                 "numpy", "torch.nn.functional", "torch.optim"):
        try:
            __import__(name)
        except ImportError:
            pass
    return torch.__version__


def collapse_heap_into_huge_pages() -> int:
    """Back the warmed-up heap with transparent huge pages; returns the kB now huge.

    Forking copies one page-table entry per 4 KiB page, and a child's exit
    releases them again: with torch's ~140 MB heap that was ~4.6 ms per fork and
    ~5 ms per teardown. With the heap in 2 MiB pages it is ~1.5 ms and ~1.7 ms
    (measured here); a child's first write still copies only the 4 KiB it
    touches. Best effort: kernels without MADV_COLLAPSE (before 6.1) or with THP
    off keep 4 KiB pages.
    """
    from . import _linux

    huge = 1 << 21
    with open("/proc/self/maps") as maps:
        regions = [line.split() for line in maps]
    for fields in regions:
        if not fields[1].startswith("rw") or (len(fields) > 5 and fields[5] != "[heap]"):
            continue
        low, high = (int(x, 16) for x in fields[0].split("-"))
        start, end = (low + huge - 1) & ~(huge - 1), high & ~(huge - 1)
        if end - start >= huge:
            try:
                _linux.madvise(start, end - start, _linux.MADV_HUGEPAGE)
                _linux.madvise(start, end - start, _linux.MADV_COLLAPSE)
            except OSError:
                continue
    with open("/proc/self/smaps_rollup") as rollup:
        return next((int(line.split()[1]) for line in rollup if line.startswith("AnonHugePages:")), 0)


def pack_module_names() -> None:
    """Give sys.modules fresh copies of its keys, allocated one after another.

    Every job walks sys.modules (observe.quiet checks that each key is an exact str), and iterating writes a
    reference count into each key. The names were allocated as their modules were imported, spread over the
    heap: in a forked child that walk copied ~1,200 pages (5 ms). Packed together, the ~2,000 names fill ~65
    pages (0.3 ms). The dict stays the same object (the interpreter holds it) and keeps its order.
    """
    items = list(sys.modules.items())
    sys.modules.clear()
    for name, module in items:
        sys.modules[name.encode().decode()] = module  # a new str, next to the one before


def _isolate() -> tuple[dict[str, Any], MemoryCgroups | None, str | None]:
    """Namespaces, cgroup and minimal root as far as this machine allows; returns the child spec base."""
    spec: dict[str, Any] = {
        "pid_namespace": False, "pid_namespace_detail": "not root: shares the worker's pid namespace",
        "minimal_root": False, "root_detail": "not root: the host's filesystem, limited by Landlock",
        "cgroup": False, "cgroup_detail": "not root: no memory cgroup",
        "read_paths": namespaces.read_only_trees() + list(namespaces.SYSTEM_FILES) + list(namespaces.DEVICES),
    }
    if os.geteuid() != 0:
        import tempfile

        return spec, None, tempfile.mkdtemp(prefix="autograd-grader-")
    namespaces.enter_zygote_namespaces()
    spec.update(pid_namespace=True,
                pid_namespace_detail="the zygote is pid 1 of its own pid namespace; the child sees no process")
    cgroups = None
    try:
        cgroups = MemoryCgroups.create()
        spec.update(cgroup=True, cgroup_detail=cgroups.detail)
    except CgroupUnavailable as exc:
        spec["cgroup_detail"] = f"no memory cgroup: {exc}"
    return spec, cgroups, None


def main(argv: list[str]) -> None:
    channel = int(argv[1])
    pool_size = int(argv[2]) if len(argv) > 2 else 2
    sys.dont_write_bytecode = True
    base_spec, cgroups, scratch_root = _isolate()
    torch_version = _warm_up()
    if os.geteuid() == 0:
        root = namespaces.enter_minimal_root()
        base_spec.update(minimal_root=True, root_detail=root.detail, read_paths=root.read_only + root.devices)
    import gc

    # What every child inherits is made now, before the heap goes into huge pages: made in the template, its
    # writes (reference counts of every module name and module) split most of them back into 4 KiB pages, and
    # every fork copies a page-table entry per 4 KiB page.
    pack_module_names()
    inherited = child.inherit(guard.module_names())
    # Objects that exist now are never collected in a child: freezing them keeps
    # the collector from writing to (and so copying) their pages after each fork.
    gc.freeze()
    huge_kb = collapse_heap_into_huge_pages()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    template.start(theirs, cgroups, scratch_root, inherited, close=[channel, ours.fileno()])
    theirs.close()
    zygote = Zygote(channel, pool_size, TemplateLink(ours), cgroups, base_spec)
    # The probe child is asked for on demand (the pool is still empty); the pool is
    # only filled once the probe has said which layers every child must have.
    probe = zygote.run({"limits": {"wall_seconds": 20}}, op="probe")
    probe_frame = None
    if probe.get("ok") and probe.get("frame"):
        try:
            probe_frame = protocol.decode(base64.b64decode(probe["frame"])[protocol.HEADER.size:])
        except protocol.FrameError:
            probe_frame = None
    layers = probe.get("layers", {})
    zygote.require = policy.child_requirements(layers)
    zygote.housekeeping()
    protocol.write_frame(channel, {
        "ready": True, "pid": os.getpid(), "torch": torch_version, "layers": layers, "probe": probe_frame,
        "huge_pages_kb": huge_kb, "cgroup": cgroups.path if cgroups else None,
        "error": None if probe.get("ok") else probe.get("error"),
    })
    _log(f"ready: torch {torch_version}, pool of {pool_size}, {huge_kb // 1024} MiB of the heap in huge pages")
    zygote.serve()


__all__ = ["main"]
