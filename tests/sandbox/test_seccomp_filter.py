"""The graded child's seccomp filter, built and run outside the sandbox.

Most tests run the real program (seccomp.build_filter) in a small classic-BPF
interpreter (tests/sandbox/bpf.py) on chosen seccomp_data: every known call
number, unnamed numbers, the x32 aliases, a foreign architecture and the
argument-checked calls with good and bad arguments. One test installs the
filter for real in a forked process and makes the calls through libc.
"""
from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import resource
import struct

import pytest

from grader.sandbox import seccomp
from grader.sandbox.syscalls import NUMBERS

from . import bpf

OWN_PID = 4242
OTHER_PID = 4243
PROGRAM = seccomp.build_filter(OWN_PID)

ALLOW = bpf.SECCOMP_RET_ALLOW
EPERM = bpf.SECCOMP_RET_ERRNO | errno.EPERM
ENOSYS = bpf.SECCOMP_RET_ERRNO | errno.ENOSYS
KILL = bpf.SECCOMP_RET_KILL_PROCESS

NULL = 0
POINTER = 0x7FFD_1234_5678
RLIMIT_AS = 9
TIOCSTI = 0x5412
TIOCGWINSZ = 0x5413
FIOCLEX = 0x5451
F_SETLK, F_SETOWN, F_SETSIG, F_SETOWN_EX = 6, 8, 10, 15
F_SETLEASE, F_NOTIFY, F_SETPIPE_SZ, F_ADD_SEALS = 1024, 1026, 1031, 1033
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
SIGKILL = 9
# Arguments that would reach every rule's "allowed" path if a rule ignored its checks.
BENIGN_ARGS = (0, 0, 0, 0, 0, 0)
HOSTILE_ARGS = (POINTER, POINTER, POINTER, POINTER, POINTER, POINTER)


def verdict(name: str | int, *args: int, arch: int = bpf.AUDIT_ARCH_X86_64, program: bytes = PROGRAM) -> int:
    nr = NUMBERS[name] if isinstance(name, str) else name
    return bpf.evaluate(program, nr, tuple(args), arch=arch)


def assert_verdict(expected: int, name: str | int, *args: int, arch: int = bpf.AUDIT_ARCH_X86_64,
                   program: bytes = PROGRAM) -> None:
    got = verdict(name, *args, arch=arch, program=program)
    assert got == expected, f"{name}{args}: {bpf.describe(got)}, expected {bpf.describe(expected)}"


# -- the tables -------------------------------------------------------------------------------
def test_every_listed_name_is_a_known_call_and_no_call_is_listed_twice() -> None:
    for table in (seccomp.ALLOWED, seccomp.ARG_RULES, seccomp.ENOSYS_CALLS, seccomp.REFUSED_NOTABLE):
        assert set(table) <= set(NUMBERS)
    assert not set(seccomp.ALLOWED) & set(seccomp.ARG_RULES)
    assert not (set(seccomp.ALLOWED) | set(seccomp.ARG_RULES)) & set(seccomp.REFUSED_NOTABLE)


def test_syscall_numbers_are_unique_and_include_the_newer_calls() -> None:
    assert len(set(NUMBERS.values())) == len(NUMBERS)
    assert NUMBERS["read"] == 0 and NUMBERS["clone"] == 56 and NUMBERS["clone3"] == 435
    for name, nr in {"statmount": 457, "listmount": 458, "lsm_get_self_attr": 459, "lsm_set_self_attr": 460,
                     "lsm_list_modules": 461, "mseal": 462, "setxattrat": 463, "getxattrat": 464,
                     "listxattrat": 465, "removexattrat": 466, "open_tree_attr": 467}.items():
        assert NUMBERS[name] == nr, name


def test_summary_names_the_allow_list() -> None:
    line = seccomp.summary()
    assert f"allow-list of {len(seccomp.ALLOWED)} calls" in line and "EPERM" in line
    assert "\n" not in line


# -- the program's shape ---------------------------------------------------------------------
def test_program_fits_the_kernel_and_ends_in_a_return() -> None:
    insns = bpf.decode(PROGRAM)
    assert len(insns) < bpf.MAX_INSNS
    assert insns[-1].code == bpf.BPF_RET | bpf.BPF_K and insns[-1].k == EPERM


