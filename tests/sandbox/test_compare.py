"""Unit tests of the trusted-side judgement: compare.compare and grading.judge,
fed with hand-made observations (no sandbox, no torch)."""
from __future__ import annotations

import signal
from typing import Any

import pytest

from grader.sandbox import Check, Limits, RunOutcome, judge
from grader.sandbox import schema
from grader.sandbox.compare import compare, describe

LIMITS = Limits(cpu_seconds=1, memory_mb=128)


def tensor(values: list[Any], shape: list[int] | None = None, dtype: str = "float32", **extra: Any) -> dict[str, Any]:
    shape = [len(values)] if shape is None else shape
    numel = 1
    for n in shape:
        numel *= n
    return {"kind": "tensor", "dtype": dtype, "shape": shape, "numel": numel, "requires_grad": False,
            "is_leaf": True, "grad_fn": None, "values": values, **extra}


def scalar(value: float | str, dtype: str = "float32") -> dict[str, Any]:
    return tensor([value], shape=[], dtype=dtype)


def number(value: Any) -> dict[str, Any]:
    kind = "bool" if isinstance(value, bool) else "int" if isinstance(value, int) else "float"
    return {"kind": kind, "value": value}


NONE = {"kind": "none"}


def check_value(expected: dict[str, Any], actual: dict[str, Any], *, reveal: bool = True,
                **options: Any) -> tuple[bool, str]:
    return compare(Check(options.pop("target", "v"), **options), expected, actual, reveal)


def outcome(frame: dict[str, Any] | None = None, **fields: Any) -> RunOutcome:
    base: dict[str, Any] = {
        "frame": frame, "frame_error": None, "killed_for": None, "started": True, "memory": None,
        "exit_code": None, "exit_signal": None,
        "cpu_seconds": None, "output": "", "output_bytes": 0, "wall_ms": 1.0, "layers": {},
    }
    base.update(fields)
    return RunOutcome(**base)


def done(*observations: dict[str, Any]) -> RunOutcome:
    return outcome({"v": 1, "phase": "done", "observations": list(observations)})


def error_frame(phase: str, kind: str, message: str, *, target: str | None = None, **extra: Any) -> RunOutcome:
    error = {"type": kind, "message": message, "traceback": f"Traceback\n  line 3, in <module>\n{kind}: {message}",
             "line": 3, "phase": "run" if phase != "syntax_error" else "compile", **extra}
    frame = {"v": 1, "phase": phase, "error": error, **({"target": target} if target else {})}
    schema.validate_frame(frame, 1)
    return outcome(frame)


# -- tolerances ----------------------------------------------------------------------------
@pytest.mark.parametrize("actual, ok", [
    (7.0, True),
    (7.0 + 7e-5, True),    # |a - e| = 7e-5 <= 1e-8 + 1e-5 * 7
    (7.0 + 8e-5, False),   # just outside rtol
    (7.0 - 8e-5, False),
])
def test_allclose_uses_relative_tolerance(actual: float, ok: bool) -> None:
    passed, message = check_value(scalar(7.0), scalar(actual))
    assert passed is ok
    assert (message == "") is ok


def test_allclose_uses_absolute_tolerance_near_zero() -> None:
    assert check_value(scalar(0.0), scalar(5e-9))[0]
    assert not check_value(scalar(0.0), scalar(5e-8))[0]
    assert check_value(scalar(0.0), scalar(5e-8), atol=1e-7)[0]


def test_check_tolerances_can_be_loosened() -> None:
    assert not check_value(scalar(1.0), scalar(1.01))[0]
    assert check_value(scalar(1.0), scalar(1.01), rtol=0.02)[0]


def test_tolerance_is_relative_to_the_reference_not_the_answer() -> None:
    # numpy.allclose semantics: |a - e| <= atol + rtol * |e| (e the reference).
    assert check_value(scalar(100.0), scalar(150.0), rtol=0.5)[0]
    assert not check_value(scalar(150.0), scalar(100.0), rtol=0.3)[0]


