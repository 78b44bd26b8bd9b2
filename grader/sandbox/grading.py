"""From a run outcome to a verdict: status, score, per-check results, error.

Verdicts:
  passed, failed       the code ran; the checks decided
  error                syntax error, exception, crash by signal, exit before the checks
  timeout              CPU or wall-clock limit
  memory_limit         the memory budget ran out
  output_limit         too much printed output, or too much written to files
  rejected             refused before running (size, encoding, NUL bytes)
  internal_error       the sandbox or the item's own setup failed; never the learner's fault
"""
from __future__ import annotations

import errno
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from .client import Sandbox, SandboxFault
from . import static
from .compare import compare
from .jobs import Check, Job, Limits, RunOutcome, rejection_reason
from .provenance import graph_view

STATIC_REFERENCE = {"kind": "static"}  # what a static check keeps as its reference: it judges the code alone
STARTER_MESSAGE = ("You have not changed the starter code yet: fill in the TODOs, then submit. "
                   "(This does not count as an attempt.)")

PASSED, FAILED, ERROR = "passed", "failed", "error"
TIMEOUT, MEMORY_LIMIT, OUTPUT_LIMIT = "timeout", "memory_limit", "output_limit"
REJECTED, INTERNAL_ERROR = "rejected", "internal_error"
VERDICTS = (PASSED, FAILED, ERROR, TIMEOUT, MEMORY_LIMIT, OUTPUT_LIMIT, REJECTED, INTERNAL_ERROR)
VERDICT_LABELS = {PASSED: "Passed", FAILED: "Failed", ERROR: "Error", TIMEOUT: "Time limit",
                  MEMORY_LIMIT: "Memory limit", OUTPUT_LIMIT: "Output limit", REJECTED: "Rejected",
                  INTERNAL_ERROR: "Internal error"}
# Verdicts that judged the code, so count as a learner's attempt: not code refused
# before it ran, and never a fault of the sandbox.
ATTEMPT_VERDICTS = tuple(v for v in VERDICTS if v not in (REJECTED, INTERNAL_ERROR))

_FILE_ERRNOS = {errno.EFBIG, errno.ENOSPC, errno.EDQUOT}


@dataclass
class CheckResult:
    name: str
    passed: bool
    message: str
    hidden: bool = False
    weight: float = 1.0
    graph: dict[str, Any] | None = None  # graph checks: the learner's graph (and the reference's, if revealed)

    def as_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "passed": self.passed, "message": self.message, "hidden": self.hidden,
               "weight": self.weight}
        if self.graph is not None:
            out["graph"] = self.graph
        return out


@dataclass
class Grade:
    status: str
    score: float = 0.0
    checks: list[CheckResult] = field(default_factory=list)
    stdout: str = ""
    error: str | None = None
    error_line: int | None = None
    duration_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "score": self.score,
            "checks": [c.as_dict() for c in self.checks],
            "stdout": self.stdout,
            "error": self.error,
            "error_line": self.error_line,
            "duration_ms": round(self.duration_ms, 3),
        }


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _exception_verdict(error: dict[str, Any]) -> str:
    """From facts the grader established itself: never from a class name the learner chose."""
    if error.get("memory"):
        return MEMORY_LIMIT
    if error.get("errno") in _FILE_ERRNOS:
        return OUTPUT_LIMIT
    return ERROR


def _error_text(status: str, error: dict[str, Any], limits: Limits) -> str:
    if status == MEMORY_LIMIT:
        return f"Your code ran out of its {limits.memory_mb} MB memory budget.\n{error['traceback']}"
    if status == OUTPUT_LIMIT:
        return f"Your code wrote more than the 16 MiB allowed for files.\n{error['traceback']}"
    if error["type"] == "SystemExit":
        return "Your code called exit(); remove it so the checks can run.\n" + error["traceback"]
    return error["traceback"]


