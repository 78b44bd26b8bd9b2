"""The graded child: forked from the zygote, hardened, then runs one job.

Layout of descriptors when main() starts (arranged by the zygote):
0 /dev/null, 1 and 2 the capped output pipe, 3 the job pipe (read),
4 the result pipe (write). Everything else is closed.

Order of hardening matters: namespaces and the scratch folder need root, the
Landlock rules are opened while the interpreter is still fully readable, the
uid drop removes every capability, and seccomp comes last because it forbids
the calls the earlier steps make.
"""
from __future__ import annotations

import builtins
import ctypes
import io
import math
import os
import resource
import signal
import sys
import time
from typing import Any

from . import _linux, landlock, protocol, seccomp
from .observe import observe_target

STDOUT_FD, JOB_FD, RESULT_FD = 1, 3, 4
JOB_LIMIT = 1 << 20
SUBMISSION = "<submission>"
SETUP = "<setup>"
FRAME_VERSION = 1
MiB = 1 << 20

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


def _statm_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def harden(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Apply every isolation layer the spec asks for; return what is active."""
    layers: dict[str, dict[str, Any]] = {}
    required = set(spec["require"])

    def record(name: str, active: bool, detail: str) -> None:
        layers[name] = {"active": active, "detail": detail}
        if not active and name in required:
            raise HardeningError(f"{name}: {detail}")

    os.setsid()
    record("session", True, "own session and process group")
    try:
        _linux.prctl(_linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass

    as_root = os.geteuid() == 0
    try:
        flags = _linux.CLONE_NEWNET | _linux.CLONE_NEWIPC | _linux.CLONE_NEWUTS
        _linux.unshare(flags if as_root else flags | _linux.CLONE_NEWUSER)
        record("network_namespace", True, "new, empty network namespace (no interfaces up)")
        record("ipc_namespace", True, "new IPC and UTS namespaces")
    except OSError as exc:
        record("network_namespace", False, f"unshare failed: {exc.strerror}")
        record("ipc_namespace", False, f"unshare failed: {exc.strerror}")
    record("pid_namespace", spec["pid_namespace"], spec["pid_namespace_detail"])
    record("mount_namespace", spec["mount_namespace"], spec["mount_namespace_detail"])

    scratch = spec["scratch"]
    os.mkdir(scratch, 0o700)
    uid, gid = spec.get("uid"), spec.get("gid")
    if as_root and uid is not None:
        os.chown(scratch, uid, gid)
    os.chdir(scratch)

    vm_base = _statm_bytes()
    limits = spec["limits"]
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits["nofile"], limits["nofile"]))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits["fsize"], limits["fsize"]))
        resource.setrlimit(resource.RLIMIT_NPROC, (limits["nproc"], limits["nproc"]))
        cpu_cap = int(time.process_time()) + limits["max_cpu_seconds"] + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_cap, cpu_cap))
        as_cap = vm_base + limits["max_memory_mb"] * MiB + limits["memory_headroom_mb"] * MiB
        resource.setrlimit(resource.RLIMIT_AS, (as_cap, as_cap))
        record(
            "rlimits", True,
            f"core 0, nofile {limits['nofile']}, fsize {limits['fsize'] // MiB} MiB, "
            f"nproc {limits['nproc']}, cpu and address space per job",
        )
    except (OSError, ValueError) as exc:
        record("rlimits", False, f"setrlimit failed: {exc}")

    try:
        _linux.prctl(_linux.PR_SET_NO_NEW_PRIVS, 1)
        record("no_new_privs", True, "set")
    except OSError as exc:
        record("no_new_privs", False, exc.strerror or str(exc))

    try:
        abi = landlock.restrict(spec["read_paths"], [scratch] + spec["write_paths"])
        record("landlock", True, f"ABI {abi}: read-only interpreter and libraries, write only the scratch folder"
               + (", no TCP" if abi >= 4 else "") + (", signals and abstract sockets scoped" if abi >= 6 else ""))
    except OSError as exc:
        record("landlock", False, exc.strerror or str(exc))

    if as_root and uid is not None:
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

    try:
        seccomp.install(os.getpid())
        record("seccomp", True, f"{len(seccomp.DENIED) + len(seccomp.SELF_ONLY_ARG0) + 3} calls filtered")
    except OSError as exc:
        record("seccomp", False, exc.strerror or str(exc))

    layers["_vm_base"] = {"active": True, "detail": str(vm_base)}
    return layers


def _set_job_limits(job_limits: dict[str, Any], vm_base: int, headroom: int) -> None:
    # RLIMIT_CPU counts whole seconds of the process's life, which includes the
    # child's own preparation: round that up, so the learner gets at least the budget.
    cpu = math.ceil(job_limits["cpu_seconds"])
    used = math.ceil(time.process_time())
    resource.setrlimit(resource.RLIMIT_CPU, (used + cpu, used + cpu + 1))
    soft = vm_base + int(job_limits["memory_mb"]) * MiB
    resource.setrlimit(resource.RLIMIT_AS, (soft, soft + headroom))


def _release_memory_headroom() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


def _format_exception(exc: BaseException, source: str, filename: str) -> dict[str, Any]:
    import traceback

    lines = source.splitlines()
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - hostile __str__
        message = "<unprintable>"
    name = type(exc).__name__
    out = []
    line = None
    if isinstance(exc, SyntaxError) and exc.filename == filename:
        line = exc.lineno
        out.append(f"  line {exc.lineno}")
        if exc.text:
            out.append("    " + exc.text.rstrip("\n").strip())
            if exc.offset:
                indent = len(exc.text) - len(exc.text.lstrip())
                out.append("    " + " " * max(0, exc.offset - 1 - indent) + "^")
        message = exc.msg
    else:
        own = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
        if own:
            out.append("Traceback (most recent call last):")
            for frame in own[-20:]:
                out.append(f"  line {frame.lineno}, in {frame.name}")
                if frame.lineno and 0 < frame.lineno <= len(lines):
                    out.append("    " + lines[frame.lineno - 1].strip())
            line = own[-1].lineno
    out.append(f"{name}: {message}" if message else name)
    info: dict[str, Any] = {"type": name, "message": message[:2000], "traceback": "\n".join(out)[-8000:], "line": line}
    if isinstance(exc, OSError) and isinstance(exc.errno, int):
        info["errno"] = exc.errno
    return info


def _run_source(source: str, filename: str, namespace: dict[str, Any]) -> dict[str, Any] | None:
    """Compile and run source; None on success, else the exception's description."""
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
    except BaseException as exc:  # noqa: BLE001 - SyntaxError, and compile-time MemoryError
        return {**_format_exception(exc, source, filename), "phase": "compile"}
    try:
        exec(code, namespace)  # noqa: S102 - running learner code is the point; it is contained
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt included
        return {**_format_exception(exc, source, filename), "phase": "run"}
    return None


def run_job(job: dict[str, Any], vm_base: int, headroom: int) -> dict[str, Any]:
    _set_job_limits(job["limits"], vm_base, headroom)
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    started_cpu, started = time.process_time(), time.perf_counter()
    frame: dict[str, Any] = {"v": FRAME_VERSION}
    failure = _run_source(job.get("setup") or "", SETUP, namespace)
    if failure is not None:
        frame.update(phase="setup_error", error=failure)
    else:
        failure = _run_source(job["code"], SUBMISSION, namespace)
        if failure is not None:
            frame.update(phase="syntax_error" if failure["phase"] == "compile" else "code_error", error=failure)
        else:
            try:
                _release_memory_headroom()
            except (OSError, ValueError):
                pass
            frame.update(phase="done", observations=[observe_target(t, namespace) for t in job["targets"]])
    frame["cpu_ms"] = round((time.process_time() - started_cpu) * 1000, 3)
    frame["exec_ms"] = round((time.perf_counter() - started) * 1000, 3)
    return frame


def self_test() -> dict[str, Any]:
    """Try what hostile code would try; report what the layers stopped (sandbox_check)."""
    import socket

    def blocked(action) -> bool:  # type: ignore[no-untyped-def]
        try:
            action()
        except OSError:
            return True
        return False

    results = {
        "read /etc/passwd": blocked(lambda: open("/etc/passwd").read()),
        "write outside the scratch folder": blocked(lambda: open("/tmp/escape-probe", "w")),
        "open a TCP socket": blocked(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM)),
        "open a Unix socket": blocked(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)),
        "fork a process": blocked(os.fork),
        "run a program": blocked(lambda: os.execv("/bin/true", ["true"])),
        "signal pid 1": blocked(lambda: os.kill(1, 0)),
    }
    imports = {}
    for name in ("xml.dom.minidom", "sqlite3", "torch.distributions", "torch.utils.data"):
        try:
            __import__(name)
            imports[name] = "ok"
        except Exception as exc:  # noqa: BLE001
            imports[name] = f"{type(exc).__name__}: {exc}"
    return {"v": FRAME_VERSION, "phase": "probe", "blocked": results, "imports": imports, "uid": os.getuid()}


