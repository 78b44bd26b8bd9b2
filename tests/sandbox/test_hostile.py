"""Hostile learner code against the real sandbox.

Every test asserts the exact verdict and that nothing got out: no file on the
host, no secret in the output, no Redis key, no process, no dead zygote. All of
them run in the one session zygote (`sandbox` fixture); after each job the
`zygote` fixture checks that it is the same process, still answering, never
restarted, and the last test has it grade a clean submission as `passed`.

Limits are small (1 s of CPU, 128 MB) so the whole file stays fast.
"""
from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from grader.sandbox import MAX_CODE_BYTES, Check, Sandbox, grade_code
from grader.sandbox import protocol, schema
from grader.sandbox.client import PROJECT_ROOT
from grader.sandbox.namespaces import read_only_trees

from .hostile import (
    CHECKS, GUARD_CTYPES, LIMITS, LONG_WALL, SHORT_WALL, SOLUTION, WRONG, GradeFn, ZygoteWatch, assert_error,
    assert_passed, assert_refused, describe,
)

@pytest.fixture
def host_paths() -> Iterator[list[Path]]:
    """Unique paths on the host that hostile code tries to create; removed afterwards."""
    token = uuid.uuid4().hex
    paths = [
        Path(tempfile.gettempdir()) / f"grader-escape-{token}",
        Path(PROJECT_ROOT) / f"grader-escape-{token}",
        Path("/dev/shm") / f"grader-escape-{token}",
        Path.home() / f"grader-escape-{token}",
    ]
    yield paths
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
        elif path.exists() or path.is_symlink():
            path.unlink()


# -- files -----------------------------------------------------------------------
def test_reading_etc_passwd_is_refused(grade: GradeFn) -> None:
    g = grade("print(open('/etc/passwd').read())\n" + SOLUTION)
    assert_error(g, "FileNotFoundError", "/etc/passwd")
    assert g.error_line == 1
    assert "root:" not in g.stdout + (g.error or "")


@pytest.mark.parametrize("path", ["/etc/shadow", "/etc/hostname", "/root/.bashrc", f"{PROJECT_ROOT}/manage.py",
                                  f"{PROJECT_ROOT}/config/settings/base.py"])
def test_reading_host_files_is_refused(grade: GradeFn, path: str) -> None:
    g = grade(f"print(open({path!r}).read())\n" + SOLUTION)
    assert_refused(g)
    assert g.stdout == "", f"something was read: {g.stdout[:200]!r}"


def test_writing_host_paths_is_refused_and_leaves_nothing(grade: GradeFn, host_paths: list[Path]) -> None:
    for path in host_paths:
        g = grade(f"open({str(path)!r}, 'w').write('escaped')\n" + SOLUTION)
        assert_refused(g)
        assert not path.exists(), f"hostile code created {path} on the host"


@pytest.mark.parametrize("action", [
    "import os; os.mkdir({path!r})",
    "import os; os.symlink('/etc/passwd', {path!r})",
    "import shutil; shutil.copy('/proc/self/exe', {path!r})",
], ids=["mkdir", "symlink", "copy"])
def test_creating_entries_outside_the_scratch_folder_is_refused(grade: GradeFn, host_paths: list[Path],
                                                                action: str) -> None:
    path = host_paths[0]
    g = grade(action.format(path=str(path)) + "\n" + SOLUTION)
    assert_refused(g)
    assert not path.exists() and not path.is_symlink(), f"hostile code created {path} on the host"


def test_writing_inside_the_scratch_folder_works_and_starts_empty(grade: GradeFn) -> None:
    code = (
        "import os\n"
        "before = sorted(os.listdir('.'))\n"
        "with open('notes.txt', 'w') as fh:\n"
        "    fh.write('hello from the scratch folder')\n"
        "content = open('notes.txt').read()\n" + SOLUTION
    )
    checks = [Check("before"), Check("content")]
    extra = [{"kind": "sequence", "type": "list", "length": 0, "items": []},
             {"kind": "other", "type": "str", "repr": repr("hello from the scratch folder")}]
    # Twice: the second job gets a fresh, empty folder, not the first one's.
    for _ in range(2):
        assert_passed(grade(code, checks=checks, extra=extra))


