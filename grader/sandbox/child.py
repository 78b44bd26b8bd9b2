"""The graded child: forked by the template, hardened, then runs one job.

Layout of descriptors when main() starts (arranged by the template):
0 /dev/null, 1 and 2 the capped output pipe, 3 the job pipe (read),
4 the result pipe (write), 5 the cgroup.procs of its memory cgroup (if any).
Everything else is closed.

Order matters: the cgroup, namespaces and scratch tmpfs need root; the
Landlock rules are opened while the interpreter is still fully readable; the
uid drop removes every capability; the learner's thread is started while
threads may still be made; seccomp then goes onto both threads; the
in-process guard last, once nothing of the grader's needs what it refuses.
The zygote sets the job's CPU and memory limits from outside before it sends
the job (the child itself could only lower them, and seccomp forbids even that).
"""
from __future__ import annotations

import _thread
import builtins
import ctypes
import io
import os
import resource
import select
import signal
import socket
import sys
import time
import types
from collections.abc import Callable
from typing import Any, NamedTuple

from . import _linux, evidence, guard, landlock, limits, lineage, namespaces, observe, protocol, seccomp, stage, targets
from .syscalls import NUMBERS

STDOUT_FD, JOB_FD, RESULT_FD, CGROUP_FD = 1, 3, 4, 5
JOB_LIMIT = 1 << 20
FRAME_VERSION = observe.FRAME_VERSION
# Written on the result channel just before the learner's code starts: whatever happens to
# the process after it is the learner's doing, whatever happened before is the grader's.
RUNNING = protocol.encode({"running": True})
SCRATCH_INODES = 4096
# A ready child waits this long for a job before it starts its warm-up (a job sent the moment it said ready
# arrives well within it), then looks for one this often while the warm-up runs.
WARM_UP_GRACE_SECONDS = 0.002
WARM_UP_POLL_SECONDS = 0.001

_exit = os._exit


class HardeningError(Exception):
    """A required isolation layer could not be applied: the child must not run code."""


def _capset_empty() -> None:
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    header = Header(0x20080522, 0)
    data = (Data * 2)()
    _linux.syscall(126, ctypes.byref(header), ctypes.byref(data))


class Layers:
    """The layers a child got, each checked against what the zygote requires of it."""

    def __init__(self, required: list[str]) -> None:
        self.required = set(required)
        self.report: dict[str, dict[str, Any]] = {}

    def record(self, name: str, active: bool, detail: str) -> None:
        self.report[name] = {"active": active, "detail": detail}
        if not active and name in self.required:
            raise HardeningError(f"{name}: {detail}")


