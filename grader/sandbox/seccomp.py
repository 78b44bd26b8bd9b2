"""The graded child's seccomp-BPF filter (x86_64): an allow-list, everything else EPERM.

Last of the child's isolation layers: installed after the namespaces, rlimits,
Landlock and the uid drop, it decides which system calls the rest of the
child's life (learner code, torch, the standard library and the child's own
reporting) may make at all. Anything not named here fails with EPERM, so
hostile code gets an ordinary Python exception (PermissionError, "can't start
new thread") with a line number instead of a crash, and a system call added to
a future kernel is refused until someone decides otherwise.

Where the list comes from: tracing, not guessing. `python -m
grader.sandbox.trace_syscalls` runs the seed quiz items, typical learner
programs, and optionally the sandbox tests and the benchmark under strace, and
prints every call a graded child makes after this filter is installed. ALLOWED
is that set (calls a job made on purpose to be refused, such as socket, left
out), plus the few calls listed under "beyond the trace" with who needs them.

The program, in order:

1. the architecture: anything but AUDIT_ARCH_X86_64 (an i386 `int 0x80` call,
   whose numbers mean other calls) kills the process;
2. the x32 bit: numbers >= 0x40000000 are the x32 ABI's aliases of the 64-bit
   calls, refused;
3. clone3 answers ENOSYS, so glibc falls back to clone, which is refused like
   everything unnamed: no processes and no threads ("can't start new thread");
4. ARG_RULES: calls allowed only with given argument values (signals only to
   the caller itself, prlimit64 only reading, ioctl only TCGETS, ...);
5. ALLOWED, each `JEQ nr; RET ALLOW`;
6. everything else: SECCOMP_RET_ERRNO | EPERM.

Every rule is a block whose jumps stay inside it and are resolved from labels
by the assembler here, never counted by hand; a jump longer than 255 (BPF's
8-bit jt/jf) or backwards is an error at build time. Unconditional allows only
read the call number, so the kernel's per-number action cache (Linux 5.11+)
lets them through without running the filter at all.

The numbers come from syscalls.NUMBERS. tests/sandbox/test_seccomp_filter.py
runs the built program in a small BPF interpreter for every known call number
and installs it for real in a forked process.
"""
from __future__ import annotations

import ctypes
import errno
import struct
from collections.abc import Callable
from dataclasses import dataclass

from . import _linux
from .syscalls import NUMBERS

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
BPF_MAXINSNS = 4096  # the kernel refuses longer classic-BPF programs
MAX_JUMP = 255  # jt and jf are 8-bit offsets

# Classic BPF opcodes (linux/bpf_common.h).
BPF_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS: A = 32-bit word at offset k of seccomp_data
BPF_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
BPF_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
BPF_RET_K = 0x06  # BPF_RET | BPF_K
SOCK_FILTER = struct.Struct("=HBBI")  # struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}

# Return values (linux/seccomp.h); the low 16 bits of RET_ERRNO carry the errno.
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
RET_EPERM = SECCOMP_RET_ERRNO | errno.EPERM
RET_ENOSYS = SECCOMP_RET_ERRNO | errno.ENOSYS

# struct seccomp_data {int nr; u32 arch; u64 instruction_pointer; u64 args[6]}, little-endian.
OFFSET_NR = 0
OFFSET_ARCH = 4
OFFSET_ARGS = 16
ARG_SIZE = 8
HIGH_HALF = 4

# Argument values the rules name.
TCGETS = 0x5401  # ioctl: read terminal attributes; what isatty() asks, on every open() of a file
PR_CAPBSET_READ = 23  # prctl: is a capability in the bounding set (read only)
F_DUPFD = 0  # fcntl commands: duplicate, close-on-exec and status flags
F_GETFD = 1
F_SETFD = 2
F_GETFL = 3
F_SETFL = 4
F_DUPFD_CLOEXEC = 1030