# -- environment and other processes ------------------------------------------------
ENV_SNOOP = """\
import os
def attempt(label, action):
    try:
        print(label, action())
    except Exception as exc:
        print(label, 'refused:', type(exc).__name__, exc)
attempt('environ', lambda: dict(os.environ))
attempt('getenv', lambda: os.getenv('GRADER_TEST_SECRET'))
attempt('self', lambda: open('/proc/self/environ', 'rb').read())
attempt('pid1', lambda: open('/proc/1/environ', 'rb').read())
attempt('parent', lambda: open(f'/proc/{os.getppid()}/environ', 'rb').read())
attempt('listdir', lambda: os.listdir('/proc'))
"""


def test_environment_secrets_never_reach_the_child(monkeypatch: pytest.MonkeyPatch,
                                                   reference: list[dict[str, Any]]) -> None:
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    monkeypatch.setenv("GRADER_TEST_SECRET", secret)
    assert os.environ["GRADER_TEST_SECRET"] == secret
    with Sandbox() as sb:  # started with the secret in this process's environment
        zygote_env = Path(f"/proc/{sb.zygote_pid}/environ").read_bytes()
        assert secret.encode() not in zygote_env, "the secret reached the zygote's environment"

        g = grade_code(sb, code=ENV_SNOOP + SOLUTION, setup="", checks=CHECKS, reference=reference, limits=LIMITS,
                       reveal_expected=True, screen=False)
        assert_passed(g)  # every attempt was caught, so the code went on
        assert "environ {}" in g.stdout and "getenv None" in g.stdout, f"the snoop did not run: {g.stdout!r}"
        for label in ("self", "pid1", "parent"):  # there is no /proc in the child's minimal root
            assert f"{label} refused: FileNotFoundError" in g.stdout, f"{label} was not refused: {g.stdout!r}"
        assert "listdir refused: PermissionError" in g.stdout, g.stdout  # the bare mount point, outside Landlock
        assert secret not in g.stdout

        for path in ("/proc/self/environ", "/proc/1/environ"):
            g = grade_code(sb, code=f"print(open({path!r}).read())\n" + SOLUTION, setup="", checks=CHECKS,
                           reference=reference, limits=LIMITS, reveal_expected=True, screen=False)
            assert_error(g, "FileNotFoundError")
            assert secret not in g.stdout + (g.error or "")
        assert sb.restarts == 0


@pytest.mark.parametrize("template", [
    "print(open('/proc/{test_pid}/cmdline', 'rb').read())",
    "print(open('/proc/{test_pid}/environ', 'rb').read())",
    "print(open('/proc/1/cmdline', 'rb').read())",
    "print(open('/proc/1/maps').read())",
    "import os; print(os.readlink('/proc/1/exe'))",
    "import os; print(os.listdir('/proc/1/fd'))",
    "import os; print(os.listdir('/proc'))",
    "print(open('/proc/self/status').read())",
], ids=["test-cmdline", "test-environ", "pid1-cmdline", "pid1-maps", "pid1-exe", "pid1-fds", "list-proc",
        "self-status"])
def test_other_processes_proc_entries_are_unreadable(grade: GradeFn, template: str) -> None:
    g = grade(template.format(test_pid=os.getpid()) + "\n" + SOLUTION)
    assert_refused(g)
    # /proc is outside the child's Landlock rules (EACCES); the test's own pid does
    # not even exist in the zygote's pid namespace (ENOENT).
    assert g.stdout == "" and "pytest" not in (g.error or "")


# -- processes ---------------------------------------------------------------------
@pytest.mark.parametrize("code, fragment", [
    ("import subprocess; subprocess.run(['/bin/sh', '-c', 'echo ESCAPED > {marker}'])", "PermissionError"),
    ("import subprocess; subprocess.check_output(['id'])", "PermissionError"),
    ("import os; print(os.popen('echo ESCAPED > {marker}').read())", "PermissionError"),
    ("import os; os.execv('/bin/sh', ['sh', '-c', 'echo ESCAPED > {marker}'])", "PermissionError"),
    ("import os, sys; os.execve(sys.executable, [sys.executable, '-c', 'print(\"ESCAPED\")'], {{}})",
     "PermissionError"),
    ("import os; os.posix_spawn('/bin/sh', ['sh', '-c', 'echo ESCAPED > {marker}'], {{}})", "PermissionError"),
    ("import os\nif os.fork() == 0:\n    print('ESCAPED')", "PermissionError"),
    ("import multiprocessing\np = multiprocessing.Process(target=print, args=('ESCAPED',))\np.start()",
     "PermissionError"),
    ("import pty; pty.spawn(['/bin/sh', '-c', 'echo ESCAPED'])", "OSError"),
], ids=["subprocess-run", "check-output", "popen", "execv", "execve", "posix-spawn", "fork", "multiprocessing",
        "pty"])
