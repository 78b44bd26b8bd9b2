"""The zygote: a long-lived process with torch imported, forking one hardened
child per job.

It is started by the client (`client.py`) with a scrubbed environment and never
imports Django, so a forked child inherits no secret. As root it first moves
into new pid and mount namespaces: it becomes pid 1 of its own pid namespace
(its death kills every child), mounts a private /proc showing only its
children, a size-capped tmpfs on /tmp for scratch folders, and, when the
interpreter lives under a directory an unprivileged uid cannot enter (here
/root, mode 700), a view of that directory exposing only the interpreter.

Jobs arrive as frames on a Unix socket (descriptor given on the command line)
and are served one at a time. A small pool of children is forked and hardened
ahead of time, so a job only pays for sending its code.
"""
from __future__ import annotations

import base64
import os
import secrets
import select
import shutil
import signal
import site
import stat
import sys
import sysconfig
import time
from dataclasses import dataclass
from typing import Any

from . import _linux, child, protocol

REQUEST_LIMIT = 4 << 20
RESULT_LIMIT = 4 << 20
OUTPUT_KEEP = 32 << 10
OUTPUT_FLOOD = 1 << 20
READY_TIMEOUT = 10.0
SCRATCH_ROOT_PRIVATE = "/tmp"
UID_BASE = 200_000
UID_RANGE = 1 << 20

CHILD_LIMITS = {
    "nofile": 64,
    "fsize": 16 << 20,
    "nproc": 64,
    "max_cpu_seconds": 10,
    "max_memory_mb": 1024,
    "memory_headroom_mb": 64,
}
SYSTEM_READ_PATHS = [
    "/usr/lib", "/lib", "/lib64", "/usr/lib64", "/usr/local/lib", "/usr/share/zoneinfo",
    "/etc/ld.so.cache", "/etc/localtime", "/dev/urandom", "/dev/random", "/dev/zero",
    "/sys/devices/system/cpu",
]
WRITE_PATHS = ["/dev/null"]


@dataclass
class Prepared:
    pid: int
    job_w: int
    result_r: int
    out_r: int
    scratch: str
    reaped: bool = False


def _log(message: str) -> None:
    sys.stderr.write(f"[grader-zygote {os.getpid()}] {message}\n")
    sys.stderr.flush()


def interpreter_paths() -> list[str]:
    """What the child must read to import the standard library and site-packages."""
    paths = {os.path.join(sys.base_prefix, "lib"), *site.getsitepackages()}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        paths.add(sysconfig.get_paths()[key])
    return sorted(p for p in paths if os.path.isdir(p))


def _blocking_ancestor(path: str) -> str | None:
    """The outermost directory on path that others may not enter, if any."""
    current = "/"
    for part in path.strip("/").split("/")[:-1]:
        current = os.path.join(current, part)
        if not os.stat(current).st_mode & stat.S_IXOTH:
            return current
    return None


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def cover_with_tmpfs(directory: str, keep: list[str], options: str) -> None:
    """Mount an empty tmpfs on directory, keeping the subtrees in keep where they were.

    The subtrees are cloned first (open_tree), the tmpfs hides everything else,
    and the clones are mounted back at their old paths: what lies beside them in
    directory is gone from this mount namespace only.
    """
    inside = sorted({p for p in keep if _within(p, directory) and p != directory})
    outermost = [p for p in inside if not any(q != p and _within(p, q) for q in inside)]
    clones = [(p, _linux.open_tree(p, _linux.OPEN_TREE_CLONE | _linux.OPEN_TREE_CLOEXEC | _linux.AT_RECURSIVE))
              for p in outermost]
    _linux.mount("tmpfs", directory, "tmpfs", _linux.MS_NOSUID | _linux.MS_NODEV, options)
    for path, fd in clones:
        os.makedirs(path, mode=0o755, exist_ok=True)
        _linux.move_mount(fd, path)
        os.close(fd)