# -- the allow-list -------------------------------------------------------------------
# Each group: what the calls are for, and who made them in the trace. Landlock, the
# rlimits and the uid drop still bound what these calls can reach.
ALLOWED: tuple[str, ...] = (
    # Memory: malloc, torch's tensors, numpy, mapping extension modules as they are imported.
    "brk", "mmap", "munmap", "mprotect",
    "mremap",  # beyond the trace: glibc's realloc of a block it mmapped (128 KiB and up); harmless
    # Files: imports, open()/read()/write(), os.listdir, pathlib, torch.save/load. Landlock allows
    # reading the interpreter and libraries and writing the scratch folder, nothing else.
    "openat", "read", "write", "close", "lseek", "newfstatat", "getdents64", "getcwd",
    "readlinkat",  # glibc's NSS resolving /lib -> usr/lib when getpass.getuser() runs (torch._dynamo import)
    "sendfile",  # shutil.copy between two files
    # Changing the scratch folder: os.mkdir/makedirs, os.remove, shutil.rmtree, os.rename, shutil.copy's mode,
    # shutil.copy2's timestamps and extended attributes (there are none: setxattr is refused). shutil.move
    # into a subfolder needs copy2 too: Landlock answers a cross-folder rename with EXDEV.
    "mkdir", "rmdir", "unlink", "unlinkat", "rename", "chmod", "utimensat", "listxattr",
    # Descriptors of the child's own reporting: stdout/stderr onto /dev/null before the result frame.
    "dup2",
    "dup3",  # beyond the trace: the same with O_CLOEXEC (os.dup2(..., inheritable=False)) in the child's code
    # Time and waiting: time.time/perf_counter/process_time, time.sleep, select.select with a timeout,
    # locks and threading.Event (futex with no second thread to wake it: it only times out).
    "clock_gettime", "clock_nanosleep", "pselect6", "futex",
    "pause",  # beyond the trace: signal.pause() must block until the wall-clock limit, not fail
    # Signals to itself: signal.signal, masks, returning from a handler (sending: see ARG_RULES).
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn",
    # Who am I: os.getpid, threading's ident, getpass.getuser.
    "getpid", "gettid", "getuid",
    "geteuid", "getgid", "getegid",  # beyond the trace: os.geteuid() & co. would answer -1 (harmless reads)
    "uname",  # beyond the trace: platform.system() and os.uname(); the child has its own UTS namespace
    "getrusage",  # beyond the trace: resource.getrusage on itself (learners time their code)
    "madvise",  # the allocator returning memory; a parked thread's stack
    "getppid", "getpgid",  # beyond the benign trace: hostile tests' os.killpg(os.getpgid(os.getppid()))
    # Randomness: os.urandom, random and numpy seeding, tempfile names.
    "getrandom",
    # The end: os._exit / the child's own exit after the result frame.
    "exit_group",
    "exit",  # one thread ending: the learner's thread, should its code let it leave its parking spot
)

# -- calls allowed only with certain arguments -------------------------------------------
@dataclass(frozen=True)
class Clause:
    """The 32-bit half (low or high) of argument `arg` must be one of `values`.

    pid_t, int and unsigned int arguments are truncated to 32 bits by the kernel's
    syscall wrappers, so for them the low half is the whole value. Pointers are 64
    bits: a NULL pointer needs both halves checked.
    """

    arg: int
    values: tuple[int, ...]
    high: bool = False

    @property
    def offset(self) -> int:
        return OFFSET_ARGS + ARG_SIZE * self.arg + (HIGH_HALF if self.high else 0)


def kill_rule(own_pid: int) -> tuple[Clause, ...]:
    """kill(pid, sig): only the child itself, or 0 = its own process group (it leads its own session)."""
    return (Clause(0, (own_pid, 0)),)


def to_self_rule(own_pid: int) -> tuple[Clause, ...]:
    """tgkill/tkill/rt_sigqueueinfo/rt_tgsigqueueinfo: first argument the child's own pid.

    For tgkill that is the thread group: raise() (os.abort, signal.raise_signal) on the
    learner's thread is tgkill(pid, its tid, sig). tkill names a thread alone, so only the
    main thread (tid = pid) can be its target.
    """
    return (Clause(0, (own_pid,)),)


def prlimit64_rule(own_pid: int) -> tuple[Clause, ...]:
    """prlimit64(pid, resource, new_limit, old_limit): reading its own limits only.

    resource.getrlimit is prlimit64(0, r, NULL, &old). A non-NULL new_limit (setrlimit,
    or prlimit on any pid) is refused: learner code could otherwise raise its soft
    limits to the hard ones.
    """
    return (Clause(0, (0, own_pid)), Clause(2, (0,)), Clause(2, (0,), high=True))


def sched_getaffinity_rule(own_pid: int) -> tuple[Clause, ...]:
    """sched_getaffinity(pid, ...): its own CPU set only (os.sched_getaffinity(0), torch's CPU count)."""
    return (Clause(0, (0, own_pid)),)


def ioctl_rule(own_pid: int) -> tuple[Clause, ...]:
    """ioctl(fd, request, ...): only TCGETS, the one request the trace shows.

    Python's open() asks isatty() of every file it opens (buffering choice) and
    input() asks it of stdin: both are TCGETS, answered ENOTTY here. Everything
    else (TIOCSTI, FIOCLEX, device and filesystem ioctls) is refused.
    """
    return (Clause(1, (TCGETS,)),)