def test_starting_a_program_or_process_is_refused(grade: GradeFn, host_paths: list[Path], code: str,
                                                  fragment: str) -> None:
    marker = host_paths[1]
    g = grade(code.format(marker=marker) + "\n" + SOLUTION)
    assert_error(g, fragment)
    assert "ESCAPED" not in g.stdout
    assert not marker.exists(), f"a program ran and wrote {marker}"


def test_os_system_runs_nothing_and_reports_failure(grade: GradeFn, host_paths: list[Path]) -> None:
    marker = host_paths[1]
    # os.system raises nothing: glibc cannot spawn the shell and returns 127 << 8.
    code = f"import os\nstatus = os.system('echo ESCAPED; echo ESCAPED > {marker}')\n" + SOLUTION
    g = grade(code, checks=[Check("os.WEXITSTATUS(status)")], extra=[{"kind": "int", "value": 127}])
    assert_passed(g)
    assert "ESCAPED" not in g.stdout
    assert not marker.exists(), f"a shell ran and wrote {marker}"


def test_fork_bomb_is_refused_at_the_first_fork(grade: GradeFn) -> None:
    g = grade("import os\nwhile True:\n    os.fork()\n")
    assert_error(g, "PermissionError")
    assert g.error_line == 3


@pytest.mark.parametrize("code", [
    "import threading, time\nthreads = [threading.Thread(target=time.sleep, args=(30,)) for _ in range(10_000)]\n"
    "for t in threads:\n    t.start()\n",
    "import threading\nthreading.stack_size(64 * 1024)\nstop = threading.Event()\nkept = []\n"
    "while True:\n    t = threading.Thread(target=stop.wait)\n    t.start()\n    kept.append(t)\n",
], ids=["ten-thousand", "small-stacks"])
def test_thread_flood_is_stopped(grade: GradeFn, code: str) -> None:
    g = grade(code)
    assert_error(g, "RuntimeError: can't start new thread")


# -- network -----------------------------------------------------------------------
@pytest.fixture
def redis_key() -> Iterator[tuple[redis.Redis, str]]:
    client = redis.Redis(host="127.0.0.1", port=6379, db=0, socket_timeout=5)
    assert client.ping(), "this test needs the real Redis on 127.0.0.1:6379"
    key = f"grader-test-escape-{uuid.uuid4().hex}"
    yield client, key
    client.delete(key)
    client.close()


@pytest.mark.parametrize("code", [
    # The Python socket API.
    "import socket\ns = socket.create_connection(('127.0.0.1', 6379), timeout=1)\n"
    "s.sendall(b'SET {key} escaped\\r\\n')\nprint(s.recv(100))\n",
    # Straight to libc, past Python's socket module.
    "import ctypes, os, struct, socket\nlibc = ctypes.CDLL(None, use_errno=True)\nfd = libc.socket(2, 1, 0)\n"
    "if fd < 0:\n    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))\n"
    "addr = struct.pack('<HH4s8x', 2, socket.htons(6379), bytes([127, 0, 0, 1]))\n"
    "if libc.connect(fd, addr, len(addr)) < 0:\n"
    "    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))\n"
    "libc.write(fd, b'SET {key} escaped\\r\\n', len(b'SET {key} escaped\\r\\n'))\n",
    # The raw system calls (41 socket, 42 connect on x86_64), then socket's x32 alias.
    "import ctypes, os, struct, socket\nlibc = ctypes.CDLL(None, use_errno=True)\n"
    "addr = struct.pack('<HH4s8x', 2, socket.htons(6379), bytes([127, 0, 0, 1]))\n"
    "msg = b'SET {key} escaped\\r\\n'\n"
    "for nr in (41, 0x40000000 | 41):\n"
    "    fd = libc.syscall(nr, 2, 1, 0)\n"
    "    if fd >= 0 and libc.syscall(42, fd, addr, len(addr)) == 0:\n"
    "        libc.write(fd, msg, len(msg))\n"
    "    print(nr, fd, ctypes.get_errno())\n"
    "raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))\n",
], ids=["socket-module", "libc", "raw-syscall"])
def test_redis_on_localhost_is_unreachable(grade: GradeFn, redis_key: tuple[redis.Redis, str], code: str) -> None:
    client, key = redis_key
    g = grade(code.format(key=key))
    # The socket module meets seccomp (EPERM); libc through ctypes meets the in-process guard first.
    # (Seccomp refusing the raw calls themselves: tests/sandbox/test_seccomp_filter.py, installed for real.)
    assert_error(g, "Operation not permitted" if "ctypes" not in code else GUARD_CTYPES)
    assert client.exists(key) == 0, f"hostile code set the Redis key {key}"


