"""What runs on the learner's thread: the item's setup, the learner's code, reading the targets.

The child starts this thread while it is still allowed to (before seccomp),
and the thread's stack starts in `bootstrap`: whatever frames learner code
walks (sys._getframe, a traceback, a generator) belong to this thread and
hold nothing but the learner's own job. The functions here run as private
copies (guard.private_copy), so learner code that patches them, or the
modules they use, changes only what it reports about itself. Everything they
hand to the main thread is read there as hostile data (exact types only).

One thread serves two jobs: the child's warm-up job (`stage.PREFAULT`, so the
pages a typical job touches are copied while the child waits in the pool),
then the learner's. Afterwards it parks in `bootstrap` for good: the main
thread checks that it is parked there, and not still running learner code,
before it reads anything.
"""
from __future__ import annotations

import warnings
from typing import Any

SUBMISSION = "<submission>"
SETUP = "<setup>"
TRACEBACK_FRAMES = 20
# Prepared in advance: when the process is out of memory even these few strings could not be made.
_UNPRINTABLE = "<unprintable>"
_FALLBACK = ("MemoryError", "", "MemoryError", None)
# Taken before any learner code runs (it could rebind the module's names; this thread runs its code anyway).
_catch_warnings = warnings.catch_warnings
_simplefilter = warnings.simplefilter

# The warm-up, in steps: between two steps it stops (SystemExit) once the child's main thread has set
# `_stop[0]`, which it does when a job arrives, so no job waits for the warm-up of the child it was given.
PREFAULT_STEPS = (
    "import torch\nx = torch.tensor([0.5, 2.0], requires_grad=True)\ny = (torch.sin(x) * x ** 2 + 3 * x + 1).sum()",
    "y.backward(retain_graph=True)\ng, = torch.autograd.grad(y, x)",
    "h = x * 2\nh.retain_grad()\n(h ** 2).mean().backward()",
    "w = torch.ones(4, 3, requires_grad=True)\n"
    "torch.nn.functional.relu(torch.nn.functional.linear(torch.ones(5, 3), w)).pow(2).mean().backward()",
    "with torch.no_grad():\n    z = x.detach() * 2\nx.grad.zero_()\nv = float(x.grad.sum().item())",
    'text = f"{x} {y} {x.grad} {g!r}"',
    'text = f"{z} {v} {x.requires_grad} {torch.ones(2, 3)} {torch.arange(3)}"',
)
PREFAULT = "\n".join("if _stop[0]: raise SystemExit\n" + step for step in PREFAULT_STEPS)
PREFAULT_TARGETS = ("x.grad", "h.grad", "g", "v", "z", "w.grad", "y")
# Each kind of reading, so its code and pages are warm too.
PREFAULT_PROBES = (("lineage", ()), ("lineage", ("x",)), ("lineage", ("x",)), ("lineage", ("x",)), ("identity", ()),
                   ("value", ()), ("graph", ()))


def describe(exc: BaseException, source: str, filename: str) -> tuple[str, str, str, int | None]:
    """(type name, message, traceback of the learner's own lines, line) of an exception.

    Runs on the learner's thread: str(exc) may run learner code. Never raises;
    drops the traceback afterwards, so a runaway recursion's frames are freed
    before the main thread reads anything.
    """
    try:
        name = type(exc).__name__
        if type(name) is not str:
            name = "Exception"
        try:
            message = str(exc)
            if type(message) is not str:
                message = _UNPRINTABLE
        except BaseException:  # noqa: BLE001 - a hostile __str__
            message = _UNPRINTABLE
        message = message[:2000]
        lines = source.splitlines()
        own: list[tuple[int, str]] = []
        tb = exc.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            if code.co_filename == filename:
                own.append((tb.tb_lineno, code.co_name))
                if len(own) > TRACEBACK_FRAMES:
                    del own[0]
            tb = tb.tb_next
        out = []
        if own:
            out.append("Traceback (most recent call last):")
            for lineno, where in own:
                out.append(f"  line {lineno}, in {where}")
                if 0 < lineno <= len(lines):
                    out.append("    " + lines[lineno - 1].strip())
        out.append(f"{name}: {message}" if message else name)
        line = own[-1][0] if own else None
        return name[:200], message, "\n".join(out)[-8000:], line
    except BaseException:  # noqa: BLE001 - out of memory, or a recursion limit set to 1 by the learner
        return _FALLBACK
    finally:
        exc.__traceback__ = None
        exc.__context__ = None
        exc.__cause__ = None