def fcntl_rule(own_pid: int) -> tuple[Clause, ...]:
    """fcntl(fd, cmd, ...): duplicating, close-on-exec and status flags only.

    The trace shows F_DUPFD_CLOEXEC, F_GETFL and F_SETFD (os.scandir on a
    descriptor, shutil.rmtree); F_DUPFD, F_GETFD and F_SETFL are their
    siblings (os.dup, os.get_inheritable, os.set_blocking). Refused:
    F_SETOWN/F_SETSIG (a signal to another process when I/O is ready), leases,
    directory notifications, F_SETPIPE_SZ (growing the output pipe), seals and
    record locks.
    """
    return (Clause(1, (F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC)),)


def prctl_rule(own_pid: int) -> tuple[Clause, ...]:
    """prctl(option, ...): only PR_CAPBSET_READ.

    libcap's constructor probes the bounding set when glibc's NSS loads
    libnss_systemd for getpass.getuser(), which torch._dynamo runs on import (the
    first optimizer.step()). Every other option, PR_SET_SECCOMP, PR_SET_DUMPABLE,
    PR_SET_MM, PR_SET_PDEATHSIG included, is refused.
    """
    return (Clause(0, (PR_CAPBSET_READ,)),)


ARG_RULES: dict[str, Callable[[int], tuple[Clause, ...]]] = {
    "kill": kill_rule,
    "tgkill": to_self_rule,
    "tkill": to_self_rule,
    "rt_sigqueueinfo": to_self_rule,
    "rt_tgsigqueueinfo": to_self_rule,
    "prlimit64": prlimit64_rule,
    "sched_getaffinity": sched_getaffinity_rule,
    "ioctl": ioctl_rule,
    "fcntl": fcntl_rule,
    "prctl": prctl_rule,
}

# Answered ENOSYS instead of EPERM: glibc's pthread_create and posix_spawn try clone3
# first and fall back to clone only on ENOSYS; clone is refused, so a thread fails
# with EPERM, which Python reports as "can't start new thread". (The child's own learner
# thread is started before the filter goes in.)
ENOSYS_CALLS: tuple[str, ...] = ("clone3",)

# -- refused, and worth naming ------------------------------------------------------------
# Everything outside ALLOWED and ARG_RULES is refused; these are the ones a reviewer
# will look for. The tests check each of them.
REFUSED_NOTABLE: dict[str, str] = {
    "execve": "run a program", "execveat": "run a program",
    "fork": "a new process", "vfork": "a new process",
    "clone": "processes and threads alike: the child starts its one learner thread before this filter, and "
             "no other thread may run while the grader reads the results (torch runs with one thread)",
    "clone3": "answers ENOSYS so glibc falls back to clone, refused",
    "socket": "network and Unix sockets", "socketpair": "Unix sockets", "connect": "network",
    "bind": "network", "listen": "network", "accept": "network", "accept4": "network",
    "sendto": "network", "recvfrom": "network", "sendmsg": "network", "recvmsg": "network",
    "ptrace": "other processes' memory", "process_vm_readv": "other processes' memory",
    "process_vm_writev": "other processes' memory", "kcmp": "comparing other processes' resources",
    "mount": "the mount table", "umount2": "the mount table", "pivot_root": "the mount table",
    "chroot": "the root directory", "open_tree": "new mount API", "open_tree_attr": "new mount API",
    "move_mount": "new mount API", "fsopen": "new mount API", "fsconfig": "new mount API",
    "fsmount": "new mount API", "fspick": "new mount API", "mount_setattr": "new mount API",
    "listmount": "reads the host's mount table", "statmount": "reads the host's mount table",
    "unshare": "new namespaces", "setns": "other namespaces",
    "memfd_create": "memory outside RLIMIT_AS", "memfd_secret": "memory outside RLIMIT_AS",
    "shmget": "SysV shared memory outside RLIMIT_AS", "shmat": "SysV shared memory",
    "shmctl": "SysV shared memory", "shmdt": "SysV shared memory",
    "msgget": "SysV message queues", "semget": "SysV semaphores",
    "setrlimit": "raising its own limits (prlimit64 with a new limit is refused by its rule)",
    "personality": "READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE",
    "io_uring_setup": "asynchronous I/O bypassing this filter", "io_uring_enter": "io_uring",
    "io_uring_register": "io_uring",
    "bpf": "kernel programs", "userfaultfd": "kernel exploitation aid", "perf_event_open": "side channels",
    "keyctl": "kernel keyrings", "add_key": "kernel keyrings", "request_key": "kernel keyrings",
    "setuid": "identity", "setgid": "identity", "setreuid": "identity", "setregid": "identity",
    "setresuid": "identity", "setresgid": "identity", "setfsuid": "identity", "setfsgid": "identity",
    "setgroups": "identity", "capset": "capabilities",
    "mknod": "device files", "mknodat": "device files",
    "kexec_load": "the kernel", "kexec_file_load": "the kernel", "init_module": "the kernel",
    "finit_module": "the kernel", "delete_module": "the kernel", "reboot": "the machine",
    "pidfd_open": "a handle on another process", "pidfd_getfd": "another process's descriptors",
    "pidfd_send_signal": "signals by handle", "process_madvise": "another process's memory",
    "process_mrelease": "another process's memory",
    "setitimer": "a signal later, while the grader observes", "alarm": "a signal later",
    "timer_create": "a signal later", "timerfd_create": "unused by the workload",
    "name_to_handle_at": "opening files by handle, past Landlock",
    "open_by_handle_at": "opening files by handle, past Landlock",
    "fanotify_init": "watching the filesystem", "inotify_init": "unused by the workload",
    "inotify_init1": "unused by the workload",
    "mseal": "unused; sealing mappings the grader may need",
    "lsm_get_self_attr": "LSM state", "lsm_set_self_attr": "LSM state", "lsm_list_modules": "LSM state",
    "seccomp": "a learner filter could only restrict the child further, but it could make the child's own "
               "reporting fail after the learner's code (say, every write refused) and pass that off as a "
               "grader fault; nothing in the workload needs it",
}


