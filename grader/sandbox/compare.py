"""Judge one check: the learner's observation against the reference's.

Runs in the trusted parent, in plain Python: nothing the learner's code did to
torch (or to anything else) can reach it. Messages teach: they say what the
value is, what was expected (unless the item hides expected values), and the
likely autograd reason for the difference.
"""
from __future__ import annotations

import math
import re
from typing import Any

from .jobs import Check

FLOATING = {"float16", "bfloat16", "float32", "float64"}
_NAME_ERROR = re.compile(r"NameError: name '(?P<name>[^']+)' is not defined")


def _num(v: Any) -> float:
    if isinstance(v, str):
        return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[v]
    return float(v)


def _fmt_number(v: Any) -> str:
    if isinstance(v, bool):
        return str(v)
    x = _num(v)
    if math.isnan(x) or math.isinf(x):
        return str(x)
    if isinstance(v, int):
        return str(v)
    return f"{x:.1f}" if x.is_integer() and abs(x) < 1e15 else f"{x:.6g}"


def describe(obs: dict[str, Any]) -> str:
    """A short, learner-readable rendering of an observation."""
    kind = obs["kind"]
    if kind == "none":
        return "None"
    if kind in ("bool", "int", "float"):
        return _fmt_number(obs["value"])
    if kind == "tensor":
        values = obs["values"]
        if values is None:
            return f"a tensor of shape {obs['shape']}"
        if not obs["shape"]:
            return _fmt_number(values[0])
        shown = ", ".join(_fmt_number(v) for v in values[:6]) + (", …" if len(values) > 6 else "")
        return f"tensor([{shown}])" if len(obs["shape"]) == 1 else f"a {obs['shape']} tensor [{shown}]"
    if kind == "sequence":
        return f"a {obs['type']} of {obs['length']} item{'s' if obs['length'] != 1 else ''}"
    if kind == "other":
        return f"a {obs['type']} ({obs['repr']})"
    return "missing"


def _numbers(obs: dict[str, Any]) -> list[float] | None:
    if obs["kind"] in ("int", "float", "bool"):
        return [_num(obs["value"])]
    if obs["kind"] == "tensor" and obs["values"] is not None:
        return [_num(v) for v in obs["values"]]
    return None


def _close(a: list[float], b: list[float], rtol: float, atol: float) -> bool:
    """numpy.allclose semantics (b is the reference); infinities must match exactly."""
    for x, y in zip(a, b, strict=True):
        if math.isnan(x) or math.isnan(y):
            return False
        if math.isinf(x) or math.isinf(y):
            if x != y:
                return False
            continue
        if abs(x - y) > atol + rtol * abs(y):
            return False
    return True


def _ratio_hint(actual: list[float], expected: list[float], is_grad: bool) -> str:
    """Name the classic autograd slips when the numbers show one."""
    if any(e == 0 for e in expected) or any(not math.isfinite(v) for v in actual + expected):
        if is_grad and all(v == 0 for v in actual) and any(e != 0 for e in expected):
            return " — the gradient is all zeros: was it cleared after backward() instead of before?"
        return ""
    ratios = [a / e for a, e in zip(actual, expected)]
    r = ratios[0]
    if any(abs(x - r) > 1e-4 * max(1.0, abs(r)) for x in ratios):
        return ""
    if all(a == 0 for a in actual):
        return " — all zeros: was it cleared after it was computed?" if is_grad else ""
    k = round(r)
    if k >= 2 and abs(r - k) < 1e-4 * k:
        if is_grad:
            return (f" — {k}× the expected gradient: did backward() run more than once without clearing .grad "
                    "(gradients accumulate), or was a loss summed where it should be averaged?")
        return f" — {k}× the expected value"
    inv = 1 / r
    k = round(inv)
    if k >= 2 and abs(inv - k) < 1e-4 * k:
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
            want = f" but should have shape {expected['shape']}" if reveal else ", which is not the expected shape"
            return False, f"{name} has shape {actual['shape']}{want}"
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
    elif check.compare == "none":
        passed = actual["kind"] == "none"
        message = "" if passed else f"{name} should be None, but it is {describe(actual)}"
    elif check.compare == "bool":
        if actual["kind"] != "bool":
            passed, message = False, f"{name} is {describe(actual)}, expected True or False"
        else:
            passed = actual["value"] == expected["value"]
            message = "" if passed else _bool_message(name, check.target, actual["value"], expected["value"], reveal)
    else:
        passed, message = _value_message(name, check.target, actual, expected, check, reveal)
    if not passed and check.feedback:
        message = f"{message}{'' if message.endswith(('.', '?', '!')) else '.'} {check.feedback.strip()}"
    return passed, message