def test_no_jump_is_longer_than_255_or_leaves_the_program() -> None:
    insns = bpf.decode(PROGRAM)
    for pc, insn in enumerate(insns):
        if insn.code & 0x07 == bpf.BPF_JMP:
            assert insn.code & 0xF0 != bpf.BPF_JA, "the builder uses no unconditional jumps"
            assert insn.jt <= seccomp.MAX_JUMP and insn.jf <= seccomp.MAX_JUMP
            assert pc + 1 + max(insn.jt, insn.jf) < len(insns)


def test_the_assembler_refuses_a_jump_past_255() -> None:
    far = seccomp.Label("far")
    items: list[seccomp.Item] = [seccomp.load(seccomp.OFFSET_NR), seccomp.jeq(1, jt=far)]
    items += [seccomp.ret(EPERM)] * (seccomp.MAX_JUMP + 1)
    items += [far, seccomp.ret(ALLOW)]
    with pytest.raises(ValueError, match="must be 0..255"):
        seccomp.assemble(items)
    near = items[:2] + [seccomp.ret(EPERM)] * seccomp.MAX_JUMP + [far, seccomp.ret(ALLOW)]
    assert bpf.run(seccomp.assemble(near), bpf.seccomp_data(1)) == ALLOW


def test_the_assembler_refuses_backward_unplaced_and_doubly_placed_labels() -> None:
    back = seccomp.Label("back")
    with pytest.raises(ValueError):
        seccomp.assemble([back, seccomp.jeq(1, jt=back), seccomp.ret(ALLOW)])
    with pytest.raises(ValueError, match="never placed"):
        seccomp.assemble([seccomp.jeq(1, jt=seccomp.Label("nowhere")), seccomp.ret(ALLOW)])
    twice = seccomp.Label("twice")
    with pytest.raises(ValueError, match="placed twice"):
        seccomp.assemble([twice, seccomp.ret(ALLOW), twice])


def test_the_assembler_refuses_a_program_over_the_kernel_cap() -> None:
    with pytest.raises(ValueError, match="at most 4096"):
        seccomp.assemble([seccomp.ret(ALLOW)] * (bpf.MAX_INSNS + 1))


def test_the_filter_embeds_the_childs_own_pid() -> None:
    assert seccomp.build_filter(OWN_PID) != seccomp.build_filter(OTHER_PID)
    assert verdict("kill", OTHER_PID, SIGKILL, program=seccomp.build_filter(OTHER_PID)) == ALLOW


# -- call numbers ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", seccomp.ALLOWED)
def test_allowed_calls_are_allowed_whatever_their_arguments(name: str) -> None:
    assert_verdict(ALLOW, name, *BENIGN_ARGS)
    assert_verdict(ALLOW, name, *HOSTILE_ARGS)


def test_every_other_known_call_is_refused_with_eperm() -> None:
    checked = set(seccomp.ALLOWED) | set(seccomp.ARG_RULES)
    wrong = {}
    for name in NUMBERS:
        if name in checked:
            continue
        expected = ENOSYS if name in seccomp.ENOSYS_CALLS else EPERM
        for args in (BENIGN_ARGS, HOSTILE_ARGS, (OWN_PID, OWN_PID, 0, 0, 0, 0)):
            got = verdict(name, *args)
            if got != expected:
                wrong[name] = bpf.describe(got)
    assert not wrong, wrong
    assert len(NUMBERS) - len(checked) > 300


def test_clone3_answers_enosys_so_glibc_falls_back_to_clone_which_is_refused() -> None:
    assert_verdict(ENOSYS, "clone3", POINTER, 88)
    thread_flags = 0x3D0F00  # CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID
    assert_verdict(EPERM, "clone", thread_flags, POINTER)
    assert_verdict(EPERM, "clone", 0x11)  # fork(): SIGCHLD


@pytest.mark.parametrize("name", sorted(seccomp.REFUSED_NOTABLE))
def test_notable_calls_are_refused(name: str) -> None:
    expected = ENOSYS if name in seccomp.ENOSYS_CALLS else EPERM
    for args in (BENIGN_ARGS, HOSTILE_ARGS, (OWN_PID, 0, 0, 0, 0, 0)):
        assert_verdict(expected, name, *args)