def _check_tables() -> None:
    """Every name is a real call, and no call is both allowed and named refused."""
    listed = (*ALLOWED, *ARG_RULES, *ENOSYS_CALLS, *REFUSED_NOTABLE)
    unknown = sorted(set(listed) - set(NUMBERS))
    if unknown:
        raise ValueError(f"not x86_64 system calls: {unknown}")
    if len(set(ALLOWED)) != len(ALLOWED):
        raise ValueError("ALLOWED lists a call twice")
    both = (set(ALLOWED) & set(ARG_RULES)) | ((set(ALLOWED) | set(ARG_RULES)) & set(ENOSYS_CALLS))
    refused_but_allowed = (set(ALLOWED) | set(ARG_RULES)) & set(REFUSED_NOTABLE)
    if both or refused_but_allowed:
        raise ValueError(f"listed twice: {sorted(both | refused_but_allowed)}")


_check_tables()


# -- the assembler --------------------------------------------------------------------------
@dataclass(eq=False)
class Label:
    """A position in the program; jumps name labels, the assembler turns them into offsets."""

    name: str


@dataclass(frozen=True)
class Insn:
    """One sock_filter; jt/jf name a Label, or None for the next instruction."""

    code: int
    k: int
    jt: Label | None = None
    jf: Label | None = None


Item = Insn | Label


def load(offset: int) -> Insn:
    return Insn(BPF_LD_W_ABS, offset)


def jeq(value: int, jt: Label | None = None, jf: Label | None = None) -> Insn:
    return Insn(BPF_JEQ_K, value & 0xFFFFFFFF, jt, jf)


def ret(action: int) -> Insn:
    return Insn(BPF_RET_K, action)


def assemble(items: list[Item]) -> bytes:
    """Resolve labels into forward offsets (0..255 each) and pack the sock_filter array."""
    positions: dict[Label, int] = {}
    count = 0
    for item in items:
        if isinstance(item, Label):
            if item in positions:
                raise ValueError(f"label {item.name!r} placed twice")
            positions[item] = count
        else:
            count += 1
    if count > BPF_MAXINSNS:
        raise ValueError(f"{count} instructions; the kernel accepts at most {BPF_MAXINSNS}")

    def offset(target: Label | None, index: int) -> int:
        if target is None:
            return 0
        if target not in positions:
            raise ValueError(f"label {target.name!r} never placed")
        jump = positions[target] - (index + 1)
        if not 0 <= jump <= MAX_JUMP:
            raise ValueError(f"jump to {target.name!r} of {jump} from instruction {index}: must be 0..{MAX_JUMP}")
        return jump

    out = bytearray()
    index = 0
    for item in items:
        if isinstance(item, Insn):
            out += SOCK_FILTER.pack(item.code, offset(item.jt, index), offset(item.jf, index), item.k)
            index += 1
    return bytes(out)