@pytest.mark.parametrize("code", [
    "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.sendto(b'x', ('127.0.0.1', 53))\n",
    "import socket\ns = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)\ns.connect(('::1', 6379))\n",
    "import socket\ns = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\ns.connect('/run/redis.sock')\n",
    "import socket\ns = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\ns.connect('\\0abstract-escape')\n",
    "import socket\na, b = socket.socketpair()\n",
    "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\ns.bind(('0.0.0.0', 8765))\ns.listen()\n",
    "import socket\nsocket.getaddrinfo('example.com', 80)\n",
    "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:8000/', timeout=1)\n",
], ids=["udp", "tcp-ipv6", "unix", "unix-abstract", "socketpair", "listen", "dns", "http"])
def test_sockets_of_every_family_are_refused(grade: GradeFn, code: str) -> None:
    g = grade(code + SOLUTION)
    assert g.status == "error", describe(g)
    # socket(2) is refused (EPERM); name resolution fails before any packet could leave.
    assert g.error is not None and any(
        s in g.error for s in ("Operation not permitted", "gaierror", "URLError")), describe(g)


# -- resources ---------------------------------------------------------------------------
@pytest.mark.parametrize("code", [
    "blob = bytearray(10 ** 10)",
    "s = 'x' * (10 ** 10)",
    "hoard = []\nwhile True:\n    hoard.append(bytearray(10 ** 6))",
    "import numpy as np\na = np.ones(10 ** 10)",
], ids=["bytearray", "str", "growing-list", "numpy"])
def test_python_memory_bomb_hits_the_memory_limit(grade: GradeFn, code: str) -> None:
    g = grade(code + "\n" + SOLUTION)
    assert g.status == "memory_limit", describe(g)
    assert "128 MB" in (g.error or "")


@pytest.mark.parametrize("code", [
    "import torch\na = torch.ones(10 ** 10)",
    "import torch\na = torch.randn(8192, 8192)",
    "import torch\nhoard = []\nwhile True:\n    hoard.append(torch.ones(10 ** 6))",
    "import torch\nx = torch.ones(4096, requires_grad=True)\nouts = []\nwhile True:\n    outs.append(x.outer(x) * 2)",
], ids=["ones", "randn", "growing-list", "autograd-graph"])
def test_torch_memory_bomb_hits_the_memory_limit(grade: GradeFn, code: str) -> None:
    g = grade(code + "\n" + SOLUTION)
    assert g.status == "memory_limit", describe(g)
    assert "128 MB" in (g.error or "")


def test_busy_loop_times_out_on_cpu(grade: GradeFn) -> None:
    g = grade("while True:\n    pass\n", limits=LONG_WALL)
    assert g.status == "timeout", describe(g)
    assert "CPU time" in (g.error or "")


@pytest.mark.parametrize("code", [
    "import time\ntime.sleep(60)",
    "import threading\nthreading.Event().wait()",
    "import signal\nsignal.pause()",
    "import select\nselect.select([], [], [])",
], ids=["sleep", "event", "pause", "select"])
def test_waiting_forever_times_out_on_wall_clock(grade: GradeFn, code: str) -> None:
    g = grade(code + "\n" + SOLUTION, limits=SHORT_WALL)
    assert g.status == "timeout", describe(g)
    assert "1 s time limit" in (g.error or "")


@pytest.mark.parametrize("code", [
    "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)",
    "import signal\nsignal.signal(signal.SIGXCPU, lambda *a: None)",
    "import signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_DFL)",
    "import _signal\n_signal.signal(2, lambda *a: None)",
], ids=["ignore-xcpu", "catch-xcpu", "default-xfsz", "private-module"])
def test_changing_signal_handlers_is_refused(grade: GradeFn, code: str) -> None:
    g = grade(code + "\n" + SOLUTION)
    assert_error(g, "Refused: the grader does not allow changing signal handlers")


