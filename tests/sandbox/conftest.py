"""Fixtures of the hostile-code tests: one zygote per module, watched, and a `grade` function."""
from __future__ import annotations

from typing import Any

import pytest

from grader.sandbox import Check, Grade, Limits, Sandbox, grade_code, observe_reference

from .hostile import CHECKS, LIMITS, SOLUTION, GradeFn, ZygoteWatch


@pytest.fixture(scope="module")
def zygote(sandbox: Sandbox) -> ZygoteWatch:
    assert sandbox.zygote_pid is not None, "the session sandbox is not running"
    return ZygoteWatch(sandbox)


@pytest.fixture(scope="module")
def reference(sandbox: Sandbox) -> list[dict[str, Any]]:
    return observe_reference(sandbox, solution=SOLUTION, setup="", targets=[c.target for c in CHECKS],
                             limits=Limits())


@pytest.fixture
def grade(sandbox: Sandbox, zygote: ZygoteWatch, reference: list[dict[str, Any]]) -> GradeFn:
    """Grade code against the polynomial reference, then check the zygote survived."""

    def run(code: str | bytes, *, limits: Limits = LIMITS, checks: list[Check] | None = None,
            extra: list[dict[str, Any]] | None = None) -> Grade:
        """extra: hand-made reference observations for checks beyond CHECKS."""
        all_checks = CHECKS + (checks or [])
        expected = reference + (extra or [])
        assert len(expected) == len(all_checks), "one reference observation per check"
        # screen=False: these tests prove the sandbox holds against code the static screen would refuse.
        result = grade_code(sandbox, code=code, setup="", checks=all_checks, reference=expected, limits=limits,
                            reveal_expected=True, screen=False)
        zygote.check()
        return result

    return run