def test_every_element_must_be_close() -> None:
    passed, message = check_value(tensor([1.0, 2.0, 3.0]), tensor([1.0, 2.0, 3.1]))
    assert not passed
    assert "tensor([1.0, 2.0, 3.1]), expected tensor([1.0, 2.0, 3.0])" in message


# -- shapes and types --------------------------------------------------------------------------
def test_shape_mismatch_names_both_shapes() -> None:
    passed, message = check_value(tensor([7.0, 9.0]), tensor([7.0, 9.0, 0.0]), target="x.grad")
    assert not passed
    assert message == "x.grad has shape [3] but should have shape [2]"


def test_shape_mismatch_with_equal_values_is_refused() -> None:
    passed, message = check_value(tensor([7.0, 9.0], shape=[2]), tensor([7.0, 9.0], shape=[1, 2]))
    assert not passed and "shape [1, 2]" in message


def test_float32_and_float64_are_interchangeable_unless_strict() -> None:
    assert check_value(scalar(7.0, "float32"), scalar(7.0, "float64")) == (True, "")
    passed, message = check_value(scalar(7.0, "float32"), scalar(7.0, "float64"), strict_dtype=True)
    assert not passed
    assert message == "v has dtype torch.float64, expected torch.float32"


def test_integer_tensor_is_not_a_float_tensor() -> None:
    passed, message = check_value(tensor([1.0, 2.0]), tensor([1, 2], dtype="int64"))
    assert not passed
    assert "dtype torch.int64, expected torch.float32" in message


def test_zero_dim_tensor_and_python_float_are_interchangeable_unless_strict() -> None:
    assert check_value(number(7.0), scalar(7.0)) == (True, "")
    assert check_value(scalar(7.0), number(7.0)) == (True, "")
    passed, message = check_value(number(7.0), scalar(7.0), strict_dtype=True, target="g")
    assert not passed
    assert message == "g is a tensor (7.0), expected a Python number 7.0 — use .item() to get a Python number"
    passed, message = check_value(scalar(7.0), number(7.0), strict_dtype=True, target="g")
    assert not passed and "expected a tensor" in message


def test_many_element_tensor_is_not_a_number() -> None:
    passed, message = check_value(number(7.0), tensor([7.0, 7.0]))
    assert not passed and "expected a Python number" in message


def test_bool_is_not_a_number() -> None:
    passed, message = check_value(number(1.0), number(True))
    assert not passed
    assert message == "v is True, expected 1.0"


def test_tuple_from_autograd_grad_gets_a_hint() -> None:
    actual = {"kind": "sequence", "type": "tuple", "length": 1, "items": [scalar(0.9182)]}
    passed, message = check_value(scalar(0.9182), actual, target="g")
    assert not passed
    assert message == ("g is a tuple of 1 item, not a tensor — it looks like the tuple that torch.autograd.grad "
                       "returns: take its first element")


def test_sequences_compare_item_by_item() -> None:
    expected = {"kind": "sequence", "type": "list", "length": 2, "items": [scalar(1.0), scalar(2.0)]}
    same = {"kind": "sequence", "type": "list", "length": 2, "items": [scalar(1.0), scalar(2.0)]}
    other = {"kind": "sequence", "type": "list", "length": 2, "items": [scalar(1.0), scalar(3.0)]}
    assert check_value(expected, same) == (True, "")
    passed, message = check_value(expected, other, target="gs")
    assert not passed and message.startswith("gs[1] is 3.0, expected 2.0")


# -- special values -------------------------------------------------------------------------
@pytest.mark.parametrize("expected, actual", [
    (scalar("nan"), scalar("nan")),
    (number("nan"), number("nan")),
    (tensor([1.0, "nan"]), tensor([1.0, "nan"])),
    (scalar(1.0), scalar("nan")),
    (scalar("nan"), scalar(1.0)),
])
def test_nan_is_never_equal(expected: dict[str, Any], actual: dict[str, Any]) -> None:
    passed, message = check_value(expected, actual, rtol=1e9, atol=1e9)
    assert not passed and "nan" in message


def test_infinities_must_match_exactly() -> None:
    assert check_value(scalar("inf"), scalar("inf"))[0]
    assert not check_value(scalar("inf"), scalar("-inf"), rtol=1e9)[0]
    assert not check_value(scalar("inf"), scalar(1e308), rtol=1e9)[0]