def test_blocking_cpu_signals_still_times_out(grade: GradeFn) -> None:
    # Soft limit = hard limit: the CPU limit is a SIGKILL, which no mask holds back.
    g = grade("import signal\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGXCPU, signal.SIGTERM})\n"
              "while True:\n    pass\n", limits=LONG_WALL)
    assert g.status == "timeout", describe(g)
    assert "CPU time" in (g.error or "")


@pytest.mark.parametrize("code", [
    "while True:\n    print('x' * 1000)",
    "import sys\nwhile True:\n    sys.stderr.write('e' * 4096)",
    "import os\nwhile True:\n    os.write(1, b'w' * 65536)",
    "print('x' * (4 << 20))",
], ids=["print", "stderr", "os-write", "one-line"])
def test_output_flood_hits_the_output_limit(grade: GradeFn, code: str) -> None:
    g = grade(code + "\n" + SOLUTION)
    assert g.status == "output_limit", describe(g)
    assert "1 MiB" in (g.error or "")
    assert len(g.stdout.split("\n[output truncated")[0]) <= 32 << 10, "more output than the 32 KiB kept"
    assert "[output truncated:" in g.stdout


CLEAN_WRITER = "with open('after.txt', 'w') as fh:\n    fh.write('z' * 100_000)\n" + SOLUTION


@pytest.mark.parametrize("code", [
    # One file past RLIMIT_FSIZE (16 MiB): EFBIG.
    "with open('big', 'wb') as fh:\n    while True:\n        fh.write(b'x' * 10 ** 6)",
    # Many files under the size cap: the scratch tmpfs fills up (ENOSPC).
    "i = 0\nwhile True:\n    with open(f'f{i}', 'wb') as fh:\n        fh.write(b'x' * (15 << 20))\n    i += 1",
    # The same, keeping every file open.
    "kept = []\ni = 0\nwhile True:\n    kept.append(open(f'f{i}', 'wb'))\n    kept[-1].write(b'x' * (15 << 20))\n"
    "    kept[-1].flush()\n    i += 1",
    # Empty files and directories until the tmpfs runs out of inodes (ENOSPC).
    "i = 0\nwhile True:\n    open(f'f{i}', 'wb').close()\n    i += 1",
    "import os\ni = 0\nwhile True:\n    os.mkdir(f'd{i}')\n    i += 1",
], ids=["one-file", "many-files", "open-files", "inodes", "directories"])
def test_disk_fill_hits_the_output_limit_and_the_next_job_can_write(grade: GradeFn, code: str) -> None:
    g = grade(code)
    assert g.status == "output_limit", describe(g)
    assert "16 MiB" in (g.error or "")
    # The filled scratch folder must not leak into the next jobs: they can still write.
    for _ in range(2):
        assert_passed(grade(CLEAN_WRITER))


# -- what of the host shows through -------------------------------------------------------
@pytest.fixture
def host_file() -> Iterator[Path]:
    """A file that exists on the host, in the project's own folder (where its SQLite database lives)."""
    path = Path(PROJECT_ROOT) / f"stat-probe-{uuid.uuid4().hex}.sqlite3"
    path.write_text("secret rows")
    yield path
    path.unlink()


def test_files_outside_the_minimal_root_do_not_exist_even_for_stat(grade: GradeFn, host_file: Path) -> None:
    paths = [str(host_file), "/etc/shadow", "/var/lib/postgresql", "/etc/passwd", "/root/.bashrc",
             f"{PROJECT_ROOT}/manage.py", f"{PROJECT_ROOT}/config"]
    assert all(os.path.exists(p) for p in paths if "bashrc" not in p), "the probe paths must exist on the host"
    code = "import os\nfor p in %r:\n    try:\n        os.stat(p)\n        print('SEEN', p)\n" \
           "    except OSError as exc:\n        print(type(exc).__name__)\n" % (paths,)
    g = grade(code + SOLUTION)
    assert_passed(g)
    assert g.stdout == "FileNotFoundError\n" * len(paths), describe(g)


