"""Judge one check: the learner's observation against the reference's.

Runs in the trusted parent, in plain Python: nothing the learner's code did to
torch (or to anything else) can reach it. Messages teach: they say what the
value is, what was expected (unless the item hides expected values), and the
likely autograd reason for the difference.
"""
from __future__ import annotations

import math
import re
import sys
from decimal import Decimal
from fractions import Fraction
from typing import Any

from . import provenance
from .jobs import Check

FLOATING = {"float16", "bfloat16", "float32", "float64"}
# The check kinds judged on the facts the child traced, and the observation key that holds them.
_FACT_KEYS = {"autograd": "lineage", "derived": "lineage", "in_place": "same", "graph": "graph"}
_NAME_ERROR = re.compile(r"NameError: name '(?P<name>[^']+)' is not defined")
# Integers at least this large are shown in scientific notation: every int64 still shows exactly, and a
# learner's 10**400 (or 10**5000, whose str() Python refuses) shows as 1e+400.
_EXACT_INT_LIMIT = 10**21
# The largest integer a float can hold without overflowing; larger Python ints are compared exactly.
_FLOAT_MAX_INT = int(sys.float_info.max)
# A ratio hint names a slip such as backward() run k times; a larger factor is no such slip.
_MAX_MULTIPLE = 1000

Number = int | float  # an observed number: ints (and bools) stay exact, floats include nan and ±inf


def _num(v: Any) -> Number:
    """An observed value as a number; ints stay ints, since a learner's int can exceed the float range."""
    if isinstance(v, str):
        return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[v]
    return v


def _is_nan(x: Number) -> bool:
    return isinstance(x, float) and math.isnan(x)


def _is_inf(x: Number) -> bool:
    return isinstance(x, float) and math.isinf(x)


def _fits_float(x: Number) -> bool:
    return isinstance(x, float) or abs(x) <= _FLOAT_MAX_INT


def _as_float(x: Number) -> float:
    """x as a float, saturating at ±inf instead of raising OverflowError for huge ints."""
    if _fits_float(x):
        return float(x)
    return math.inf if x > 0 else -math.inf


def _fmt_int(n: int) -> str:
    """An int as text; huge ones in scientific notation (str() refuses ints over 4300 digits)."""
    if abs(n) < _EXACT_INT_LIMIT:
        return str(n)
    mantissa, exponent = f"{Decimal(n):.5e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{exponent}"


def _fmt_number(v: Any) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return _fmt_int(v)
    x = float(_num(v))
    if math.isnan(x) or math.isinf(x):
        return str(x)
    return f"{x:.1f}" if x.is_integer() and abs(x) < 1e15 else f"{x:.6g}"


def _fmt_shape(shape: list[int]) -> str:
    """A shape as Python prints a list ([2, 3]), safe for any int the schema lets through."""
    return "[" + ", ".join(_fmt_int(n) for n in shape) + "]"


def describe(obs: dict[str, Any]) -> str:
    """A short, learner-readable rendering of an observation."""
    kind = obs["kind"]
    if kind == "none":
        return "None"
    if kind in ("bool", "int", "float"):
        return _fmt_number(obs["value"])
    if kind == "tensor":
        values = obs["values"]
        if obs.get("subclass"):
            return f"a {obs['subclass']} (a subclass of torch.Tensor) of shape {_fmt_shape(obs['shape'])}"
        if values is None:
            return f"a tensor of shape {_fmt_shape(obs['shape'])}"
        if not obs["shape"]:
            return _fmt_number(values[0])
        shown = ", ".join(_fmt_number(v) for v in values[:6]) + (", …" if len(values) > 6 else "")
        return f"tensor([{shown}])" if len(obs["shape"]) == 1 else f"a {_fmt_shape(obs['shape'])} tensor [{shown}]"
    if kind == "sequence":
        return f"a {obs['type']} of {_fmt_int(obs['length'])} item{'s' if obs['length'] != 1 else ''}"
    if kind == "other":
        return f"a {obs['type']} ({obs['repr']})"
    if kind == "oversized":
        return f"a value of {_fmt_int(obs['bytes'])} bytes written out"
    return "missing"


