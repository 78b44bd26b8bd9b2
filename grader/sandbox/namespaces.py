"""Isolation layer: namespaces and the filesystem a graded child can see.

Two levels, both as root:

* The zygote (`enter_zygote_namespaces`, `enter_minimal_root`) moves once into
  new pid and mount namespaces, becoming pid 1 of its own pid namespace, and
  then pivots into a *minimal root*: an empty read-only tmpfs holding read-only,
  nosuid bind mounts of exactly the directories the interpreter, the standard
  library and torch are loaded from (plus the system library directories they
  link against and `/etc/ld.so.cache`), `/dev/null`, `/dev/urandom`, a private
  `/proc` and an empty `/work` mount point. Nothing else of the host exists in
  there: `stat()` of the project's database, PostgreSQL's data directory or
  `/etc/shadow` is ENOENT, not EACCES. The template and every child live in it.

* Each child (`isolate_child`) unshares new mount, network, IPC and UTS
  namespaces, mounts its own size-capped tmpfs on `/work` as its scratch folder
  and detaches `/proc`. When the child dies its mount namespace, and with it the
  scratch tmpfs and everything written there, is freed by the kernel: nothing
  is left for the zygote to remove, so no learner-made file tree can trip it.
"""
from __future__ import annotations

import os
import signal
import site
import sysconfig
import sys
from dataclasses import dataclass, field

from . import _linux

SCRATCH = "/scratch"  # must not hold any exposed tree (a checkout under /work, say)
STAGING = "/tmp"  # any existing directory: the new root is assembled on a tmpfs mounted over it
OLD_ROOT = ".old-root"
SYSTEM_LIBRARY_DIRS = ("/usr/lib", "/usr/lib64", "/usr/local/lib")
# Top-level symlinks of merged-/usr systems (/lib -> usr/lib): recreated, so that
# library paths in ld.so.cache resolve in the minimal root as they do on the host.
SYSTEM_LINKS = ("/lib", "/lib64", "/lib32", "/libx32")
SYSTEM_FILES = ("/etc/ld.so.cache",)
DEVICES = ("/dev/null", "/dev/urandom")
ROOT_SIZE = "1m"


@dataclass
class MinimalRoot:
    """What the minimal root exposes, as the child sees it."""

    read_only: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)

    @property
    def detail(self) -> str:
        return (f"minimal root: {len(self.read_only)} read-only trees (interpreter, stdlib, site-packages, system "
                f"libraries), {', '.join(self.devices)}, a per-job tmpfs on {SCRATCH}; nothing else exists")


def interpreter_paths() -> list[str]:
    """The directories the child must read to import the standard library and site-packages."""
    paths = {os.path.join(sys.base_prefix, "lib"), *site.getsitepackages()}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        paths.add(sysconfig.get_paths()[key])
    return sorted(p for p in paths if os.path.isdir(p))


def outermost(paths: list[str]) -> list[str]:
    """paths without those that lie inside another one of them."""
    def within(path: str, directory: str) -> bool:
        return path == directory or path.startswith(directory.rstrip("/") + "/")

    unique = sorted(set(paths))
    return [p for p in unique if not any(q != p and within(p, q) for q in unique)]


def read_only_trees() -> list[str]:
    """Every tree the minimal root binds read-only (existing real directories only)."""
    system = [p for p in SYSTEM_LIBRARY_DIRS if os.path.isdir(p) and not os.path.islink(p)]
    return outermost(interpreter_paths() + system)


# -- the zygote ---------------------------------------------------------------------
def enter_zygote_namespaces() -> None:
    """Unshare pid and mount namespaces and return as pid 1 of the new pid namespace.

    The original process stays behind as a thin waiter, so that the client's
    handle on it ends when the zygote ends; SIGTERM to the waiter kills the zygote,
    and the death of pid 1 kills everything in its namespace.
    """
    _linux.unshare(_linux.CLONE_NEWNS | _linux.CLONE_NEWPID)
    _linux.mount(None, "/", None, _linux.MS_REC | _linux.MS_PRIVATE, None)
    pid = os.fork()
    if pid:
        signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGKILL))
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _linux.close_range(3)
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    _linux.prctl(_linux.PR_SET_PDEATHSIG, signal.SIGKILL)


def _clone(path: str, attributes: int) -> int:
    """A detached copy of the mount tree at path, with attributes set on all of it."""
    fd = _linux.open_tree(path, _linux.OPEN_TREE_CLONE | _linux.OPEN_TREE_CLOEXEC | _linux.AT_RECURSIVE)
    try:
        _linux.mount_setattr(fd, attributes)
    except OSError:
        os.close(fd)
        raise
    return fd