_PREFAULT = """
import torch
x = torch.tensor([0.5, 2.0], requires_grad=True)
y = (torch.sin(x) * x ** 2 + 3 * x + 1).sum()
y.backward(retain_graph=True)
g, = torch.autograd.grad(y, x)
h = x * 2
h.retain_grad()
(h ** 2).mean().backward()
w = torch.ones(4, 3, requires_grad=True)
torch.nn.functional.relu(torch.nn.functional.linear(torch.ones(5, 3), w)).pow(2).mean().backward()
with torch.no_grad():
    z = x.detach() * 2
x.grad.zero_()
v = float(x.grad.sum().item())
text = f"{x} {y} {x.grad} {g!r} {z} {v} {x.requires_grad} {torch.ones(2, 3)} {torch.arange(3)}"
"""


def _prefault() -> None:
    """Run a typical job once, unobserved, before any learner code arrives.

    A forked child pays a copy-on-write fault for every page it first writes;
    doing that here, while the child waits in the pool, takes most of it off the
    critical path. Uses no random numbers, so it changes no state a job can see.
    """
    namespace: dict[str, Any] = {"__builtins__": builtins}
    exec(compile(_PREFAULT, "<prefault>", "exec"), namespace)  # noqa: S102 - our own constant
    frame = {"observations": [observe_target(t, namespace) for t in ("x.grad", "h.grad", "g", "v", "z", "q")]}
    protocol.encode(frame)