HOST_ONLY = ["/var", "/home", "/tmp", "/sys", "/run", "/boot", "/opt", "/srv", "/mnt", "/bin", "/sbin",
             "/usr/bin", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev/zero", "/dev/shm", "/dev/tty",
             "/dev/random", "/proc/self"]


def test_the_root_holds_only_what_python_and_torch_need(grade: GradeFn) -> None:
    assert all(os.path.lexists(p) for p in HOST_ONLY if p != "/proc/self"), "the probe paths must exist on the host"
    # A directory that holds an exposed tree (a checkout and its virtualenv under /tmp) exists as a bare path to it.
    exposed = read_only_trees()
    probes = [p for p in HOST_ONLY if not any(tree.startswith(p + "/") for tree in exposed)]
    code = (f"import os\nprint([p for p in {probes!r} if os.path.lexists(p)])\n"
            "print(os.path.exists('/dev/null'), os.path.exists('/dev/urandom'), os.path.exists('/etc/ld.so.cache'))\n"
            "print(os.listdir('.'), os.getcwd())\n")
    g = grade(code + SOLUTION)
    assert_passed(g)
    assert g.stdout == "[]\nTrue True True\n[] /scratch\n", describe(g)


@pytest.mark.parametrize("path", ["/proc/self/mounts", "/proc/self/mountinfo", "/proc/1/mountinfo",
                                  "/sys/fs/cgroup", "/proc/self/maps"])
def test_the_mount_table_and_process_files_are_not_there(grade: GradeFn, path: str) -> None:
    g = grade(f"open({path!r}).read()\n" + SOLUTION)
    assert_error(g, "FileNotFoundError")


# -- memory held outside the address space, and the limits themselves ---------------------------------
@pytest.mark.parametrize("code, fragment", [
    ("import os\nfd = os.memfd_create('hoard')\nos.ftruncate(fd, 600 << 20)\n", "PermissionError"),
    ("from multiprocessing import shared_memory\nshared_memory.SharedMemory(create=True, size=600 << 20)\n",
     "FileNotFoundError"),
    ("import mmap\nm = mmap.mmap(-1, 600 << 20, flags=mmap.MAP_SHARED)\nm.write(b'x' * (600 << 20))\n",
     "OSError"),
    ("import os\nkeep = [os.pipe() for _ in range(30)]\nimport fcntl\nfcntl.fcntl(keep[0][1], 1031, 1 << 20)\n",
     "PermissionError"),
], ids=["memfd", "posix-shm", "shared-mmap", "pipe-resize"])
def test_memory_outside_the_budget_is_refused(grade: GradeFn, code: str, fragment: str) -> None:
    assert_error(grade(code + SOLUTION), fragment)


def test_limits_are_soft_equal_hard_and_cannot_be_changed(grade: GradeFn) -> None:
    code = """\
import resource
for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NOFILE"):
    which = getattr(resource, name)
    soft, hard = resource.getrlimit(which)
    tries = []
    for new in ((hard, hard), (soft - 1, soft - 1), (resource.RLIM_INFINITY, resource.RLIM_INFINITY)):
        try:
            resource.setrlimit(which, new)
            tries.append("CHANGED")
        except (ValueError, OSError) as exc:
            tries.append(type(exc).__name__)
    print(name, soft == hard, tries)
"""
    g = grade(code + SOLUTION)
    assert_passed(g)
    for line in g.stdout.splitlines():
        assert " True " in line and "CHANGED" not in line, describe(g)


@pytest.mark.parametrize("code", [
    "import os\nfor i in range(3000):\n    os.mkdir('d')\n    os.chdir('d')\n",
    "import os\nfor i in range(3000):\n    os.mkdir('d')\n    os.chdir('d')\n    open('f', 'w').write('x')\n",
    "import os\nos.makedirs('a/b/c')\nopen('a/b/c/f', 'w').write('x')\nos.chmod('a/b', 0)\nos.chmod('a', 0)\n",
    "import os\nos.symlink('loop', 'loop')\nos.mkdir('d')\nos.symlink('..', 'd/up')\n",
    "import os\nfor name in ('\\n', ' ', '-rf', '..f', 'x' * 255):\n    open(name, 'w').close()\n",
], ids=["3000-deep", "3000-deep-with-files", "unreadable-dirs", "symlink-loops", "odd-names"])
def test_scratch_folders_no_housekeeping_can_trip_on(grade: GradeFn, code: str) -> None:
    grade(code)  # whatever its verdict, the zygote must survive it (the grade fixture checks)
    for _ in range(2):
        assert_passed(grade(SOLUTION + "import os\nassert os.listdir('.') == []\n"))