def _numbers(obs: dict[str, Any]) -> list[Number] | None:
    if obs["kind"] in ("int", "float", "bool"):
        return [_num(obs["value"])]
    if obs["kind"] == "tensor" and obs["values"] is not None:
        return [_num(v) for v in obs["values"]]
    return None


def _close_pair(x: Number, y: Number, rtol: float, atol: float) -> bool:
    """|x - y| <= atol + rtol * |y| (y the reference); nan never matches, infinities only themselves."""
    if _is_nan(x) or _is_nan(y):
        return False
    if _is_inf(x) or _is_inf(y):
        return x == y
    if _fits_float(x) and _fits_float(y):
        return not abs(float(x) - float(y)) > atol + rtol * abs(float(y))
    # An int beyond the float range (a learner's 10**400): float arithmetic would overflow, so compare exactly.
    difference = abs(Fraction(x) - Fraction(y))
    if math.isfinite(rtol) and math.isfinite(atol):
        return difference <= Fraction(atol) + Fraction(rtol) * abs(Fraction(y))
    return not difference > atol + rtol * abs(_as_float(y))


def _close(a: list[Number], b: list[Number], rtol: float, atol: float) -> bool:
    """numpy.allclose semantics (b is the reference); infinities must match exactly."""
    return len(a) == len(b) and all(_close_pair(x, y, rtol, atol) for x, y in zip(a, b))


def _multiple(x: float) -> int | None:
    """k when x is (within 1e-4 relative) a whole number k from 2 to _MAX_MULTIPLE; round() needs finite x."""
    if not 1.5 <= x <= _MAX_MULTIPLE + 0.5:  # also False for nan
        return None
    k = round(x)
    return k if abs(x - k) < 1e-4 * k else None


def _ratio_hint(actual: list[Number], expected: list[Number], is_grad: bool) -> str:
    """Name the classic autograd slips when the numbers show one.

    Learner values can be anything a float holds (1.7e308, 1e-320) or bigger ints, so every ratio is
    checked to be finite and non-zero before it is rounded or inverted.
    """
    act, exp = [_as_float(v) for v in actual], [_as_float(v) for v in expected]
    if not act or any(e == 0 for e in exp) or any(not math.isfinite(v) for v in act + exp):
        if is_grad and act and all(v == 0 for v in act) and any(e != 0 for e in exp):
            return " — the gradient is all zeros: was it cleared after backward() instead of before?"
        return ""
    ratios = [a / e for a, e in zip(act, exp)]
    if any(not math.isfinite(x) for x in ratios):  # a / e overflowed: no slip makes a value that much larger
        return ""
    r = ratios[0]
    if any(abs(x - r) > 1e-4 * max(1.0, abs(r)) for x in ratios):
        return ""
    if all(a == 0 for a in act):
        return " — all zeros: was it cleared after it was computed?" if is_grad else ""
    k = _multiple(r)
    if k is not None:
        if is_grad:
            return (f" — {k}× the expected gradient: did backward() run more than once without clearing .grad "
                    "(gradients accumulate), or was a loss summed where it should be averaged?")
        return f" — {k}× the expected value"
    k = _multiple(1 / r) if r != 0 else None  # r is 0 when a tiny value's ratio underflowed
    if k is not None:
        if is_grad:
            return (f" — 1/{k} of the expected gradient: was the output averaged (mean()) where it should "
                    "be summed (sum())?")
        return f" — 1/{k} of the expected value"
    if abs(r + 1) < 1e-6:
        return " — the sign is flipped"
    return ""


def _missing_message(name: str, obs: dict[str, Any]) -> str:
    match = _NAME_ERROR.search(obs["error"])
    if match:
        return f"{name} could not be read: `{match['name']}` is not defined — store your result in a variable named `{match['name']}`"
    return f"{name} could not be read: {obs['error']}"