def harden(spec: dict[str, Any], layers: Layers) -> int:
    """Apply every kernel isolation layer but seccomp; returns a descriptor of /proc/self/statm."""
    record = layers.record
    os.setsid()
    record("session", True, "own session and process group")
    _linux.prctl(_linux.PR_SET_PDEATHSIG, signal.SIGKILL)

    if spec["cgroup"]:
        try:
            os.write(CGROUP_FD, b"0")
            record("memory_cgroup", True, spec["cgroup_detail"])
        except OSError as exc:
            record("memory_cgroup", False, f"could not join its cgroup: {exc.strerror}")
        finally:
            os.close(CGROUP_FD)
    else:
        record("memory_cgroup", False, spec["cgroup_detail"])

    uid, gid = spec["uid"], spec["gid"]
    if spec["minimal_root"]:
        try:
            statm = namespaces.isolate_child(uid=uid, gid=gid, scratch_bytes=limits.CHILD_RLIMITS["fsize"],
                                             scratch_inodes=SCRATCH_INODES)
        except OSError as exc:
            for name in ("network_namespace", "ipc_namespace", "mount_namespace"):
                record(name, False, f"could not isolate the child: {exc.strerror}")
            raise HardeningError(f"namespaces: {exc.strerror}") from None
        record("network_namespace", True, "new, empty network namespace (no interfaces up)")
        record("ipc_namespace", True, "new IPC and UTS namespaces")
        record("mount_namespace", True, spec["root_detail"])
    else:
        statm = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
        try:
            flags = _linux.CLONE_NEWNET | _linux.CLONE_NEWIPC | _linux.CLONE_NEWUTS
            _linux.unshare(flags if os.geteuid() == 0 else flags | _linux.CLONE_NEWUSER)
            record("network_namespace", True, "new, empty network namespace (no interfaces up)")
            record("ipc_namespace", True, "new IPC and UTS namespaces")
        except OSError as exc:
            record("network_namespace", False, f"unshare failed: {exc.strerror}")
            record("ipc_namespace", False, f"unshare failed: {exc.strerror}")
        record("mount_namespace", False, spec["root_detail"])
        os.chdir(spec["scratch"])
    record("pid_namespace", spec["pid_namespace"], spec["pid_namespace_detail"])

    try:
        detail = limits.set_child_rlimits()
        vm = namespaces.statm_bytes(statm)
        cap = limits.address_space_cap(vm, limits.MAX_MEMORY_MB)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        cpu = limits.cpu_cap(time.process_time(), limits.MAX_CPU_SECONDS)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        record("rlimits", True, detail)
    except (OSError, ValueError) as exc:
        record("rlimits", False, f"setrlimit failed: {exc}")

    try:
        _linux.prctl(_linux.PR_SET_NO_NEW_PRIVS, 1)
        record("no_new_privs", True, "set")
    except OSError as exc:
        record("no_new_privs", False, exc.strerror or str(exc))

    scratch = namespaces.SCRATCH if spec["minimal_root"] else spec["scratch"]
    try:
        abi = landlock.restrict(spec["read_paths"], [scratch, "/dev/null"])
        record("landlock", True, f"ABI {abi}: read-only interpreter and libraries, write only the scratch folder"
               + (", no TCP" if abi >= 4 else "") + (", signals and abstract sockets scoped" if abi >= 6 else ""))
    except OSError as exc:
        record("landlock", False, exc.strerror or str(exc))

    if os.geteuid() == 0 and uid is not None:
        try:
            _linux.setgroups_empty()
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            record("unprivileged_uid", True, f"uid {uid}, gid {gid}, no supplementary groups")
        except OSError as exc:
            record("unprivileged_uid", False, f"could not drop root: {exc.strerror}")
    else:
        record("unprivileged_uid", os.geteuid() != 0, f"running as uid {os.geteuid()}")
    try:
        _capset_empty()
        record("capabilities", True, "none")
    except OSError as exc:
        record("capabilities", False, exc.strerror or str(exc))

    os.environ.clear()
    record("environment", True, "empty")
    return statm


# -- the learner's thread -----------------------------------------------------------------------
class LearnerThread:
    """The thread the learner's code will run on, and the locks the main thread drives it with."""

    def __init__(self, jobs: int) -> None:
        self.slot: list[Any] = [None, None]
        self.start, self.done, self.park = _thread.allocate_lock(), _thread.allocate_lock(), _thread.allocate_lock()
        self.start.acquire()
        self.done.acquire()
        code = guard.private_copy(stage)
        self.park_code = stage.bootstrap.__code__
        self.park_lineno = stage.park_line()
        self.ident = _thread.start_new_thread(code.bootstrap, (self.slot, self.start, self.done, self.park, jobs))
        self.done.acquire()  # alive: its start-up system calls are behind it

    def serve(self, job: tuple[Any, ...]) -> None:
        """Run one job on the thread and wait for it (the idle job standing for the warm-up)."""
        self.slot[0] = job
        self.start.release()
        self.done.acquire()

    def warm_up(self, job: tuple[Any, ...], job_arrived: Callable[[float], bool], stop: list[bool]) -> bool:
        """Run the warm-up job until a job arrives: then stop[0] tells it to stop at its next step. True if it
        ran to its end. job_arrived(seconds) waits that long (without the GIL) for a job."""
        self.slot[0] = job
        self.start.release()
        while not stop[0] and not self.done.acquire(blocking=False):
            stop[0] = job_arrived(WARM_UP_POLL_SECONDS)
        if stop[0]:
            self.done.acquire()
        return not stop[0]


