"""Verdicts attributed right: what the learner's code did is the learner's, never `internal_error`.

internal_error is for the grader's own failures only; a verdict kind is never
chosen from a name the learner controls; an honest observation too large to
send is `failed` with a message that says so.
"""
from __future__ import annotations

import pytest

from grader.sandbox import Check, Job, Limits, Sandbox, SandboxFault

from .hostile import LIMITS, SOLUTION, WRONG, GradeFn, assert_error, assert_passed, describe

BOX = '''
class Box:
    @property
    def value(self):
        raise {raised}
box = Box()
'''


@pytest.mark.parametrize("raised", ["KeyboardInterrupt", "SystemExit(3)", "GeneratorExit",
                                    "type('Mine', (BaseException,), {})()"],
                         ids=["keyboard-interrupt", "system-exit", "generator-exit", "own-base-exception"])
def test_a_base_exception_while_a_target_is_read_is_an_error_naming_the_target(grade: GradeFn, raised: str) -> None:
    g = grade(SOLUTION + BOX.format(raised=raised), checks=[Check("box.value")], extra=[{"kind": "none"}])
    assert_error(g, "Reading `box.value` after your code ran raised", "the checks could not read your result")
    assert g.checks == []


def test_an_ordinary_exception_while_a_target_is_read_fails_that_check(grade: GradeFn) -> None:
    g = grade(SOLUTION + BOX.format(raised="ValueError('no value yet')"), checks=[Check("box.value")],
              extra=[{"kind": "none"}])
    assert g.status == "failed" and g.score == pytest.approx(2 / 3), describe(g)
    assert g.checks[2].message == "box.value could not be read: ValueError: no value yet"


@pytest.mark.parametrize("target_code", [
    "class Loud:\n    def __repr__(self):\n        raise KeyboardInterrupt\n    __str__ = __repr__\ng = Loud()\n",
    "class Loud:\n    def __eq__(self, other):\n        raise SystemExit\n    __hash__ = None\ng = Loud()\n",
], ids=["repr", "eq"])
def test_a_value_whose_methods_raise_is_observed_without_calling_them(grade: GradeFn, target_code: str) -> None:
    g = grade(SOLUTION + target_code, checks=[Check("g")],
              extra=[{"kind": "other", "type": "Loud", "repr": "<Loud object>"}])
    assert_passed(g)


@pytest.mark.parametrize("code", [
    "class E(SyntaxError):\n    pass\ne = E('odd')\ne.lineno, e.offset, e.text, e.filename = 'one', object(), 5, None\nraise e\n",
    "raise SyntaxError('hand-made', ('<submission>', 'x', [], 'text'))\n",
], ids=["subclass-non-int-fields", "bad-details"])
def test_a_syntax_error_raised_by_running_code_is_an_error(grade: GradeFn, code: str) -> None:
    g = grade(SOLUTION + code)
    assert_error(g, "SyntaxError" if "hand-made" in code else "E: odd")


def test_a_class_the_learner_named_memory_error_is_an_error_not_memory_limit(grade: GradeFn) -> None:
    g = grade(SOLUTION + "class MemoryError(Exception):\n    pass\nraise MemoryError('fake')\n")
    assert_error(g, "MemoryError: fake")
    assert "memory budget" not in (g.error or "")


def test_a_runtime_error_mentioning_the_allocator_is_an_error_not_memory_limit(grade: GradeFn) -> None:
    g = grade(SOLUTION + "raise ValueError(\"DefaultCPUAllocator: can't allocate memory\")\n")
    assert_error(g, "ValueError")


def test_a_real_allocation_failure_is_memory_limit(grade: GradeFn) -> None:
    g = grade(SOLUTION + "import torch\nbig = torch.empty(400 * 2**20, dtype=torch.uint8)\n")
    assert g.status == "memory_limit" and "128 MB memory budget" in (g.error or ""), describe(g)
    assert g.error_line == 6


@pytest.mark.parametrize("code, message", [
    ("import torch\ng = [torch.ones(10_000) for _ in range(64)]\n", "too large for the grader to read"),
    ("import torch\ng = torch.ones(10_000) * 1.2345678901234567\nh = [g] * 60\n", "too large for the grader to read"),
], ids=["list-of-tensors", "many-long-floats"])
def test_an_honest_observation_too_large_to_send_fails_with_a_clear_message(grade: GradeFn, code: str,
                                                                            message: str) -> None:
    target = "g" if "h =" not in code else "h"
    g = grade(SOLUTION + code, checks=[Check(target)], extra=[{"kind": "none"}])
    assert g.status == "failed", describe(g)
    assert message in g.checks[2].message and "result channel" not in (g.error or "")


def test_a_runaway_recursion_is_the_learners_not_the_graders(grade: GradeFn) -> None:
    code = SOLUTION + "import sys\nsys.setrecursionlimit(10**9)\ndef down(n):\n    return down(n + 1)\ndown(0)\n"
    g = grade(code, limits=Limits(cpu_seconds=5, memory_mb=128, wall_seconds=20))
    assert g.status in ("memory_limit", "error"), describe(g)
    assert "os._exit" not in (g.error or "") and "not your fault" not in (g.error or "")
    if g.status == "memory_limit":
        assert "128 MB memory budget" in (g.error or "")


@pytest.mark.parametrize("code, fragment", [
    ("import os\nos._exit(70)\n", "exit status 70"),
    ("import os\nos._exit(0)\n", "exit status 0"),
    ("class Odd(Exception):\n    def __str__(self):\n        raise KeyboardInterrupt\nraise Odd()\n", "Odd: <unprintable>"),
    ("class Odd(Exception):\n    def __str__(self):\n        return 42\nraise Odd()\n", "Odd: <unprintable>"),
    ("raise ValueError('x' * 10_000_000)\n", "ValueError: xxxx"),
], ids=["exit-70", "exit-0", "str-raises", "str-not-str", "huge-message"])
def test_whatever_ends_the_learners_code_is_the_learners(grade: GradeFn, code: str, fragment: str) -> None:
    g = grade(SOLUTION + code)
    assert_error(g, fragment)
    assert "not your fault" not in (g.error or "")


def test_the_items_own_setup_failing_is_internal_error(sandbox: Sandbox) -> None:
    from grader.sandbox import grade_code

    g = grade_code(sandbox, code=SOLUTION, setup="raise RuntimeError('broken item')\n", checks=[Check("x.grad")],
                   reference=[{"kind": "none"}], limits=LIMITS, reveal_expected=True)
    assert g.status == "internal_error" and "broken item" in (g.error or ""), describe(g)


def test_a_fault_of_the_zygote_costs_only_its_own_job(sandbox: Sandbox) -> None:
    pid, restarts = sandbox.zygote_pid, sandbox.restarts
    with pytest.raises(SandboxFault, match="memory limit out of range"):
        sandbox.run(Job(code=WRONG, targets=("x",), limits=Limits(memory_mb=5000)))
    outcome = sandbox.run(Job(code=SOLUTION, targets=("x.grad",), limits=LIMITS))
    assert outcome.frame is not None and outcome.frame["phase"] == "done"
    assert (sandbox.zygote_pid, sandbox.restarts) == (pid, restarts)