def execute(code: Any, source: str, filename: str, namespace: dict[str, Any]) -> tuple[Any, ...] | None:
    """Run compiled code; None, or (exception, description)."""
    try:
        exec(code, namespace)  # noqa: S102 - running learner code is the point; it is contained
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt included
        return (exc, describe(exc, source, filename))
    return None


def read_target(plan: tuple[Any, ...], namespace: dict[str, Any]) -> tuple[Any, ...]:
    """One check target: ("value", object), ("owner", object), or ("raised", exception, description).

    plan is ("eval", code, text): evaluate code in the learner's namespace;
    ("owner", code, text): evaluate the tensor whose attribute the main thread
    reads itself; ("call", function, text): call a function captured before
    the learner's code ran (torch.is_grad_enabled: its answer is this thread's).
    """
    kind, what, text = plan
    try:
        # The grader's own reads must not print into the learner's output (torch warns when .grad of a
        # non-leaf is read: "<check>:1: UserWarning ..."); the learner's own warnings, raised while their
        # code ran, are printed as usual.
        with _catch_warnings():
            _simplefilter("ignore")
            if kind == "call":
                return ("value", what())
            value = eval(what, namespace)  # noqa: S307 - the item's own target expression
        return ("owner" if kind == "owner" else "value", value)
    except BaseException as exc:  # noqa: BLE001 - a property may raise anything
        return ("raised", exc, describe(exc, text, "<check>"))


def run(job: tuple[Any, ...]) -> tuple[Any, ...]:
    """Setup, the learner's code, then the targets; returns (phase, ...).

    What the setup made is noted before any learner code runs: the given
    tensors, and the early reads of targets whose identity is checked. The
    lineage recorder is pushed on this thread just before the learner's code
    (what the setup computed is given, not the learner's work) and stops
    recording when it ends.
    """
    (setup, setup_source, code, source, namespace, plans, marker, write, result_fd,
     recorder, flags, lineage, early, sources) = job
    failure = execute(setup, setup_source, SETUP, namespace)
    if failure is not None:
        return ("setup_error", failure)
    given = lineage.givens(namespace)
    before = [read_target(plan, namespace) for plan in early]
    if recorder is not None:
        recorder.__enter__()
    if marker:
        # From here on whatever happens to the process is the learner's doing.
        write(result_fd, marker)
    failure = execute(code, source, SUBMISSION, namespace)
    flags[0] = False
    if recorder is not None and not marker:
        # The warm-up job (no marker: grader code only) takes its recorder off this thread's mode stack, so the
        # learner's job dispatches through one mode, not two.
        recorder.__exit__(None, None, None)
    if failure is not None:
        return ("code_error", failure)
    lineage.resolve(sources, namespace, given)
    return ("done", [read_target(plan, namespace) for plan in plans], before, given)


def bootstrap(slot: list[Any], start: Any, done: Any, park: Any, jobs: int) -> None:
    """The learner thread's first frame: serve `jobs` jobs handed over in slot[0], then park for good.

    It first says it is alive: the child installs seccomp only once this thread runs Python
    code, past glibc's thread start-up (whose calls the filter refuses).
    """
    done.release()
    for _ in range(jobs):
        start.acquire()
        try:
            slot[1] = run(slot[0])
        except BaseException as exc:  # noqa: BLE001 - never leave the main thread waiting
            slot[1] = ("stage_failed", exc)
        done.release()
    park.acquire()
    park.acquire()  # parked: the main thread checks that this thread waits exactly here


def park_line() -> int:
    """The line of `bootstrap` the parked thread waits on."""
    code = bootstrap.__code__
    lines = [line for _, _, line in code.co_lines() if line is not None]
    return max(lines)