class SetupSyntaxError(Exception):
    """The item's own setup code does not compile."""


Reading = tuple[list[Any], list[bool], dict[str, Any]]  # lineage events, [recording, overflowed], namespace


def _job_tuple(setup: str, code: str | types.CodeType, target_texts: list[str], probes: list[Any], marker: bytes,
               lineage_code: Any, trace: bool = True) -> tuple[tuple[Any, ...], list[Any], Reading]:
    """What the learner's thread runs, what the main thread needs to read its results, and the
    lists the lineage recorder fills (the main thread's own: it reads them without the recorder).

    Raises SyntaxError for the learner's code, SetupSyntaxError for the item's setup. code may come compiled
    (the warm-up's).
    """
    probes = probes or [["value", []] for _ in target_texts]
    planned = [targets.plan(t, p[0], tuple(p[1])) for t, p in zip(target_texts, probes, strict=True)]
    plans, metas = zip(*planned) if planned else ((), ())
    early = [plan for plan, meta in planned if meta[3] == "identity"]
    sources = tuple(sorted({name for meta in metas for name in meta[4]}))
    try:
        setup_code = compile(setup, stage.SETUP, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise SetupSyntaxError(f"line {exc.lineno}: {exc.msg}") from None
    learner_code = code if isinstance(code, types.CodeType) else compile(code, stage.SUBMISSION, "exec",
                                                                          dont_inherit=True)
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    events: list[Any] = []
    flags = [True, False]
    recorder = lineage.Recorder(events, flags) if trace else None
    job = (setup_code, setup, learner_code, code, namespace, list(plans), marker, os.write, RESULT_FD,
           recorder, flags, lineage_code, early, sources)
    return job, list(metas), (events, flags, namespace)


def _syntax_error(exc: SyntaxError, source: str) -> dict[str, Any]:
    """A compile error of the learner's code, described by the grader (no learner code has run)."""
    message = exc.msg if isinstance(exc.msg, str) else "invalid syntax"
    line = exc.lineno if type(exc.lineno) is int else None
    out = [f"  line {line}"] if line else []
    text = exc.text if isinstance(exc.text, str) else None
    if text:
        out.append("    " + text.rstrip("\n").strip())
        if type(exc.offset) is int and exc.offset > 0:
            indent = len(text) - len(text.lstrip())
            out.append("    " + " " * max(0, exc.offset - 1 - indent) + "^")
    name = type(exc).__name__
    out.append(f"{name}: {message}")
    return {"type": name, "message": message[:2000], "traceback": "\n".join(out)[-8000:], "line": line,
            "phase": "compile", "memory": False}


# -- the probe ------------------------------------------------------------------------------------
def self_test(trusted: Any) -> dict[str, Any]:
    """Try what hostile code would try; report what the layers stopped (sandbox_check)."""
    libc = trusted(lambda: ctypes.CDLL(None, use_errno=True))

    def raw(name: str, *args: int) -> None:
        if libc.syscall(NUMBERS[name], *args) < 0:
            raise OSError(ctypes.get_errno(), name)

    def blocked(action: Callable[[], object]) -> bool:
        try:
            trusted(action)
        except (OSError, ValueError, RuntimeError):
            return True
        return False

    def refused_in_learner_code(action: Callable[[], object]) -> bool:
        try:
            action()
        except guard.Refused:
            return True
        except Exception:  # noqa: BLE001
            return False
        return False

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    results = {
        "see /etc/shadow (stat)": blocked(lambda: os.stat("/etc/shadow")),
        "see the mount table (listmount)": blocked(lambda: raw("listmount", 0, 0, 0, 0)),
        "see any process in /proc": blocked(lambda: os.stat("/proc/self")),
        "write outside the scratch folder": blocked(lambda: open("/escape-probe", "w")),
        "open a TCP socket": blocked(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM)),
        "open a Unix socket": blocked(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)),
        "fork a process": blocked(os.fork),
        "start a thread": blocked(lambda: _thread.start_new_thread(int, ())),
        "run a program": blocked(lambda: os.execv("/bin/true", ["true"])),
        "signal pid 1": blocked(lambda: os.kill(1, 0)),
        "memory outside the budget (memfd)": blocked(lambda: os.memfd_create("hoard")),
        "memory outside the budget (SysV shm)": blocked(lambda: raw("shmget", 0, 1 << 20, 0o1600)),
        "raise a limit": blocked(lambda: resource.setrlimit(resource.RLIMIT_AS, (hard, hard + 1))),
        "change the personality": blocked(lambda: raw("personality", 0x0400000)),
        "io_uring": blocked(lambda: raw("io_uring_setup", 1, 0)),
        "walk the garbage collector": refused_in_learner_code(lambda: __import__("gc").get_objects()),
        "other threads' frames": refused_in_learner_code(sys._current_frames),
        "raw memory (ctypes)": refused_in_learner_code(lambda: ctypes.string_at(id(soft), 8)),
    }
    imports = {}
    for name in ("xml.dom.minidom", "sqlite3", "torch.distributions", "torch.utils.data"):
        try:
            __import__(name)
            imports[name] = "ok"
        except Exception as exc:  # noqa: BLE001
            imports[name] = f"{type(exc).__name__}: {exc}"
    return {"v": FRAME_VERSION, "phase": "probe", "blocked": results, "imports": imports, "uid": os.getuid()}