def _fresh_stdio() -> None:
    out = io.TextIOWrapper(
        io.FileIO(STDOUT_FD, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
        line_buffering=True, write_through=True,
    )
    sys.stdout = sys.__stdout__ = out
    sys.stderr = sys.__stderr__ = out
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))


def _close_output() -> None:
    """Flush and close the output pipe, so the zygote sees its end before the frame."""
    for stream in (sys.__stdout__,):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - learner code may have closed or replaced it
            pass
    devnull = os.open("/dev/null", os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)


def main(spec: dict[str, Any]) -> None:
    """Harden, report ready, run one job, report, exit. Never returns."""
    exit_ = _exit
    code = 70
    token = None
    try:
        _fresh_stdio()
        try:
            layers = harden(spec)
        except HardeningError as exc:
            protocol.write_frame(RESULT_FD, {"ready": False, "error": str(exc)})
            return
        vm_base = int(layers.pop("_vm_base")["detail"])
        _prefault()
        protocol.write_frame(RESULT_FD, {"ready": True, "layers": layers})
        job = protocol.read_frame(JOB_FD, JOB_LIMIT)
        os.close(JOB_FD)
        # The client's per-job token marks the frame as written by this code, not by
        # learner code that wrote a frame of its own to the result pipe and left through
        # os._exit. It is never handed to learner code (which could still dig it out of
        # this interpreter's memory: it stops forgeries, not a determined cheat).
        token = job.pop("token", None)
        headroom = spec["limits"]["memory_headroom_mb"] * MiB
        frame = self_test() if job.get("op") == "probe" else run_job(job, vm_base, headroom)
        if token is not None:
            frame["token"] = token
        _close_output()
        protocol.write_frame(RESULT_FD, frame)
        os.close(RESULT_FD)
        code = 0
    except BaseException as exc:  # noqa: BLE001 - a fault of ours: say so if the channel still works
        try:
            internal = {"v": FRAME_VERSION, "phase": "internal", "detail": repr(exc)[:500]}
            if token is not None:
                internal["token"] = token
            protocol.write_frame(RESULT_FD, internal)
        except BaseException:  # noqa: BLE001
            pass
    finally:
        exit_(code)
