"""The grader's sandbox: a pre-warmed torch zygote forking one hardened child per job.

Plain Python, no Django. This is the whole public surface: code outside the
package imports from here, never from a module inside it
(tests/sandbox/test_layout.py checks). SECURITY.md is the reviewer's guide.

    Sandbox            start a zygote, run jobs, probe its isolation layers
    Job, Limits, Check the data a run and a comparison need
    CHECK_KINDS        the one list of check kinds (value ... graph, calls, forbids)
    screen_problem, is_starter, static_problem   what is read from the code itself
    grade_code         run learner code and judge it against reference observations
    observe_reference  run a reference solution and return its observations
    judge              turn a RunOutcome into a Grade (status, score, checks, error)
    describe           an observation as a learner reads it
    LAYERS, REQUIRED_LAYERS, missing_layers   the isolation policy
"""
from __future__ import annotations

from .client import Sandbox, SandboxFault
from .compare import describe
from .grading import (
    ATTEMPT_VERDICTS, VERDICT_LABELS, VERDICTS, CheckResult, Grade, HiddenRun, ReferenceFailed, grade_code, judge,
    observe_reference,
)
from .jobs import (
    CHECK_KINDS, DEFAULT_ATOL, DEFAULT_RTOL, MAX_CODE_BYTES, MAX_CPU_SECONDS, MAX_MEMORY_MB, STATIC_KINDS,
    VALUE_KINDS, Check, CheckKind, Job, Limits, RunOutcome, rejection_reason,
)
from .static import is_starter, screen_problem, static_problem
from .policy import LAYERS, REQUIRED_LAYERS
from .policy import missing as missing_layers

__all__ = [
    "Sandbox", "SandboxFault", "REQUIRED_LAYERS", "LAYERS", "missing_layers", "Job", "Limits", "Check",
    "RunOutcome", "Grade", "CheckResult", "grade_code", "judge", "observe_reference", "ReferenceFailed",
    "rejection_reason", "VERDICTS", "ATTEMPT_VERDICTS", "MAX_CODE_BYTES", "MAX_CPU_SECONDS", "MAX_MEMORY_MB",
    "DEFAULT_RTOL", "DEFAULT_ATOL", "describe", "CHECK_KINDS", "CheckKind", "VALUE_KINDS",
    "STATIC_KINDS", "is_starter", "screen_problem", "static_problem", "HiddenRun", "VERDICT_LABELS",
]