# -- teaching messages ----------------------------------------------------------------------
def test_double_gradient_mentions_accumulation() -> None:
    passed, message = check_value(scalar(7.0), scalar(14.0), target="x.grad")
    assert not passed
    assert "2× the expected gradient" in message and "accumulate" in message


def test_half_value_mentions_mean_and_sum() -> None:
    passed, message = check_value(tensor([7.0, 9.0]), tensor([3.5, 4.5]), target="x.grad")
    assert not passed and "1/2 of the expected gradient" in message and "mean()" in message and "sum()" in message


def test_flipped_sign_is_named() -> None:
    assert check_value(scalar(7.0), scalar(-7.0), target="x.grad")[1].endswith("the sign is flipped")


def test_zeroed_gradient_is_named() -> None:
    message = check_value(tensor([7.0, 9.0]), tensor([0.0, 0.0]), target="x.grad")[1]
    assert "all zeros" in message


@pytest.mark.parametrize("owner, fragment", [
    (None, "did you call backward()?"),
    ({"requires_grad": False, "is_leaf": True, "retains_grad": False}, "`x` does not track gradients"),
    ({"requires_grad": True, "is_leaf": False, "retains_grad": False}, "call `x.retain_grad()` before backward()"),
    ({"requires_grad": True, "is_leaf": True, "retains_grad": False}, "did you call backward()?"),
])
def test_none_gradient_message_explains_why(owner: dict[str, bool] | None, fragment: str) -> None:
    actual = dict(NONE, owner=owner) if owner else dict(NONE)
    passed, message = check_value(scalar(7.0), actual, target="x.grad")
    assert not passed
    assert message.startswith("x.grad is None") and fragment in message


def test_missing_variable_names_the_variable_to_define() -> None:
    actual = {"kind": "missing", "error": "NameError: name 'g' is not defined"}
    passed, message = check_value(scalar(7.0), actual, target="g")
    assert not passed
    assert message == "g could not be read: `g` is not defined — store your result in a variable named `g`"


def test_feedback_is_appended_after_the_message() -> None:
    passed, message = check_value(scalar(7.0), scalar(6.0), feedback="Use y.backward().\n")
    assert not passed and message == "v is 6.0, expected 7.0. Use y.backward()."


def test_none_and_bool_modes() -> None:
    assert compare(Check("x.grad", "none"), NONE, NONE, True) == (True, "")
    passed, message = compare(Check("x.grad", "none"), NONE, scalar(0.5), True)
    assert not passed and message == "x.grad should be None, but it is 0.5"
    assert compare(Check("x.requires_grad", "bool"), number(True), number(True), True) == (True, "")
    passed, message = compare(Check("x.requires_grad", "bool"), number(True), number(False), True)
    assert not passed and message.startswith("x.requires_grad is False, expected True")
    passed, message = compare(Check("flag", "bool"), number(True), number(1), True)
    assert not passed and message == "flag is 1, expected True or False"


# -- hidden expected values -------------------------------------------------------------------
SECRET = 7.25


@pytest.mark.parametrize("expected, actual", [
    (scalar(SECRET), scalar(3.0)),                       # wrong value
    (scalar(SECRET), scalar(SECRET * 2)),                # would get a ratio hint
    (scalar(SECRET), NONE),                              # None, not a gradient
    (tensor([SECRET, 1.5]), tensor([1.0, 2.0, 3.0])),    # shape mismatch
    (tensor([SECRET, 1.5]), number(2.0)),                # a number for a tensor
    (number(SECRET), number(True)),                      # a bool for a number
    (number(SECRET), {"kind": "other", "type": "str", "repr": "'x'"}),
    ({"kind": "other", "type": "str", "repr": f"'{SECRET}'"}, {"kind": "other", "type": "str", "repr": "'x'"}),
    ({"kind": "sequence", "type": "tuple", "length": 1, "items": [scalar(SECRET)]},
     {"kind": "sequence", "type": "tuple", "length": 1, "items": [scalar(1.0)]}),
])
def test_expected_value_is_hidden_unless_revealed(expected: dict[str, Any], actual: dict[str, Any]) -> None:
    passed, hidden = check_value(expected, actual, reveal=False, target="answer")
    assert not passed
    assert str(SECRET) not in hidden and "7.3" not in hidden and "1.5" not in hidden, hidden
    assert "expected 7" not in hidden and "should have shape [2]" not in hidden