def _memory_hit(outcome: RunOutcome) -> bool:
    """The child's memory cgroup killed it for going over the budget (the kernel's word, not the child's)."""
    return bool(outcome.memory and outcome.memory.get("oom_kill", 0) > 0)


def _memory_text(limits: Limits) -> str:
    return f"Your code ran out of its {limits.memory_mb} MB memory budget and was stopped."


def judge(outcome: RunOutcome, checks: list[Check], reference: list[dict[str, Any]], *,
          limits: Limits, reveal_expected: bool, code: static.Code | None = None) -> Grade:
    """The verdict for one run. reference holds one observation per check, in order.

    internal_error only where the grader failed: before the child's marker said
    the learner's code had started, or in the exercise's own setup. Anything
    that happens to the process after the marker is the learner's doing.
    """
    grade = Grade(status=ERROR, stdout=outcome.output, duration_ms=outcome.wall_ms)
    if outcome.output_bytes > len(outcome.output.encode()):
        grade.stdout += f"\n[output truncated: {outcome.output_bytes} bytes in all]"
    frame = outcome.frame
    if outcome.killed_for == "output":
        grade.status, grade.error = OUTPUT_LIMIT, "Your code printed more than 1 MiB of output and was stopped."
    elif outcome.killed_for == "wall":
        grade.status = TIMEOUT
        grade.error = (f"Your code ran longer than the {limits.wall:g} s time limit and was stopped "
                       "(an endless loop, or waiting for something?).")
    elif outcome.killed_for == "frame" or outcome.frame_error:
        grade.error = "Your code wrote to the grader's result channel, so its result cannot be trusted."
    elif frame is not None:
        _judge_frame(grade, frame, outcome, checks, reference, limits, reveal_expected, code)
    elif not outcome.started:
        grade.status = INTERNAL_ERROR
        grade.error = "The grader's sandbox stopped before your code ran; this is not your fault."
    elif _memory_hit(outcome):
        grade.status, grade.error = MEMORY_LIMIT, _memory_text(limits)
    elif outcome.exit_signal is not None:
        name = _signal_name(outcome.exit_signal)
        over_cpu = outcome.cpu_seconds is not None and outcome.cpu_seconds >= limits.cpu_seconds
        if outcome.exit_signal == signal.SIGXCPU or (outcome.exit_signal == signal.SIGKILL and over_cpu):
            grade.status = TIMEOUT
            grade.error = f"Your code used more than its {limits.cpu_seconds:g} s of CPU time and was stopped."
        elif outcome.exit_signal == signal.SIGXFSZ:
            grade.status, grade.error = OUTPUT_LIMIT, "Your code wrote more than the 16 MiB allowed for files."
        else:
            grade.error = f"Your code crashed the Python interpreter ({name})."
    else:
        grade.error = (f"Your code ended the process (exit status {outcome.exit_code}) before the checks "
                       "could run; remove the call to os._exit() or similar.")
    return grade


def _judge_frame(grade: Grade, frame: dict[str, Any], outcome: RunOutcome, checks: list[Check],
                 reference: list[dict[str, Any]], limits: Limits, reveal_expected: bool,
                 code: static.Code | None) -> None:
    phase = frame["phase"]
    if phase == "done":
        _score(grade, checks, reference, frame["observations"], reveal_expected, code)
    elif phase in ("syntax_error", "code_error"):
        error = frame["error"]
        grade.status = _exception_verdict(error) if phase == "code_error" else ERROR
        grade.error, grade.error_line = _error_text(grade.status, error, limits), error["line"]
    elif phase == "target_error":
        error = frame["error"]
        grade.error = (f"Reading `{frame['target']}` after your code ran raised {error['type']}"
                       + (f": {error['message']}" if error["message"] else "")
                       + " — the checks could not read your result.")
    elif phase == "report_failed":
        if _memory_hit(outcome):
            grade.status, grade.error = MEMORY_LIMIT, _memory_text(limits)
        else:
            grade.error = ("Your code left the interpreter unable to report its results (it used up the memory "
                           "the grader needs to read them, or broke the interpreter).")
    elif phase == "unfinished":
        grade.error = ("Your code was still running something when it ended (a callback or a finalizer), so its "
                       "results could not be read safely.")
    elif phase == "setup_error":
        grade.status = INTERNAL_ERROR
        grade.error = "The exercise's own setup code failed; this is not your fault: " + frame["error"]["message"]
    elif outcome.started:
        grade.error = "Your code broke the grader's reading of its results."
    else:
        grade.status, grade.error = INTERNAL_ERROR, "The grader failed while running your code; this is not your fault."