# -- the blocks -------------------------------------------------------------------------------
def arch_check() -> list[Item]:
    """Only x86_64 calls: an i386 or foreign-ABI call (other numbers, other meanings) kills the process."""
    native = Label("native arch")
    return [load(OFFSET_ARCH), jeq(AUDIT_ARCH_X86_64, jt=native), ret(SECCOMP_RET_KILL_PROCESS), native]


def x32_check() -> list[Item]:
    """Load the call number; refuse the x32 ABI (numbers with bit 30 set alias the 64-bit calls)."""
    native = Label("not x32")
    return [load(OFFSET_NR), Insn(BPF_JGE_K, X32_SYSCALL_BIT, jf=native), ret(RET_EPERM), native]


def answer(name: str, action: int) -> list[Item]:
    """`if nr == name: return action`; A (the call number) is kept for the next block."""
    after = Label(f"after {name}")
    return [jeq(NUMBERS[name], jf=after), ret(action), after]


def checked(name: str, clauses: tuple[Clause, ...]) -> list[Item]:
    """`if nr == name: allow when every clause holds, else EPERM`.

    The body loads arguments into A, so it must end in returns: the next block is
    reached only through the first jump's jf, with A still the call number.
    """
    after = Label(f"after {name}")
    body: list[Item] = [jeq(NUMBERS[name], jf=after)]
    for i, clause in enumerate(clauses):
        holds = Label(f"{name}: clause {i} holds")
        body.append(load(clause.offset))
        body += [jeq(value, jt=holds) for value in dict.fromkeys(v & 0xFFFFFFFF for v in clause.values)]
        body += [ret(RET_EPERM), holds]
    body += [ret(SECCOMP_RET_ALLOW), after]
    return body


def program(own_pid: int) -> list[Item]:
    """The whole filter as labelled instructions, for a child whose pid is own_pid."""
    items: list[Item] = [*arch_check(), *x32_check()]
    for name in ENOSYS_CALLS:
        items += answer(name, RET_ENOSYS)
    for name, rule in ARG_RULES.items():
        items += checked(name, rule(own_pid))
    for name in sorted(ALLOWED, key=NUMBERS.__getitem__):
        items += answer(name, SECCOMP_RET_ALLOW)
    items.append(ret(RET_EPERM))
    return items


def build_filter(own_pid: int) -> bytes:
    """The BPF program, as raw sock_filter structs, for a child whose pid is own_pid."""
    return assemble(program(own_pid))


def summary() -> str:
    """One line for the sandbox's layer report."""
    return (f"allow-list of {len(ALLOWED)} calls, {len(ARG_RULES)} more only with checked arguments "
            f"(signals only to itself, prlimit64 read-only, ioctl TCGETS, ...), no new threads or processes, "
            f"everything else EPERM")


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def supported() -> bool:
    return _linux.ARCH == "x86_64"


SYS_seccomp = NUMBERS["seccomp"]
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1


def prepare(own_pid: int) -> Callable[[], None]:
    """Build the filter now; the returned function installs it, on every thread (TSYNC). Irreversible.

    The child builds it while it waits in the pool and installs it when its job
    arrives, once it has lowered its own limits for that job (afterwards it could
    not). It already runs its learner thread by then, so the filter must reach
    that thread too: seccomp(2) with SECCOMP_FILTER_FLAG_TSYNC installs it on all
    threads or on none. Needs no_new_privs (or CAP_SYS_ADMIN) first.
    """
    if not supported():
        raise OSError(errno.ENOTSUP, f"seccomp filter not written for {_linux.ARCH}")
    program_bytes = build_filter(own_pid)
    buf = ctypes.create_string_buffer(program_bytes, len(program_bytes))
    fprog = _SockFprog(len(program_bytes) // SOCK_FILTER.size, ctypes.cast(buf, ctypes.c_void_p))
    pointer = ctypes.byref(fprog)

    def install_now() -> None:
        thread = _linux.syscall(SYS_seccomp, ctypes.c_uint(SECCOMP_SET_MODE_FILTER),
                                ctypes.c_uint(SECCOMP_FILTER_FLAG_TSYNC), pointer)
        if thread != 0:
            raise OSError(errno.EAGAIN, f"thread {thread} could not take the seccomp filter")

    install_now.keep_alive = (buf, fprog)  # type: ignore[attr-defined]  # the kernel reads these buffers
    return install_now


def install(own_pid: int) -> None:
    """Build and install the filter at once (see prepare)."""
    prepare(own_pid)()