def expose_interpreter(paths: list[str]) -> list[str]:
    """Make paths reachable by an unprivileged uid without loosening anything else.

    Each directory that blocks the way (e.g. /root, mode 700) is covered with an
    empty tmpfs that keeps only the interpreter's subtrees: the child sees the
    interpreter and nothing else of /root.
    """
    blockers = sorted({b for b in map(_blocking_ancestor, paths) if b})
    for blocker in blockers:
        cover_with_tmpfs(blocker, paths, "mode=0755,size=1m")
    return blockers


class Zygote:
    def __init__(self, channel: int, pool_size: int, namespaces: dict[str, Any]) -> None:
        self.channel = channel
        self.pool_size = pool_size
        self.namespaces = namespaces
        self.pool: list[Prepared] = []
        self.finished: list[Prepared] = []
        self.require: list[str] = []
        self.read_paths = interpreter_paths() + SYSTEM_READ_PATHS
        self.scratch_root = namespaces["scratch_root"]

    # -- children ---------------------------------------------------------
    def _spec(self) -> dict[str, Any]:
        uid = UID_BASE + secrets.randbelow(UID_RANGE) if os.geteuid() == 0 else None
        return {
            "scratch": os.path.join(self.scratch_root, f"job-{secrets.token_hex(8)}"),
            "uid": uid,
            "gid": uid,
            "read_paths": self.read_paths,
            "write_paths": WRITE_PATHS,
            "require": self.require,
            "limits": CHILD_LIMITS,
            **{k: self.namespaces[k] for k in (
                "pid_namespace", "pid_namespace_detail", "mount_namespace", "mount_namespace_detail")},
        }

    def fork_child(self) -> Prepared:
        spec = self._spec()
        job_r, job_w = os.pipe2(os.O_CLOEXEC)
        result_r, result_w = os.pipe2(os.O_CLOEXEC)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # the child: whatever happens, it leaves through os._exit
            exit_ = os._exit
            try:
                devnull = os.open("/dev/null", os.O_RDONLY)
                # Move the ends out of the way first, so no dup2 clobbers another.
                high = [os.dup2(fd, 100 + i) for i, fd in enumerate((devnull, out_w, job_r, result_w))]
                for target, source in ((0, high[0]), (1, high[1]), (2, high[1]), (3, high[2]), (4, high[3])):
                    os.dup2(source, target)
                _linux.close_range(5)
                child.main(spec)
            finally:
                exit_(70)
        for fd in (job_r, result_w, out_w):
            os.close(fd)
        return Prepared(pid, job_w, result_r, out_r, spec["scratch"])

    def take(self) -> tuple[Prepared, dict[str, Any]]:
        """The first pool child to be ready (forking one if the pool is empty)."""
        if not self.pool:
            self.pool.append(self.fork_child())
        ready, _, _ = select.select([p.result_r for p in self.pool], [], [], READY_TIMEOUT)
        prepared = next((p for p in self.pool if p.result_r in ready), self.pool[0])
        self.pool.remove(prepared)
        try:
            if not ready:
                raise protocol.FrameError("the child did not get ready in time")
            hello = protocol.read_frame(prepared.result_r, 1 << 16)
        except protocol.FrameError as exc:
            hello = {"ready": False, "error": str(exc)}
        return prepared, hello

    def dispose(self, prepared: Prepared) -> None:
        for fd in (prepared.job_w, prepared.result_r, prepared.out_r):
            if fd >= 0:
                os.close(fd)
        if not prepared.reaped:
            self._kill(prepared.pid)
        self.finished.append(prepared)

    def housekeeping(self, block: bool = False) -> None:
        """Reap finished children, remove their scratch folders, refill the pool.

        Never waits for a dying child (tearing down a torch-sized address space
        takes milliseconds). Always refills the whole pool, even when the next
        request is already waiting: the children then harden on the other core
        while this one serves, and take() hands out whichever is ready first.
        (Measured: back-to-back p50 11.8 ms, against 17.7 ms when refilling was
        put off while a request waited.)
        """
        still_dying = []
        for prepared in self.finished:
            if not prepared.reaped:
                try:
                    pid, _ = os.waitpid(prepared.pid, 0 if block else os.WNOHANG)
                except ChildProcessError:
                    pid = prepared.pid
                if pid == 0:
                    # Killed, but still tearing down: it runs no more code, so empty its
                    # scratch folder now rather than after the reap. Otherwise a job that
                    # filled the shared /tmp (inode or size cap) still fills it while the
                    # pool is refilled and the next job runs: the next child cannot create
                    # its scratch folder, or the next learner's writes fail with ENOSPC.
                    # Removed once more after the reap, for anything a call in flight made.
                    shutil.rmtree(prepared.scratch, ignore_errors=True)
                    still_dying.append(prepared)
                    continue
            shutil.rmtree(prepared.scratch, ignore_errors=True)
        self.finished = still_dying
        while len(self.pool) < self.pool_size:
            self.pool.append(self.fork_child())

    # -- jobs -------------------------------------------------------------
    def run(self, request: dict[str, Any], op: str = "run") -> dict[str, Any]:
        started = time.perf_counter()
        prepared, hello = self.take()
        if not hello.get("ready"):
            self.dispose(prepared)
            reason = hello.get("error") or hello.get("detail") or "no reason given"
            return {"ok": False, "error": f"child hardening failed: {reason}"}
        job = {"op": op, **{k: request[k] for k in ("setup", "code", "targets", "limits", "token") if k in request}}
        try:
            protocol.write_frame(prepared.job_w, job)
        except OSError as exc:
            self.dispose(prepared)
            return {"ok": False, "error": f"could not hand the job to the child: {exc}"}
        os.close(prepared.job_w)
        prepared.job_w = -1
        wall = float(request.get("limits", {}).get("wall_seconds", 5.0))
        reply = self._collect(prepared, deadline=time.monotonic() + wall)
        reply["layers"] = hello["layers"]
        reply["wall_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return reply

    def _collect(self, prepared: Prepared, deadline: float) -> dict[str, Any]:
        for fd in (prepared.result_r, prepared.out_r):
            os.set_blocking(fd, False)
        frame = protocol.FrameBuffer(RESULT_LIMIT)
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
        exit_code = exit_signal = cpu_seconds = None
        if frame.complete and not killed_for:
            # The child is done; it need not be waited for before replying.
            self._kill(prepared.pid)
        else:
            # No usable frame: the exit status tells what happened. A child that
            # closed its result pipe but lingers gets what is left of its wall time.
            if not killed_for and not self._exits_within(prepared.pid, deadline - time.monotonic()):
                killed_for = "wall"
            self._kill(prepared.pid)
            _, status, usage = os.wait4(prepared.pid, 0)
            prepared.reaped = True
            cpu_seconds = usage.ru_utime + usage.ru_stime
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
        self.dispose(prepared)
        return {
            "ok": True,
            "frame": base64.b64encode(bytes(frame.data)).decode() if frame.data else None,
            "killed_for": killed_for,
            "exit_code": exit_code,
            "exit_signal": exit_signal,
            "cpu_seconds": cpu_seconds,
            "output": output.decode("utf-8", errors="replace"),
            "output_bytes": output_total,
        }

    @staticmethod
    def _kill(pid: int) -> None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    @staticmethod
    def _exits_within(pid: int, timeout: float) -> bool:
        pidfd = os.pidfd_open(pid)
        try:
            ready, _, _ = select.select([pidfd], [], [], max(0.0, timeout))
            return bool(ready)
        finally:
            os.close(pidfd)

    def serve(self) -> None:
        while True:
            try:
                request = protocol.read_frame(self.channel, REQUEST_LIMIT)
            except protocol.FrameError:
                return  # the client went away: pid 1 exiting takes every child with it
            op = request.get("op")
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
            try:
                protocol.write_frame(self.channel, reply)
            except OSError:
                return  # the client died while the job ran (its worker was killed): nothing to answer
            self.housekeeping()


def _enter_namespaces() -> dict[str, Any]:
    """As root: new pid and mount namespaces; returns what the zygote got.

    Returns in the process that is to become the zygote: pid 1 of the new pid
    namespace. The original process stays behind as a thin waiter so that the
    client's handle on it ends when the zygote ends.
    """
    info: dict[str, Any] = {
        "pid_namespace": False, "pid_namespace_detail": "not root: shares the worker's pid namespace",
        "mount_namespace": False, "mount_namespace_detail": "not root: shares the worker's mounts",
        "scratch_root": None, "exposed": [],
    }
    if os.geteuid() != 0:
        return info
    _linux.unshare(_linux.CLONE_NEWNS | _linux.CLONE_NEWPID)
    _linux.mount(None, "/", None, _linux.MS_REC | _linux.MS_PRIVATE, None)
    pid = os.fork()
    if pid:
        signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGKILL))
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for fd in range(3, 256):
            try:
                os.close(fd)
            except OSError:
                pass
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    _linux.prctl(_linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    _linux.mount("proc", "/proc", "proc", _linux.MS_NOSUID | _linux.MS_NODEV | _linux.MS_NOEXEC, None)
    # Scratch folders live on a private, size-capped /tmp. It must not hide the
    # interpreter: a checkout (and its .venv) may itself live under /tmp.
    cover_with_tmpfs(SCRATCH_ROOT_PRIVATE, interpreter_paths(), "size=256m,nr_inodes=16384,mode=1777")
    info.update(
        pid_namespace=True, pid_namespace_detail="the zygote is pid 1 of its own pid namespace; /proc shows only it and its children",
        mount_namespace=True, mount_namespace_detail="private mounts: own /proc, tmpfs /tmp (256 MiB)",
        scratch_root=SCRATCH_ROOT_PRIVATE,
    )
    info["exposed"] = expose_interpreter(interpreter_paths())
    if info["exposed"]:
        info["mount_namespace_detail"] += f", {', '.join(info['exposed'])} shows only the interpreter"
    return info


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
    for name in ("math", "random", "itertools", "functools", "collections", "json", "traceback", "socket",
                 "numpy"):
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


def main(argv: list[str]) -> None:
    channel = int(argv[1])
    pool_size = int(argv[2]) if len(argv) > 2 else 2
    sys.dont_write_bytecode = True
    namespaces = _enter_namespaces()
    if namespaces["scratch_root"] is None:
        import tempfile

        namespaces["scratch_root"] = tempfile.mkdtemp(prefix="autograd-grader-")
    torch_version = _warm_up()
    import gc

    # Objects that exist now are never collected in a child: freezing them keeps
    # the collector from writing to (and so copying) their pages after each fork.
    gc.freeze()
    huge_kb = collapse_heap_into_huge_pages()
    zygote = Zygote(channel, pool_size, namespaces)
    # The probe child is forked on demand (the pool is still empty); the pool is
    # only filled once the probe has said which layers every child must have.
    probe = zygote.run({"limits": {"wall_seconds": 20}}, op="probe")
    probe_frame = None
    if probe.get("ok") and probe.get("frame"):
        try:
            probe_frame = protocol.decode(base64.b64decode(probe["frame"])[protocol.HEADER.size:])
        except protocol.FrameError:
            probe_frame = None
    layers = probe.get("layers", {})
    # Every layer the probe child got is required of every later child.
    zygote.require = [name for name, layer in layers.items() if layer["active"]]
    zygote.housekeeping(block=True)
    protocol.write_frame(channel, {
        "ready": True, "pid": os.getpid(), "torch": torch_version, "layers": layers,
        "probe": probe_frame, "exposed": namespaces["exposed"], "huge_pages_kb": huge_kb,
    })
    _log(f"ready: torch {torch_version}, pool of {pool_size}, {huge_kb // 1024} MiB of the heap in huge pages")
    zygote.serve()