def _score(grade: Grade, checks: list[Check], reference: list[dict[str, Any]],
           observations: list[dict[str, Any]], reveal: bool, code: static.Code | None) -> Grade:
    """Judge every check: static ones on the code, the others on their observation (one per sandbox check)."""
    if len(observations) != sum(1 for c in checks if c.probe is not None):
        raise ValueError(f"{len(observations)} observations for {len(checks)} checks")
    observed = iter(observations)
    for check, expected in zip(checks, reference, strict=True):
        graph = None
        if check.probe is None:
            ok, message = static.judge_static(check, code or static.analyse(""))
            if not ok and check.feedback:
                message = f"{message}. {check.feedback.strip()}"
        else:
            actual = next(observed)
            ok, message = compare(check, expected, actual, reveal)
            if check.compare == "graph" and "graph" in actual and not check.hidden:
                graph = graph_view(check, expected, actual, reveal)
        grade.checks.append(CheckResult(check.label, ok, message, check.hidden, check.weight, graph))
    _tally(grade)
    return grade


def _tally(grade: Grade) -> None:
    """Score (the weighted share of checks passed) and status from the grade's check results."""
    total = sum(c.weight for c in grade.checks)
    grade.score = round(sum(c.weight for c in grade.checks if c.passed) / total, 6) if total else 0.0
    grade.status = PASSED if all(c.passed for c in grade.checks) else FAILED


def sandbox_job(*, code: str, setup: str, checks: list[Check], limits: Limits) -> Job:
    """The sandbox's part of grading: the checks that read the run (not the static ones)."""
    probed = [c for c in checks if c.probe is not None]
    return Job(code=code, setup=setup, targets=tuple(c.target for c in probed), limits=limits,
               probes=tuple((c.probe or "value", c.sources) for c in probed))


@dataclass(frozen=True)
class HiddenRun:
    """A second, unseen draw of an item's given inputs: its setup, and the reference's observations after it."""

    setup: str
    reference: list[dict[str, Any]]


HIDDEN_MESSAGE = ("{name} is right for the values shown, but not when the given tensors hold other values: compute "
                  "it from them instead of typing numbers in")


def grade_code(sandbox: Sandbox, *, code: str | bytes, setup: str, checks: list[Check],
               reference: list[dict[str, Any]], limits: Limits, reveal_expected: bool, starter: str = "",
               screen: bool = True, hidden: HiddenRun | None = None) -> Grade:
    """Grade learner code end to end. Raises SandboxFault on infrastructure failure.

    Refused before anything runs (REJECTED, not an attempt): code that is too
    big or badly encoded, the unchanged starter code, and (when screen) code
    the static screen refuses (static.py). With a hidden run, code whose checks
    pass runs again after the hidden setup, and a check passes only if it
    passes there too (its values are never shown).
    """
    started = time.perf_counter()
    reason = rejection_reason(code)
    if reason is not None:
        return Grade(status=REJECTED, error=f"Your code was not run: {reason}.")
    if isinstance(code, bytes):
        code = code.decode("utf-8")
    tree = static.parse(code)
    if static.is_starter(code, starter, tree):
        return Grade(status=REJECTED, error=STARTER_MESSAGE)
    problem, analysed = static.examine(code, tree)
    if problem is not None and screen:
        return Grade(status=REJECTED, error=f"Your code was not run: {problem}.")
    outcome = sandbox.run(sandbox_job(code=code, setup=setup, checks=checks, limits=limits))
    grade = judge(outcome, checks, reference, limits=limits, reveal_expected=reveal_expected, code=analysed)
    if hidden is not None and grade.status in (PASSED, FAILED):
        second = sandbox.run(sandbox_job(code=code, setup=hidden.setup, checks=checks, limits=limits))
        _merge_hidden(grade, judge(second, checks, hidden.reference, limits=limits, reveal_expected=False,
                                   code=analysed), checks)
    grade.duration_ms = (time.perf_counter() - started) * 1000
    return grade