def test_numbers_without_a_name_are_refused() -> None:
    # Future calls (470 and up), the reserved gap 387..423, the x32-only range 512..547 without the x32 bit.
    for nr in (*range(470, 601), 1000, 4095, 0x3FFFFFFF, *range(387, 424), *range(512, 548)):
        assert nr not in NUMBERS.values()
        assert_verdict(EPERM, nr)


@pytest.mark.parametrize("name", [*seccomp.ALLOWED, "read", "write", "execve"])
def test_x32_aliases_are_refused(name: str) -> None:
    assert_verdict(EPERM, NUMBERS[name] | seccomp.X32_SYSCALL_BIT)


def test_negative_and_huge_numbers_are_refused() -> None:
    for nr in (-1, 0xFFFFFFFF, 0x80000000, 0x40000000 + 512):
        assert_verdict(EPERM, nr)


@pytest.mark.parametrize("arch", [bpf.AUDIT_ARCH_I386, bpf.AUDIT_ARCH_AARCH64, 0, 0x3E])
def test_another_architecture_kills_the_process(arch: int) -> None:
    for name in ("read", "write", "exit_group", "getpid"):
        assert_verdict(KILL, name, arch=arch)


# -- argument-checked calls --------------------------------------------------------------------
def test_kill_reaches_only_the_child_itself_or_its_own_group() -> None:
    assert_verdict(ALLOW, "kill", OWN_PID, SIGKILL)
    assert_verdict(ALLOW, "kill", 0, SIGKILL)  # its own process group: it leads its own session
    for pid in (OTHER_PID, 1, -1, -OWN_PID, -OTHER_PID, 2):
        assert_verdict(EPERM, "kill", pid, SIGKILL)


@pytest.mark.parametrize("name", ["tgkill", "tkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"])
def test_directed_signals_reach_only_the_child_itself(name: str) -> None:
    assert_verdict(ALLOW, name, OWN_PID, OWN_PID, SIGKILL)
    for pid in (0, OTHER_PID, 1, -1):
        assert_verdict(EPERM, name, pid, OWN_PID, SIGKILL)


def test_prlimit64_only_reads_the_childs_own_limits() -> None:
    assert_verdict(ALLOW, "prlimit64", 0, RLIMIT_AS, NULL, POINTER)
    assert_verdict(ALLOW, "prlimit64", OWN_PID, RLIMIT_AS, NULL, POINTER)
    assert_verdict(ALLOW, "prlimit64", 0, RLIMIT_AS, NULL, NULL)


@pytest.mark.parametrize("new_limit", [POINTER, 0x1000, 1 << 32, (1 << 64) - 1],
                         ids=["pointer", "low-half", "high-half-only", "all-ones"])
def test_prlimit64_with_a_new_limit_is_refused(new_limit: int) -> None:
    assert_verdict(EPERM, "prlimit64", 0, RLIMIT_AS, new_limit, NULL)
    assert_verdict(EPERM, "prlimit64", OWN_PID, RLIMIT_AS, new_limit, POINTER)


def test_prlimit64_on_another_process_is_refused() -> None:
    for pid in (OTHER_PID, 1, -1):
        assert_verdict(EPERM, "prlimit64", pid, RLIMIT_AS, NULL, POINTER)


def test_setrlimit_and_getrlimit_entry_points_are_refused() -> None:
    assert_verdict(EPERM, "setrlimit", RLIMIT_AS, POINTER)
    assert_verdict(EPERM, "getrlimit", RLIMIT_AS, POINTER)  # glibc reads through prlimit64


def test_ioctl_allows_only_tcgets() -> None:
    assert_verdict(ALLOW, "ioctl", 3, seccomp.TCGETS, POINTER)
    for request in (TIOCSTI, TIOCGWINSZ, FIOCLEX, 0, 0xC0185879, 0x40049409):
        assert_verdict(EPERM, "ioctl", 3, request, POINTER)


def test_fcntl_allows_only_duplicating_and_descriptor_flags() -> None:
    for command in (seccomp.F_DUPFD, seccomp.F_GETFD, seccomp.F_SETFD, seccomp.F_GETFL, seccomp.F_SETFL,
                    seccomp.F_DUPFD_CLOEXEC):
        assert_verdict(ALLOW, "fcntl", 3, command, 0)
    for command in (F_SETLK, F_SETOWN, F_SETSIG, F_SETOWN_EX, F_SETLEASE, F_NOTIFY, F_SETPIPE_SZ, F_ADD_SEALS):
        assert_verdict(EPERM, "fcntl", 3, command, OTHER_PID)