def _attach(fd: int, root: str, path: str, is_dir: bool) -> None:
    target = root + path
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    if is_dir:
        os.makedirs(target, mode=0o755, exist_ok=True)
    else:
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
    _linux.move_mount(fd, target)
    os.close(fd)


def enter_minimal_root() -> MinimalRoot:
    """Pivot this process (pid 1 of its pid namespace) into the minimal root.

    Every source is cloned before anything is mounted, so a source that lies
    under the staging directory (a checkout under /tmp) is still reachable.
    """
    readonly = _linux.MOUNT_ATTR_RDONLY | _linux.MOUNT_ATTR_NOSUID | _linux.MOUNT_ATTR_NODEV
    trees = read_only_trees()
    hidden = [p for p in trees if p == SCRATCH or p.startswith(SCRATCH + "/")]
    if hidden:
        raise OSError(f"{', '.join(hidden)} lies under {SCRATCH}, where each child mounts its scratch folder")
    files = [p for p in SYSTEM_FILES if os.path.isfile(p)]
    devices = [p for p in DEVICES if os.path.exists(p)]
    clones: list[tuple[int, str, bool]] = []
    try:
        clones += [(_clone(p, readonly), p, True) for p in trees]
        clones += [(_clone(p, readonly), p, False) for p in files]
        # Device nodes need a mount without nodev; writes to /dev/null are not writes to the filesystem.
        clones += [(_clone(p, _linux.MOUNT_ATTR_RDONLY | _linux.MOUNT_ATTR_NOSUID), p, False) for p in devices]
    except OSError:
        for fd, _, _ in clones:
            os.close(fd)
        raise
    links = {p: os.readlink(p) for p in SYSTEM_LINKS if os.path.islink(p)}

    root = STAGING
    _linux.mount("tmpfs", root, "tmpfs", _linux.MS_NOSUID | _linux.MS_NODEV, f"mode=0755,size={ROOT_SIZE}")
    for fd, path, is_dir in clones:
        _attach(fd, root, path, is_dir)
    for path, target in links.items():
        os.symlink(target, root + path)
    for directory in ("/proc", SCRATCH, "/" + OLD_ROOT):
        os.makedirs(root + directory, mode=0o755, exist_ok=True)
    _linux.mount("proc", root + "/proc", "proc", _linux.MS_NOSUID | _linux.MS_NODEV | _linux.MS_NOEXEC, None)

    _linux.pivot_root(root, root + "/" + OLD_ROOT)
    os.chdir("/")
    _linux.umount("/" + OLD_ROOT, _linux.MNT_DETACH)
    os.rmdir("/" + OLD_ROOT)
    _linux.mount(None, "/", None, _linux.MS_REMOUNT | _linux.MS_RDONLY | _linux.MS_NOSUID | _linux.MS_NODEV,
                 f"mode=0755,size={ROOT_SIZE}")
    return MinimalRoot(read_only=trees + files, devices=devices)


# -- each child -------------------------------------------------------------------------
CHILD_NAMESPACES = _linux.CLONE_NEWNS | _linux.CLONE_NEWNET | _linux.CLONE_NEWIPC | _linux.CLONE_NEWUTS


def statm_bytes(fd: int) -> int:
    """The address-space size of the process that opened /proc/self/statm as fd."""
    return int(os.pread(fd, 200, 0).split()[0]) * os.sysconf("SC_PAGE_SIZE")


def isolate_child(*, uid: int, gid: int, scratch_bytes: int, scratch_inodes: int) -> int:
    """New mount, network, IPC and UTS namespaces and a private scratch tmpfs.

    Runs as root in a child of the zygote's minimal root. /proc is detached last,
    so the learner sees no process at all; returns a descriptor of this process's
    /proc/self/statm, opened before, for the child's own size (closed before
    any learner code runs).
    """
    _linux.unshare(CHILD_NAMESPACES)
    statm = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
    options = f"size={scratch_bytes},nr_inodes={scratch_inodes},mode=0700,uid={uid},gid={gid}"
    _linux.mount("tmpfs", SCRATCH, "tmpfs", _linux.MS_NOSUID | _linux.MS_NODEV | _linux.MS_NOEXEC, options)
    os.chdir(SCRATCH)
    _linux.umount("/proc", _linux.MNT_DETACH)
    return statm


def remove_tree(path: str) -> None:
    """Remove a directory tree without recursion (a learner can nest folders thousands deep).

    Only used where there is no per-job tmpfs (not root); never raises.
    """
    stack: list[tuple[str, bool]] = [(path, False)]
    while stack:
        current, expanded = stack.pop()
        if expanded:
            try:
                os.rmdir(current)
            except OSError:
                pass
            continue
        stack.append((current, True))
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, False))
                else:
                    os.unlink(entry.path)
            except OSError:
                pass