def test_revealed_expected_value_is_shown() -> None:
    passed, message = check_value(scalar(SECRET), scalar(3.0), reveal=True, target="answer")
    assert not passed and message == "answer is 3.0, expected 7.25"
    passed, message = check_value(scalar(SECRET), scalar(3.0), reveal=False, target="answer")
    assert message == "answer is 3.0, which is not the expected value"


def test_judge_hides_expected_values_in_every_check() -> None:
    checks = [Check("a"), Check("b"), Check("c")]
    reference = [scalar(SECRET), tensor([SECRET, SECRET]), number(SECRET)]
    grade = judge(done(scalar(1.0), tensor([1.0]), NONE), checks, reference, limits=LIMITS, reveal_expected=False)
    assert grade.status == "failed" and grade.score == 0.0
    for result in grade.checks:
        assert not result.passed and str(SECRET) not in result.message, result.message


def test_describe_renders_observations() -> None:
    assert describe(NONE) == "None"
    assert describe(scalar(7.0)) == "7.0"
    assert describe(tensor([1.0, 2.5])) == "tensor([1.0, 2.5])"
    assert describe(tensor(list(range(8)), dtype="int64")) == "tensor([0, 1, 2, 3, 4, 5, …])"
    assert describe(tensor([1.0] * 4, shape=[2, 2])) == "a [2, 2] tensor [1.0, 1.0, 1.0, 1.0]"
    assert describe(dict(tensor([], shape=[200, 200]), values=None)) == "a tensor of shape [200, 200]"


# -- the score --------------------------------------------------------------------------------
def test_score_is_the_passed_share_of_the_weights() -> None:
    checks = [Check("a", weight=3.0), Check("b", weight=1.0)]
    reference = [scalar(1.0), scalar(2.0)]
    grade = judge(done(scalar(1.0), scalar(0.0)), checks, reference, limits=LIMITS, reveal_expected=True)
    assert grade.status == "failed"
    assert grade.score == 0.75
    assert [(c.name, c.passed, c.weight) for c in grade.checks] == [("a", True, 3.0), ("b", False, 1.0)]
    grade = judge(done(scalar(0.0), scalar(2.0)), checks, reference, limits=LIMITS, reveal_expected=True)
    assert grade.status == "failed" and grade.score == 0.25


def test_all_checks_passing_is_passed_with_score_one() -> None:
    checks = [Check("a", weight=0.5), Check("b", "none", name="b is unset")]
    grade = judge(done(scalar(1.0), NONE), checks, [scalar(1.0), NONE], limits=LIMITS, reveal_expected=True)
    assert grade.status == "passed" and grade.score == 1.0
    assert [c.name for c in grade.checks] == ["a", "b is unset"]


def test_thirds_are_rounded_to_six_places() -> None:
    checks = [Check("a"), Check("b"), Check("c")]
    reference = [scalar(1.0)] * 3
    grade = judge(done(scalar(1.0), scalar(1.0), scalar(0.0)), checks, reference, limits=LIMITS,
                  reveal_expected=True)
    assert grade.score == 0.666667


def test_judge_needs_one_observation_per_check() -> None:
    with pytest.raises(ValueError):
        judge(done(scalar(1.0)), [Check("a"), Check("b")], [scalar(1.0)] * 2, limits=LIMITS, reveal_expected=True)