def _merge_hidden(grade: Grade, other: Grade, checks: list[Check]) -> None:
    """A check passes only if it passed on the hidden draw too; the hidden draw's values stay unseen."""
    stopped = other.status not in (PASSED, FAILED)
    reason = (other.error or other.status).strip().splitlines()[-1:] or [other.status]
    for index, (result, check) in enumerate(zip(grade.checks, checks, strict=True)):
        if not result.passed or check.probe is None:
            continue
        if stopped:
            result.passed = False
            result.message = (f"{check.subject} is right for the values shown, but with other values in the given "
                              f"tensors your code stopped: {reason[0]}")
        elif not other.checks[index].passed:
            result.passed = False
            result.message = HIDDEN_MESSAGE.format(name=check.subject)
    _tally(grade)


class ReferenceFailed(Exception):
    """The reference solution did not run cleanly: a content error."""


def observe_reference(sandbox: Sandbox, *, solution: str, setup: str, targets: list[str] | None = None,
                      checks: list[Check] | None = None, limits: Limits) -> list[dict[str, Any]]:
    """Run a reference solution; its observations (one per check, or per target) are the expected values.

    The reference must pass its own lineage, identity and static checks (a
    reference that sets .grad by hand cannot teach anyone to use autograd):
    ReferenceFailed says which one it fails.
    """
    checks = checks if checks is not None else [Check(target=t) for t in targets or []]
    outcome = sandbox.run(sandbox_job(code=solution, setup=setup, checks=checks, limits=limits))
    frame = outcome.frame
    if frame is None or frame["phase"] != "done":
        placeholder = [Check(target=c.target) for c in checks if c.probe is not None]
        grade = judge(outcome, placeholder, [{"kind": "none"}] * len(placeholder), limits=limits,
                      reveal_expected=True)
        last_line = (grade.error or "").strip().splitlines()[-1:] or [""]
        where = f" at line {grade.error_line}" if grade.error_line else ""
        raise ReferenceFailed(f"the reference solution gave {grade.status}{where}: {last_line[0]}")
    observed = iter(frame["observations"])
    observations = [STATIC_REFERENCE if c.probe is None else next(observed) for c in checks]
    for check, obs in zip(checks, observations):
        if obs["kind"] == "missing":
            raise ReferenceFailed(f"target {check.target!r} cannot be read after the reference solution: {obs['error']}")
    code = static.analyse(solution)
    for index, (check, obs) in enumerate(zip(checks, observations)):
        if check.compare in ("value", "none", "bool", "graph"):
            continue
        ok, message = (static.judge_static(check, code) if check.probe is None
                       else compare(check, obs, obs, True))
        if not ok:
            raise ReferenceFailed(f"the reference solution fails its own check {index + 1} "
                                  f"({check.compare} {check.target}): {message}")
    return observations


__all__ = ["Grade", "CheckResult", "HiddenRun", "judge", "grade_code", "observe_reference", "ReferenceFailed", "SandboxFault",
           "VERDICTS", "VERDICT_LABELS", "ATTEMPT_VERDICTS", "sandbox_job", "STATIC_REFERENCE"]
