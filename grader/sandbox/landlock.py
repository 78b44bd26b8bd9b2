"""Landlock: the graded child reads only what Python and PyTorch need and writes
only its own scratch folder; with ABI 4+ it cannot bind or connect TCP, and with
ABI 6+ it cannot signal processes or reach abstract Unix sockets outside itself.

Rules are built from paths opened with O_PATH, so the ruleset describes the
files that were there when the child was prepared, not whatever a path may
later resolve to.
"""
from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable

from . import _linux

LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5

NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1

SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

FILE_ONLY_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
READ = READ_FILE | READ_DIR | EXECUTE
SCRATCH = (
    READ | WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SYM | TRUNCATE
)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def abi_version() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is unavailable."""
    try:
        return _linux.syscall(
            _linux.SYS_landlock_create_ruleset, None, ctypes.c_size_t(0),
            ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION),
        )
    except OSError:
        return 0


def _handled_fs(abi: int) -> int:
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def restrict(read_paths: Iterable[str], write_paths: Iterable[str]) -> int:
    """Restrict the calling process to the given paths; returns the ABI used.

    Paths that do not exist are skipped. Requires no_new_privs (or CAP_SYS_ADMIN).
    """
    abi = abi_version()
    if abi < 1:
        raise OSError(38, "Landlock is not available on this kernel")
    handled_fs = _handled_fs(abi)
    attr = _RulesetAttr(
        handled_access_fs=handled_fs,
        handled_access_net=(NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 else 0,
        scoped=(SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0,
    )
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    ruleset = _linux.syscall(
        _linux.SYS_landlock_create_ruleset, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0)
    )
    try:
        for path, rights in [(p, READ) for p in read_paths] + [(p, SCRATCH) for p in write_paths]:
            _add_path_rule(ruleset, path, rights & handled_fs)
        _linux.syscall(_linux.SYS_landlock_restrict_self, ctypes.c_int(ruleset), ctypes.c_uint32(0))
    finally:
        os.close(ruleset)
    return abi


def _add_path_rule(ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if not os.path.isdir(path):
            rights &= FILE_ONLY_RIGHTS
        rule = _PathBeneathAttr(allowed_access=rights, parent_fd=fd)
        _linux.syscall(
            _linux.SYS_landlock_add_rule, ctypes.c_int(ruleset), ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH),
            ctypes.byref(rule), ctypes.c_uint32(0),
        )
    finally:
        os.close(fd)