# -- the parent and the sandbox itself ---------------------------------------------------
@pytest.mark.parametrize("code", [
    "import os; os.kill(os.getppid(), 9)",
    "import os; os.kill(1, 9)",
    "import os; os.kill(-1, 9)",
    "import os; os.killpg(1, 9)",
    "import os; os.kill({zygote_pid}, 9)",
    "import os; os.kill({test_pid}, 9)",
    "import os, signal; os.kill(os.getppid(), signal.SIGSTOP)",
    "import os, signal; os.pidfd_open(1)",
], ids=["kill-ppid", "kill-1", "kill-all", "killpg-1", "kill-zygote-host-pid", "kill-test-process", "stop-ppid",
        "pidfd-1"])
def test_killing_the_parent_is_refused(grade: GradeFn, sandbox: Sandbox, code: str) -> None:
    g = grade(code.format(zygote_pid=sandbox.zygote_pid, test_pid=os.getpid()) + "\n" + SOLUTION)
    assert_error(g, "Operation not permitted")


def test_killpg_of_the_parents_group_only_kills_the_child_itself(grade: GradeFn) -> None:
    # In the zygote's pid namespace the parent's group lies outside: getpgid() says
    # 0, and killpg(0) is the child's own group (its own session, set up by harden()).
    g = grade("import os\nprint(os.getpgid(os.getppid()), flush=True)\nos.killpg(os.getpgid(os.getppid()), 9)\n"
              + SOLUTION)
    assert_error(g, "SIGKILL")
    assert g.stdout == "0\n", describe(g)


@pytest.mark.parametrize("code", [
    "import ctypes\nctypes.string_at(0)",
    "import ctypes\nctypes.CDLL(None)",
    "import ctypes\nctypes.c_char.from_address(id(1))",
    "import torch\ntorch.ctypes.pythonapi.Py_Exit",
], ids=["string-at", "dlopen", "from-address", "torch-ctypes-pythonapi"])
def test_ctypes_is_refused(grade: GradeFn, code: str) -> None:
    g = grade(code + "\n" + SOLUTION)
    assert_error(g, "Refused", GUARD_CTYPES)


def test_a_crash_by_signal_is_an_error(grade: GradeFn) -> None:
    g = grade("import faulthandler\nfaulthandler._sigsegv()\n" + SOLUTION)
    assert_error(g, "SIGSEGV")


def test_abort_is_an_error(grade: GradeFn) -> None:
    g = grade("import os\nos.abort()\n" + SOLUTION)
    assert_error(g, "SIGABRT")


def test_os_exit_before_the_checks_is_an_error(grade: GradeFn) -> None:
    g = grade(SOLUTION + "import os\nos._exit(3)\n")
    assert_error(g, "exit status 3", "os._exit()")


@pytest.mark.parametrize("code", ["raise SystemExit(0)", "import sys\nsys.exit()", "exit()", "quit(3)"],
                         ids=["raise", "sys-exit", "exit", "quit"])
def test_system_exit_is_an_error(grade: GradeFn, code: str) -> None:
    g = grade(SOLUTION + code + "\n")
    assert_error(g, "called exit()", "SystemExit")


def test_closing_every_descriptor_is_an_error(grade: GradeFn) -> None:
    g = grade("import os\nos.closerange(0, 64)\n" + SOLUTION)
    assert_error(g, "ended the process")


def _forger(reference: list[dict[str, Any]]) -> str:
    """Code writing, on descriptors 0..100, a well-formed result frame claiming the right answers."""
    frame = {"v": 1, "phase": "done", "observations": reference, "cpu_ms": 1.0, "exec_ms": 1.0}
    schema.validate_frame(frame, len(reference))  # a frame the grader would accept as such
    return (
        "import os\n"
        f"blob = {protocol.encode(frame)!r}\n"
        "for fd in range(101):\n"
        "    try:\n"
        "        os.write(fd, blob)\n"
        "    except OSError:\n"
        "        pass\n"
    )


