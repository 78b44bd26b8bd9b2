"""The grader's sandbox: a pre-warmed torch zygote forking one hardened child per job.

Plain Python, no Django. Public surface:

    Sandbox            start a zygote, run jobs, probe its isolation layers
    Job, Limits, Check the data a run and a comparison need
    grade_code         run learner code and judge it against reference observations
    observe_reference  run a reference solution and return its observations
    judge              turn a RunOutcome into a Grade (status, score, checks, error)
"""
from __future__ import annotations

from .client import REQUIRED_LAYERS, Sandbox, SandboxFault
from .grading import ATTEMPT_VERDICTS, VERDICTS, CheckResult, Grade, ReferenceFailed, grade_code, judge, observe_reference
from .jobs import MAX_CODE_BYTES, Check, Job, Limits, RunOutcome, rejection_reason

__all__ = [
    "Sandbox", "SandboxFault", "REQUIRED_LAYERS", "Job", "Limits", "Check", "RunOutcome", "Grade", "CheckResult",
    "grade_code", "judge", "observe_reference", "ReferenceFailed", "rejection_reason", "VERDICTS", "ATTEMPT_VERDICTS",
    "MAX_CODE_BYTES",
]