def test_prctl_allows_only_reading_the_bounding_set() -> None:
    assert_verdict(ALLOW, "prctl", seccomp.PR_CAPBSET_READ, 21)
    for option in (PR_SET_SECCOMP, PR_SET_NO_NEW_PRIVS, PR_SET_DUMPABLE, 0, 0x59616D61):
        assert_verdict(EPERM, "prctl", option, 2, POINTER)


def test_sched_getaffinity_reads_only_the_childs_own_cpu_set() -> None:
    assert_verdict(ALLOW, "sched_getaffinity", 0, 128, POINTER)
    assert_verdict(ALLOW, "sched_getaffinity", OWN_PID, 128, POINTER)
    assert_verdict(EPERM, "sched_getaffinity", OTHER_PID, 128, POINTER)


# -- installed for real ------------------------------------------------------------------------
LIVE_PROBE_SIZE = 1 << 16


def _live_probe() -> dict[str, object]:
    """Runs in the forked child after the filter is installed: what each call answers."""
    import threading

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long

    def call(name: str, *args: object) -> int:
        ctypes.set_errno(0)
        result = libc.syscall(ctypes.c_long(NUMBERS[name]), *args)
        return 0 if result >= 0 else ctypes.get_errno()

    results: dict[str, object] = {
        "socket": call("socket", 2, 1, 0),  # AF_INET, SOCK_STREAM
        "memfd_create": call("memfd_create", b"x", 0),
        "shmget": call("shmget", 0, 4096, 0o1600),  # IPC_PRIVATE, IPC_CREAT | 0600
        "personality": call("personality", ctypes.c_ulong(0xFFFFFFFF)),
        "listmount": call("listmount", None, None, ctypes.c_size_t(0), 0),
        "clone3": call("clone3", None, ctypes.c_size_t(0)),
        "kill_init": call("kill", 1, 0),
        "kill_self": call("kill", os.getpid(), 0),
        "getpid_matches": libc.syscall(ctypes.c_long(NUMBERS["getpid"])) == os.getpid(),
        "getrlimit": resource.getrlimit(resource.RLIMIT_NOFILE)[0] > 0,
    }
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))  # not even raising: any new limit
        results["setrlimit"] = "set"
    except (OSError, ValueError) as exc:  # CPython turns setrlimit's EPERM into ValueError
        results["setrlimit"] = str(exc)
    try:
        threading.Thread(target=int).start()
        results["thread"] = "started"
    except RuntimeError as exc:
        results["thread"] = str(exc)
    try:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        results["fork"] = 0
    except OSError as exc:
        results["fork"] = exc.errno
    return results


@pytest.mark.skipif(platform.machine() != "x86_64" or not seccomp.supported(), reason="x86_64 Linux only")
def test_installed_filter_refuses_for_real() -> None:
    from grader.sandbox import _linux

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read_end)
            _linux.prctl(_linux.PR_SET_NO_NEW_PRIVS, 1)
            seccomp.install(os.getpid())
            blob = json.dumps(_live_probe()).encode()
            os.write(write_end, struct.pack("!I", len(blob)) + blob)
            code = 0
        except BaseException as exc:  # noqa: BLE001 - report anything, then leave
            os.write(write_end, struct.pack("!I", 0) + repr(exc).encode()[:1000])
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read(LIVE_PROBE_SIZE)
    _, status = os.waitpid(pid, 0)
    (size,) = struct.unpack("!I", data[:4])
    assert size and os.waitstatus_to_exitcode(status) == 0, data[4:].decode(errors="replace")
    results = json.loads(data[4:4 + size])
    for name in ("socket", "memfd_create", "shmget", "personality", "listmount", "kill_init", "fork"):
        assert results[name] == errno.EPERM, (name, results)
    assert results["clone3"] == errno.ENOSYS, results
    assert results["kill_self"] == 0 and results["getpid_matches"] is True and results["getrlimit"] is True
    assert results["thread"] == "can't start new thread", results
    assert results["setrlimit"] == "not allowed to raise maximum limit", results