def _none_grad_message(name: str, owner_expr: str, actual: dict[str, Any]) -> str:
    owner = actual.get("owner")
    if owner and not owner["requires_grad"]:
        return (f"{name} is None — `{owner_expr}` does not track gradients (requires_grad is False), "
                f"so backward() cannot fill its .grad")
    if owner and not owner["is_leaf"] and not owner["retains_grad"]:
        return (f"{name} is None — `{owner_expr}` is not a leaf tensor, and PyTorch keeps .grad only for leaves; "
                f"call `{owner_expr}.retain_grad()` before backward()")
    if owner and not owner["is_leaf"]:
        return (f"{name} is None — `{owner_expr}.retain_grad()` was called, but no backward() ran through "
                f"`{owner_expr}` afterwards: call retain_grad() before backward()")
    return f"{name} is None — did you call backward()? (or was .grad set back to None afterwards?)"


def _bool_message(name: str, target: str, actual: bool, expected: bool, reveal: bool) -> str:
    head = f"{name} is {actual}, expected {expected}" if reveal else f"{name} is {actual}, which is not what was expected"
    if target.endswith(".requires_grad"):
        tail = (" — the tensor does not track gradients: create it with requires_grad=True or call .requires_grad_()"
                if expected else " — it still tracks gradients: switch that off with .requires_grad_(False), or make "
                "it with torch.no_grad() or .detach() (those stop recording for new results, not for existing tensors)")
    elif target.endswith(".is_leaf"):
        tail = (" — it is the result of an operation on a tensor that tracks gradients; .detach() makes a leaf"
                if expected else " — a tensor created directly (or detached) is a leaf; this one should come out of an operation")
    elif "is_grad_enabled" in target:
        tail = (" — gradient recording was left switched off: prefer `with torch.no_grad():`, which restores it"
                if expected else " — gradient recording should be off at this point")
    else:
        tail = ""
    return head + tail


def _value_message(name: str, target: str, actual: dict[str, Any], expected: dict[str, Any],
                   check: Check, reveal: bool) -> tuple[bool, str]:
    is_grad = target.strip().endswith(".grad")
    if actual["kind"] == "none":
        if is_grad:
            return False, _none_grad_message(name, target.strip()[: -len(".grad")], actual)
        return False, f"{name} is None" + (f", expected {describe(expected)}" if reveal else "")
    if expected["kind"] == "sequence":
        return _sequence_message(name, actual, expected, check, reveal)
    if actual["kind"] == "sequence" and expected["kind"] == "tensor" and actual["items"]:
        first_ok, _ = _value_message(f"{name}[0]", target, actual["items"][0], expected, check, reveal)
        hint = " — it looks like the tuple that torch.autograd.grad returns: take its first element" if first_ok else ""
        return False, f"{name} is {describe(actual)}, not a tensor{hint}"
    exp_nums, act_nums = _numbers(expected), _numbers(actual)
    if exp_nums is None or act_nums is None:
        if expected["kind"] == "other" and actual["kind"] == "other":
            same = actual["type"] == expected["type"] and actual["repr"] == expected["repr"]
            return same, "" if same else f"{name} is {describe(actual)}" + (f", expected {describe(expected)}" if reveal else "")
        if expected["kind"] == "tensor" and expected["values"] is None:
            return False, f"{name} is too large to compare (over 10,000 elements)"
        want = f", expected {describe(expected)}" if reveal else f", expected a {'tensor' if expected['kind'] == 'tensor' else 'number'}"
        return False, f"{name} is {describe(actual)}{want}"
    # Type and shape
    if expected["kind"] == "tensor" and actual["kind"] == "tensor":
        if actual["shape"] != expected["shape"]:
            want = (f" but should have shape {_fmt_shape(expected['shape'])}" if reveal
                    else ", which is not the expected shape")
            return False, f"{name} has shape {_fmt_shape(actual['shape'])}{want}"
        if actual["dtype"] != expected["dtype"] and (
            check.strict_dtype or not (actual["dtype"] in FLOATING and expected["dtype"] in FLOATING)
        ):
            return False, f"{name} has dtype torch.{actual['dtype']}, expected torch.{expected['dtype']}"
    elif expected["kind"] != actual["kind"]:
        exp_is_tensor, act_is_tensor = expected["kind"] == "tensor", actual["kind"] == "tensor"
        if exp_is_tensor or act_is_tensor:
            if check.strict_dtype or len(act_nums) != 1 or len(exp_nums) != 1:
                value = f" {describe(expected)}" if reveal else ""
                if act_is_tensor:
                    return False, (f"{name} is a tensor ({describe(actual)}), expected a Python number{value} "
                                   "— use .item() to get a Python number")
                return False, f"{name} is a Python number ({describe(actual)}), expected a tensor{value}"
        elif expected["kind"] == "bool" or actual["kind"] == "bool":
            return False, f"{name} is {describe(actual)}" + (f", expected {describe(expected)}" if reveal else "")
    if _close(act_nums, exp_nums, check.rtol, check.atol):
        return True, ""
    if not reveal:
        return False, f"{name} is {describe(actual)}, which is not the expected value"
    return False, f"{name} is {describe(actual)}, expected {describe(expected)}{_ratio_hint(act_nums, exp_nums, is_grad)}"


