"""Thin ctypes access to the Linux calls the sandbox needs (x86_64).

Python 3.11 has no os.unshare, no prctl, no seccomp and no Landlock bindings, so
these few calls go through libc's syscall(2). Every wrapper raises OSError with
errno on failure, like the os module does.
"""
from __future__ import annotations

import ctypes
import os
import platform

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

ARCH = platform.machine()

# x86_64 syscall numbers used by the isolation layers themselves.
SYS_open_tree = 428
SYS_move_mount = 429
SYS_landlock_create_ruleset = 444
SYS_landlock_add_rule = 445
SYS_landlock_restrict_self = 446
SYS_close_range = 436
SYS_pivot_root = 155
SYS_mount_setattr = 442

# clone/unshare flags
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount flags
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 0x2

# mount_setattr attributes
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
AT_EMPTY_PATH = 0x1000

# open_tree / move_mount
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
AT_RECURSIVE = 0x8000
AT_FDCWD = -100
MOVE_MOUNT_F_EMPTY_PATH = 0x00000004

# prctl options
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_SET_SECCOMP = 22
PR_GET_SECCOMP = 21
PR_SET_CHILD_SUBREAPER = 36
SECCOMP_MODE_FILTER = 2


def _check(result: int) -> int:
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def syscall(number: int, *args: object) -> int:
    return _check(libc.syscall(ctypes.c_long(number), *args))


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(
        libc.prctl(
            ctypes.c_int(option),
            ctypes.c_ulong(arg2),
            ctypes.c_ulong(arg3),
            ctypes.c_ulong(arg4),
            ctypes.c_ulong(arg5),
        )
    )


def unshare(flags: int) -> None:
    _check(libc.unshare(ctypes.c_int(flags)))


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)))


def umount(target: str, flags: int = 0) -> None:
    _check(libc.umount2(target.encode(), ctypes.c_int(flags)))


def pivot_root(new_root: str, put_old: str) -> None:
    syscall(SYS_pivot_root, new_root.encode(), put_old.encode())


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr(fd: int, attr_set: int) -> None:
    """Set mount attributes on the detached tree fd refers to, and every mount below it."""
    attr = _MountAttr(attr_set=attr_set)
    syscall(SYS_mount_setattr, ctypes.c_int(fd), b"", ctypes.c_uint(AT_EMPTY_PATH | AT_RECURSIVE),
            ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)))


def open_tree(path: str, flags: int) -> int:
    return syscall(SYS_open_tree, ctypes.c_int(AT_FDCWD), path.encode(), ctypes.c_uint(flags))


def move_mount(from_fd: int, to_path: str) -> None:
    syscall(
        SYS_move_mount,
        ctypes.c_int(from_fd),
        b"",
        ctypes.c_int(AT_FDCWD),
        to_path.encode(),
        ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH),
    )


def close_range(first: int) -> None:
    """Close every descriptor >= first (falls back to a loop on old kernels)."""
    try:
        syscall(SYS_close_range, ctypes.c_uint(first), ctypes.c_uint(0xFFFFFFFF), ctypes.c_uint(0))
    except OSError:
        os.closerange(first, os.sysconf("SC_OPEN_MAX"))


MADV_HUGEPAGE = 14
MADV_COLLAPSE = 25  # Linux 6.1+


def madvise(address: int, length: int, advice: int) -> None:
    _check(libc.madvise(ctypes.c_void_p(address), ctypes.c_size_t(length), ctypes.c_int(advice)))


def setgroups_empty() -> None:
    _check(libc.setgroups(ctypes.c_size_t(0), None))