# -- verdicts that are not about values -------------------------------------------------------
@pytest.mark.parametrize("run, status, fragment", [
    (error_frame("code_error", "ZeroDivisionError", "division by zero"), "error", "ZeroDivisionError"),
    (error_frame("syntax_error", "SyntaxError", "invalid syntax"), "error", "SyntaxError"),
    (error_frame("code_error", "MemoryError", "", memory=True), "memory_limit", "128 MB"),
    (error_frame("code_error", "RuntimeError", "DefaultCPUAllocator: can't allocate memory: you tried", memory=True),
     "memory_limit", "128 MB"),
    # The learner names the class: the grader's own memory flag decides, not the name.
    (error_frame("code_error", "MemoryError", "", memory=False), "error", "MemoryError"),
    (error_frame("code_error", "RuntimeError", "DefaultCPUAllocator: can't allocate memory"), "error",
     "DefaultCPUAllocator"),
    (error_frame("target_error", "KeyboardInterrupt", "", target="x.grad"), "error",
     "Reading `x.grad` after your code ran raised KeyboardInterrupt"),
    (outcome({"v": 1, "phase": "report_failed"}), "error", "unable to report"),
    (outcome({"v": 1, "phase": "report_failed"}, memory={"failcnt": 3, "oom_kill": 1}), "memory_limit", "128 MB"),
    (outcome({"v": 1, "phase": "unfinished"}), "error", "still running"),
    (outcome({"v": 1, "phase": "internal", "detail": "boom"}, started=True), "error", "broke the grader"),
    (outcome(None, exit_signal=signal.SIGKILL, cpu_seconds=0.1, memory={"failcnt": 9, "oom_kill": 1}),
     "memory_limit", "128 MB"),
    (outcome(None, exit_code=70, started=False), "internal_error", "not your fault"),
    (outcome(None, exit_signal=signal.SIGSEGV, started=False), "internal_error", "not your fault"),
    (error_frame("code_error", "OSError", "[Errno 27] File too large", errno=27), "output_limit", "16 MiB"),
    (error_frame("code_error", "OSError", "[Errno 28] No space left on device", errno=28), "output_limit", "16 MiB"),
    (error_frame("code_error", "PermissionError", "[Errno 13] Permission denied", errno=13), "error",
     "PermissionError"),
    (error_frame("code_error", "SystemExit", "0"), "error", "called exit()"),
    (error_frame("setup_error", "NameError", "name 'model' is not defined"), "internal_error", "not your fault"),
    (outcome({"v": 1, "phase": "internal", "detail": "boom"}, started=False), "internal_error", "not your fault"),
    (outcome(None, killed_for="wall"), "timeout", "3 s time limit"),
    (outcome(None, killed_for="output", output="x" * 100, output_bytes=2 << 20), "output_limit", "1 MiB"),
    (outcome(None, killed_for="frame"), "error", "result channel"),
    (outcome(None, frame_error="unexpected bytes after the result frame"), "error", "result channel"),
    (outcome(None, exit_signal=signal.SIGXCPU, cpu_seconds=1.0), "timeout", "CPU time"),
    (outcome(None, exit_signal=signal.SIGKILL, cpu_seconds=2.1), "timeout", "CPU time"),
    (outcome(None, exit_signal=signal.SIGKILL, cpu_seconds=0.1), "error", "SIGKILL"),
    (outcome(None, exit_signal=signal.SIGSEGV, cpu_seconds=0.1), "error", "SIGSEGV"),
    (outcome(None, exit_signal=signal.SIGXFSZ, cpu_seconds=0.1), "output_limit", "16 MiB"),
    (outcome(None, exit_code=3), "error", "exit status 3"),
])
def test_judge_verdicts_without_observations(run: RunOutcome, status: str, fragment: str) -> None:
    grade = judge(run, [Check("x.grad")], [scalar(7.0)], limits=LIMITS, reveal_expected=True)
    assert grade.status == status, grade
    assert fragment in (grade.error or ""), grade.error
    assert grade.score == 0.0 and grade.checks == []


def test_judge_reports_the_error_line_and_truncated_output() -> None:
    run = error_frame("code_error", "ValueError", "bad")
    run.output, run.output_bytes = "hello\n", 10_000
    grade = judge(run, [Check("x")], [scalar(1.0)], limits=LIMITS, reveal_expected=True)
    assert grade.error_line == 3
    assert grade.stdout == "hello\n\n[output truncated: 10000 bytes in all]"
