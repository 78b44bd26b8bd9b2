"""A seccomp-BPF filter for the graded child (x86_64).

A deny list, not an allow list: PyTorch and the standard library make a wide and
changing set of calls, while what a learner's code must never do is short and
stable. Denied calls fail with EPERM, so hostile code gets an ordinary Python
exception with a line number instead of a mysterious crash. Everything that
creates a process, runs a program, opens a socket, touches another process or
changes the kernel's view of the world is on the list. Threads stay allowed
(`clone` with CLONE_THREAD and no namespace flags); `clone3` answers ENOSYS so
glibc falls back to `clone`, whose flags a filter can read.
"""
from __future__ import annotations

import ctypes
import errno
import struct

from . import _linux

AUDIT_ARCH_X86_64 = 0xC000003E

# BPF opcodes
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06

SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000

_NR = 0
_ARCH = 4


def _arg_lo(i: int) -> int:
    return 16 + 8 * i


# name -> x86_64 number; always refused with EPERM.
DENIED: dict[str, int] = {
    "fork": 57, "vfork": 58, "execve": 59, "execveat": 322,
    "socket": 41, "socketpair": 53, "connect": 42, "bind": 49, "listen": 50,
    "accept": 43, "accept4": 288,
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
    "mount": 165, "umount2": 166, "unshare": 272, "setns": 308, "pivot_root": 155,
    "chroot": 161, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
    "fsmount": 432, "fspick": 433, "mount_setattr": 442,
    "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "keyctl": 250, "add_key": 248, "request_key": 249,
    "kexec_load": 246, "kexec_file_load": 320, "init_module": 175, "finit_module": 313,
    "delete_module": 176, "reboot": 169, "swapon": 167, "swapoff": 168, "acct": 163,
    "quotactl": 179, "open_by_handle_at": 304, "name_to_handle_at": 303,
    "iopl": 172, "ioperm": 173, "modify_ldt": 154, "syslog": 103,
    "settimeofday": 164, "clock_settime": 227, "clock_adjtime": 305, "adjtimex": 159,
    "sethostname": 170, "setdomainname": 171, "kcmp": 312,
    "pidfd_open": 434, "pidfd_send_signal": 424, "pidfd_getfd": 438,
    "process_madvise": 440, "process_mrelease": 448,
    "tkill": 200, "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297,
    "fanotify_init": 300, "lookup_dcookie": 212, "vhangup": 153,
    "migrate_pages": 256, "move_pages": 279, "get_robust_list": 274,
    "setuid": 105, "setgid": 106, "setreuid": 113, "setregid": 114, "setresuid": 117,
    "setresgid": 119, "setgroups": 116, "setfsuid": 122, "setfsgid": 123, "capset": 126,
    "mknod": 133, "mknodat": 259, "setpriority": 141, "ioprio_set": 251,
}
# Calls whose first argument names a process: allowed only on the caller itself
# (0 or its own pid), so one graded child can never reach another.
SELF_ONLY_ARG0: dict[str, int] = {
    "kill": 62, "prlimit64": 302, "sched_setaffinity": 203, "sched_setscheduler": 144,
    "sched_setparam": 142,
}
SYS_tgkill = 234
SYS_clone = 56
SYS_clone3 = 435
CLONE_THREAD = 0x00010000
CLONE_NAMESPACES = 0x7E020000 | 0x80  # NEWNS, NEWCGROUP..NEWNET, NEWTIME

_X32_SYSCALL_BIT = 0x40000000


def _stmt(code: int, k: int) -> bytes:
    return struct.pack("HBBI", code, 0, 0, k & 0xFFFFFFFF)


def _jump(code: int, k: int, jt: int, jf: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k & 0xFFFFFFFF)


def build_filter(own_pid: int) -> bytes:
    """The BPF program, as raw sock_filter structs, for a child whose pid is own_pid."""
    deny = SECCOMP_RET_ERRNO | errno.EPERM
    enosys = SECCOMP_RET_ERRNO | errno.ENOSYS
    prog: list[bytes] = []

    prog.append(_stmt(_LD_W_ABS, _ARCH))
    prog.append(_jump(_JEQ_K, AUDIT_ARCH_X86_64, 1, 0))
    prog.append(_stmt(_RET_K, SECCOMP_RET_KILL_PROCESS))
    prog.append(_stmt(_LD_W_ABS, _NR))
    # x32 ABI numbers alias the 64-bit ones: refuse them all.
    prog.append(_jump(_JGE_K, _X32_SYSCALL_BIT, 0, 1))
    prog.append(_stmt(_RET_K, deny))

    for nr in sorted(set(DENIED.values())):
        prog.append(_jump(_JEQ_K, nr, 0, 1))
        prog.append(_stmt(_RET_K, deny))

    prog.append(_jump(_JEQ_K, SYS_clone3, 0, 1))
    prog.append(_stmt(_RET_K, enosys))

    # clone: a thread (CLONE_THREAD, no namespace flags) or nothing.
    prog.append(_jump(_JEQ_K, SYS_clone, 0, 5))
    prog.append(_stmt(_LD_W_ABS, _arg_lo(0)))
    prog.append(_jump(_JSET_K, CLONE_NAMESPACES, 2, 0))
    prog.append(_jump(_JSET_K, CLONE_THREAD, 0, 1))
    prog.append(_stmt(_RET_K, SECCOMP_RET_ALLOW))
    prog.append(_stmt(_RET_K, deny))

    # tgkill: only to threads of this process.
    prog.append(_jump(_JEQ_K, SYS_tgkill, 0, 4))
    prog.append(_stmt(_LD_W_ABS, _arg_lo(0)))
    prog.append(_jump(_JEQ_K, own_pid, 0, 1))
    prog.append(_stmt(_RET_K, SECCOMP_RET_ALLOW))
    prog.append(_stmt(_RET_K, deny))

    for nr in SELF_ONLY_ARG0.values():
        prog.append(_jump(_JEQ_K, nr, 0, 5))
        prog.append(_stmt(_LD_W_ABS, _arg_lo(0)))
        prog.append(_jump(_JEQ_K, own_pid, 1, 0))
        prog.append(_jump(_JEQ_K, 0, 0, 1))
        prog.append(_stmt(_RET_K, SECCOMP_RET_ALLOW))
        prog.append(_stmt(_RET_K, deny))

    prog.append(_stmt(_RET_K, SECCOMP_RET_ALLOW))
    return b"".join(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def supported() -> bool:
    return _linux.ARCH == "x86_64"


def install(own_pid: int) -> None:
    """Install the filter on the calling (single-threaded) process. Irreversible."""
    if not supported():
        raise OSError(errno.ENOTSUP, f"seccomp filter not written for {_linux.ARCH}")
    program = build_filter(own_pid)
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    _linux.prctl(_linux.PR_SET_SECCOMP, _linux.SECCOMP_MODE_FILTER, ctypes.addressof(fprog))
