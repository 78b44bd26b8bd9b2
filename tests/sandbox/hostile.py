"""What the hostile-code tests share: a reference solution, a wrong answer, limits and verdict checks."""
from __future__ import annotations

from collections.abc import Callable

from grader.sandbox import Check, Grade, Limits, Sandbox

SOLUTION = """\
import torch
x = torch.tensor(2.0, requires_grad=True)
y = x ** 2 + 3 * x + 1
y.backward()
"""
# dy/dx = 3x² = 12 at x = 2, not 7: a wrong answer that still runs cleanly.
WRONG = """\
import torch
x = torch.tensor(2.0, requires_grad=True)
y = x ** 3
y.backward()
"""
CHECKS = [Check("x.grad"), Check("x.requires_grad", "bool")]
LIMITS = Limits(cpu_seconds=1, memory_mb=128)
SHORT_WALL = Limits(cpu_seconds=1, memory_mb=128, wall_seconds=1)
# A wall clock far beyond the CPU limit, so that the CPU limit is what stops a busy
# loop even on a loaded machine (where CPU time accrues slower than wall time).
LONG_WALL = Limits(cpu_seconds=1, memory_mb=128, wall_seconds=10)

GradeFn = Callable[..., Grade]


class ZygoteWatch:
    """The zygote the module started with; check() fails once it is another one."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.pid = sandbox.zygote_pid
        self.restarts = sandbox.restarts

    def check(self) -> None:
        assert self.sandbox.zygote_pid == self.pid, (
            f"the zygote was replaced: pid {self.pid} -> {self.sandbox.zygote_pid}")
        assert self.sandbox.restarts == self.restarts, (
            f"the zygote was restarted {self.sandbox.restarts - self.restarts} time(s)")
        reply = self.sandbox.ping()  # a dead zygote would be restarted here: check again below
        assert reply["ok"], f"the zygote did not answer a ping: {reply}"
        assert (self.sandbox.zygote_pid, self.sandbox.restarts) == (self.pid, self.restarts), (
            "the zygote had died: the ping restarted it")


def describe(g: Grade) -> str:
    return f"status={g.status!r} score={g.score} error={g.error!r} stdout={g.stdout[:300]!r}"


def assert_error(g: Grade, *fragments: str) -> None:
    assert g.status == "error", f"expected error, got {describe(g)}"
    for fragment in fragments:
        assert fragment in (g.error or ""), f"{fragment!r} not in the error: {describe(g)}"


def assert_refused(g: Grade) -> None:
    """An uncaught refusal: the path does not exist in the child's minimal root (ENOENT),
    the root is read-only (EROFS), or Landlock says EACCES."""
    assert_error(g)
    assert g.error is not None and any(
        s in g.error for s in ("FileNotFoundError", "Read-only file system", "PermissionError")), describe(g)


GUARD_CTYPES = "the grader does not allow raw memory and foreign functions (ctypes) in submitted code"


def assert_passed(g: Grade) -> None:
    assert g.status == "passed" and g.score == 1.0, f"expected passed, got {describe(g)}"