@pytest.mark.parametrize("ending", ["", "import os\nos._exit(0)\n"], ids=["then-continues", "then-exits"])
def test_forged_result_frame_never_passes_wrong_code(grade: GradeFn, reference: list[dict[str, Any]],
                                                     ending: str) -> None:
    g = grade(WRONG + _forger(reference) + ending)
    assert g.status != "passed"
    assert_error(g, "result channel")
    assert g.checks == []


def test_monkeypatched_torch_comparisons_do_not_pass_a_wrong_gradient(grade: GradeFn) -> None:
    code = WRONG + (
        "always = lambda *a, **k: True\n"
        "torch.allclose = torch.equal = always\n"
        "torch.isclose = lambda *a, **k: torch.tensor(True)\n"
        "torch.Tensor.__eq__ = always\n"
        "torch.Tensor.__ne__ = lambda *a, **k: False\n"
        "torch.testing.assert_close = lambda *a, **k: None\n"
        "assert torch.allclose(x.grad, torch.tensor(7.0)) and x.grad == 7\n"
    )
    g = grade(code)
    assert g.status == "failed", describe(g)
    assert g.score == 0.5
    failed = [c for c in g.checks if not c.passed]
    assert [c.name for c in failed] == ["x.grad"]
    assert "x.grad is 12.0, expected 7.0" in failed[0].message


def test_poisoned_global_state_does_not_reach_the_next_submission(grade: GradeFn) -> None:
    poison = (
        "import builtins, sys, torch\n"
        "torch.set_grad_enabled(False)\n"
        "torch.Tensor.backward = lambda *a, **k: None\n"
        "torch.autograd.backward = lambda *a, **k: None\n"
        "torch.autograd.grad = lambda *a, **k: (torch.tensor(0.0),)\n"
        "builtins.print = None\n"
        "sys.modules['math'] = None\n"
        "sys.modules['torch.autograd'] = None\n"
        "sys.modules['grader.sandbox.observe'] = None\n"
    )
    # The poisoned job itself: backward() is a no-op, so x.grad stays None.
    g = grade(poison + SOLUTION.replace("import torch\n", ""))
    assert g.status == "failed", describe(g)
    assert [c.name for c in g.checks if not c.passed] == ["x.grad"]
    # The next submissions run in fresh children forked from the untouched zygote.
    clean = SOLUTION + "import math\nprint(math.sqrt(4.0), torch.is_grad_enabled())\n"
    for _ in range(3):
        g = grade(clean)
        assert_passed(g)
        assert g.stdout == "2.0 True\n", describe(g)


# -- refused before running -----------------------------------------------------------------
class RefusingSandbox:
    """Stands in for a Sandbox: any attempt to run code fails the test."""

    def run(self, job: object) -> None:
        raise AssertionError("rejected code was handed to the sandbox")


@pytest.mark.parametrize("code, reason", [
    ("# " + "x" * MAX_CODE_BYTES + "\n" + SOLUTION, "64 KiB"),
    ("x = 1\x00\n" + SOLUTION, "NUL byte"),
    (b"x = '\xff\xfe'\n" + SOLUTION.encode(), "not valid UTF-8"),
    ("x = '\ud800'\n" + SOLUTION, "not valid UTF-8"),
], ids=["over-64KiB", "nul-byte", "non-utf8-bytes", "lone-surrogate"])
def test_unacceptable_code_is_rejected_without_running(code: str | bytes, reason: str) -> None:
    refusing: Any = RefusingSandbox()
    g = grade_code(refusing, code=code, setup="", checks=CHECKS, reference=[{"kind": "none"}] * 2, limits=LIMITS,
                   reveal_expected=True)
    assert g.status == "rejected", describe(g)
    assert reason in (g.error or ""), describe(g)
    assert g.checks == [] and g.stdout == ""


def test_code_of_exactly_64KiB_is_run(grade: GradeFn) -> None:
    code = SOLUTION + "#" * (MAX_CODE_BYTES - len(SOLUTION.encode()))
    assert len(code.encode()) == MAX_CODE_BYTES
    assert_passed(grade(code))


# -- and afterwards ------------------------------------------------------------------------
def test_zygote_that_ran_the_hostile_code_still_grades_a_correct_submission(grade: GradeFn, zygote: ZygoteWatch,
                                                                            sandbox: Sandbox) -> None:
    g = grade(SOLUTION)
    assert_passed(g)
    assert [c.passed for c in g.checks] == [True, True]
    assert sandbox.zygote_pid == zygote.pid and sandbox.restarts == zygote.restarts