def _sequence_message(name: str, actual: dict[str, Any], expected: dict[str, Any],
                      check: Check, reveal: bool) -> tuple[bool, str]:
    if actual["kind"] != "sequence" or actual["length"] != expected["length"]:
        return False, f"{name} is {describe(actual)}, expected {describe(expected)}"
    if len(actual["items"]) != len(expected["items"]):  # an honest child observes the same first items
        return False, (f"{name} is {describe(actual)}, but {len(actual['items'])} of its items were observed, "
                       f"not {len(expected['items'])}")
    for i, (a, e) in enumerate(zip(actual["items"], expected["items"])):
        ok, message = _value_message(f"{name}[{i}]", f"{name}[{i}]", a, e, check, reveal)
        if not ok:
            return False, message
    return True, ""


def compare(check: Check, expected: dict[str, Any], actual: dict[str, Any], reveal: bool) -> tuple[bool, str]:
    """(passed, message) for one check; the message is empty when it passed."""
    name = check.label
    if actual["kind"] == "missing":
        passed, message = False, _missing_message(name, actual)
    elif actual["kind"] == "oversized":
        passed, message = False, (f"{name} is too large for the grader to read ({describe(actual)}); the checks "
                                  "compare tensors of at most 10,000 elements and lists of at most 64 items")
    elif actual["kind"] == "tensor" and actual.get("subclass"):
        passed, message = False, (f"{name} is {describe(actual)}: the grader reads only plain tensors, made by "
                                  "torch and filled in by autograd")
    elif check.compare in _FACT_KEYS:
        if _FACT_KEYS[check.compare] not in actual:
            passed, message = False, f"{name} could not be traced"
        elif check.compare == "autograd":
            passed, message = provenance.judge_autograd(check, actual)
        elif check.compare == "derived":
            passed, message = provenance.judge_derived(check, actual)
        elif check.compare == "in_place":
            passed, message = provenance.judge_in_place(check, actual)
        else:
            passed, message = provenance.judge_graph(check, expected, actual, reveal)
    elif check.compare == "none":
        passed = actual["kind"] == "none"
        message = "" if passed else f"{name} should be None, but it is {describe(actual)}"
    elif check.compare == "bool":
        if actual["kind"] != "bool":
            passed, message = False, f"{name} is {describe(actual)}, expected True or False"
        elif expected["kind"] != "bool":  # the reference gave no bool: judge the pair as values
            passed, message = _value_message(name, check.target, actual, expected, check, reveal)
        else:
            passed = actual["value"] == expected["value"]
            message = "" if passed else _bool_message(name, check.target, actual["value"], expected["value"], reveal)
    else:
        passed, message = _value_message(name, check.target, actual, expected, check, reveal)
    if not passed and check.feedback:
        message = f"{message}{'' if message.endswith(('.', '?', '!')) else '.'} {check.feedback.strip()}"
    return passed, message