# -- main ---------------------------------------------------------------------------------------------
def _fresh_stdio() -> None:
    out = io.TextIOWrapper(
        io.FileIO(STDOUT_FD, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
        line_buffering=True, write_through=True,
    )
    sys.stdout = sys.__stdout__ = out
    sys.stderr = sys.__stderr__ = out
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))


class Inherited(NamedTuple):
    """What every child needs, made once (`inherit`) by the zygote before it forks the template: each child
    gets its own copy with the fork, and is spared making it (~2.5 ms of CPU per child)."""

    hidden_modules: frozenset[str]  # the grader's module names (guard.module_names), removed again in the child
    report: types.SimpleNamespace  # private copies of the code the main thread runs once learner code has run
    facts: types.SimpleNamespace
    lineage: types.SimpleNamespace
    warm_up: types.CodeType  # stage.PREFAULT, compiled


def inherit(hidden_modules: frozenset[str]) -> Inherited:
    return Inherited(hidden_modules, guard.private_copy(observe), guard.private_copy(evidence),
                     guard.private_copy(lineage), compile(stage.PREFAULT, stage.SUBMISSION, "exec", dont_inherit=True))


def main(spec: dict[str, Any], inherited: Inherited) -> None:
    """Harden, report ready, warm up while no job comes, take one job, lock down, run it, report, exit.
    Never returns."""
    exit_ = _exit
    code = 70
    try:
        _fresh_stdio()
        layers = Layers(spec["require"])
        try:
            statm = harden(spec, layers)
            thread = LearnerThread(jobs=2)
            try:
                install_seccomp = seccomp.prepare(os.getpid())
                layers.record("seccomp", True, seccomp.summary() + "; installed on both threads when the job "
                              "arrives, once its limits are set")
            except OSError as exc:
                install_seccomp = None
                layers.record("seccomp", False, exc.strerror or str(exc))
            trusted = guard.install()
            guard.neutralise_signals()
            guard.block_operator_registration()
            guard.scrub_modules(names=inherited.hidden_modules)
            layers.record("in_process_guard", True, "learner code on its own thread; an audit hook; private copies "
                          "of the grader's reading code; the grader's modules hidden")
        except HardeningError as exc:
            protocol.write_frame(RESULT_FD, {"ready": False, "error": str(exc)})
            return
        report, facts, lineage_code = inherited.report, inherited.facts, inherited.lineage
        protocol.write_frame(RESULT_FD, {"ready": True, "layers": layers.report})

        def job_arrived(seconds: float) -> bool:
            return bool(select.select([JOB_FD], [], [], seconds)[0])

        # While the child waits in the pool, a warm-up job copies the pages a typical job touches, so that a job
        # finds them copied already. A job that arrives first (the pool ran dry: submissions back to back) skips
        # or stops it: the job pays for its own pages, a fraction of the warm-up's CPU, and under load that CPU
        # goes to grading instead. So does the zygote, when the machine's CPUs are contended (spec "warm_up").
        # The thread serves two jobs, then parks: without a warm-up, an idle job stands in.
        if not spec.get("warm_up", True) or job_arrived(WARM_UP_GRACE_SECONDS):
            thread.serve(_job_tuple("", "", [], [], b"", lineage_code, trace=False)[0])
        else:
            stop = [False]
            warm_up, warm_metas, warm_reading = _job_tuple("", inherited.warm_up, list(stage.PREFAULT_TARGETS),
                                                           list(stage.PREFAULT_PROBES), b"", lineage_code)
            warm_reading[2]["_stop"] = stop
            if thread.warm_up(warm_up, job_arrived, stop):
                report.prefault(thread.slot, warm_metas, warm_reading, facts)
        job = protocol.read_frame(JOB_FD, JOB_LIMIT)
        os.close(JOB_FD)
        if job.get("op") == "run":
            job_limits = job["limits"]
            limits.set_job_rlimits(vm_base=namespaces.statm_bytes(statm), used_cpu=time.process_time(),
                                   memory_mb=int(job_limits["memory_mb"]), cpu_seconds=float(job_limits["cpu_seconds"]))
        os.close(statm)
        if install_seccomp is not None:
            trusted(install_seccomp)
        if job.get("op") == "probe":
            frame = self_test(trusted)
            observe.close_output()
            protocol.write_frame(RESULT_FD, frame)
            os.close(RESULT_FD)
            code = 0
            return
        # The client's per-job token marks the frame as written by this code. It lives only in
        # this thread's locals from here on: nothing the learner's thread holds leads to it.
        token = job.pop("token", None)
        head = {"v": FRAME_VERSION, "phase": "report_failed"}
        if token is not None:
            head["token"] = token
        fallback = report.frame_bytes(head)
        try:
            learner_job, metas, reading = _job_tuple(job.get("setup") or "", job["code"], list(job["targets"]),
                                                     list(job.get("probes") or []), RUNNING, lineage_code,
                                                     trace=job.get("trace", True) is not False)
        except (SyntaxError, SetupSyntaxError) as exc:
            if isinstance(exc, SetupSyntaxError):
                head["phase"] = "setup_error"
                head["error"] = {"type": "SyntaxError", "message": str(exc), "traceback": str(exc), "line": None,
                                 "phase": "compile", "memory": False}
            else:
                head["phase"] = "syntax_error"
                head["error"] = _syntax_error(exc, job["code"])
            observe.close_output()
            protocol.write_frame(RESULT_FD, head)  # no learner code has run: the ordinary encoder is safe
            os.close(RESULT_FD)
            code = 0
            return
        thread.slot[0] = learner_job
        current_frames = sys._current_frames
        report.finish(thread.start, thread.done, thread.slot, metas, reading, facts, token, trusted, current_frames,
                      thread.ident, thread.park_code, thread.park_lineno, fallback)
        code = 0
    except BaseException as exc:  # noqa: BLE001 - a fault of ours (before the learner's code): say so
        try:
            protocol.write_frame(RESULT_FD, {"v": FRAME_VERSION, "phase": "internal", "detail": repr(exc)[:500]})
        except BaseException:  # noqa: BLE001
            pass
    finally:
        exit_(code)


__all__ = ["main", "inherit", "Inherited", "HardeningError", "RUNNING"]
