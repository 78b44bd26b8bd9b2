"""Turn the values a check names into plain JSON observations (child side).

Runs inside the graded child after the learner's code, so it keeps its own
references to the torch functions it calls, taken before any learner code
existed, and switches off __torch_function__ overrides while reading tensors.
"""
from __future__ import annotations

import math
import numbers
import re
from typing import Any

import torch

VALUES_CAP = 10_000  # tensor elements serialised per observation
ITEMS_CAP = 64  # elements of a list or tuple
REPR_CAP = 200

_TensorBase = torch._C.TensorBase
_detach = _TensorBase.detach
_reshape = _TensorBase.reshape
_tolist = _TensorBase.tolist
_numel = _TensorBase.numel
_size = _TensorBase.size
_requires_grad = _TensorBase.requires_grad.__get__
_is_leaf = _TensorBase.is_leaf.__get__
_grad_fn = _TensorBase.grad_fn.__get__
_retains_grad = _TensorBase.retains_grad.__get__
_dtype = _TensorBase.dtype.__get__
_no_torch_function = torch._C.DisableTorchFunctionSubclass
_type = type
_isinstance = isinstance
_issubclass = issubclass
_eval = eval
_compile = compile
_GRAD_TARGET = re.compile(r"^(?P<owner>.+)\.grad$", re.S)


def _number(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def observe_tensor(t: torch.Tensor) -> dict[str, Any]:
    with _no_torch_function():
        dtype = str(_dtype(t)).removeprefix("torch.")
        numel = int(_numel(t))
        grad_fn = _grad_fn(t)
        obs: dict[str, Any] = {
            "kind": "tensor",
            "dtype": dtype,
            "shape": [int(n) for n in _size(t)],
            "numel": numel,
            "requires_grad": bool(_requires_grad(t)),
            "is_leaf": bool(_is_leaf(t)),
            "grad_fn": None if grad_fn is None else _type(grad_fn).__name__,
            "values": None,
        }
        if numel <= VALUES_CAP and not dtype.startswith("complex"):
            flat = _tolist(_reshape(_detach(t), (-1,)))
            if dtype == "bool":
                obs["values"] = [bool(v) for v in flat]
            elif dtype.startswith(("int", "uint")):
                obs["values"] = [int(v) for v in flat]
            else:
                obs["values"] = [_number(float(v)) for v in flat]
    return obs


def observe_value(value: Any, depth: int = 0) -> dict[str, Any]:
    kind = _type(value)
    if value is None:
        return {"kind": "none"}
    if kind is bool:
        return {"kind": "bool", "value": value}
    if _issubclass(kind, _TensorBase):
        return observe_tensor(value)
    if kind is int or (_isinstance(value, numbers.Integral) and not _issubclass(kind, bool)):
        as_int = int(value)
        if -(2**63) <= as_int < 2**63:
            return {"kind": "int", "value": as_int}
        return {"kind": "float", "value": _number(float(as_int))}
    if _isinstance(value, numbers.Real):
        return {"kind": "float", "value": _number(float(value))}
    if kind in (list, tuple) and depth < 2:
        return {
            "kind": "sequence",
            "type": kind.__name__,
            "length": len(value),
            "items": [observe_value(v, depth + 1) for v in value[:ITEMS_CAP]],
        }
    try:
        text = repr(value)[:REPR_CAP]
    except Exception:  # noqa: BLE001 - a hostile __repr__ is still an observation
        text = "<unrepresentable>"
    return {"kind": "other", "type": kind.__name__[:80], "repr": text}


def _failure(exc: BaseException) -> dict[str, Any]:
    try:
        message = str(exc)[:300]
    except Exception:  # noqa: BLE001
        message = ""
    return {"kind": "missing", "error": f"{_type(exc).__name__}: {message}"}


def observe_target(target: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Evaluate one check target in the learner's namespace and describe the result."""
    try:
        obs = observe_value(_eval(_compile(target, "<check>", "eval"), namespace))
    except Exception as exc:  # noqa: BLE001 - a target that fails to evaluate is an observation
        return _failure(exc)
    match = _GRAD_TARGET.match(target.strip())
    if match:
        # For `x.grad`, say what x was: a tensor that tracks nothing, or a
        # non-leaf, explains a None gradient better than the None itself.
        try:
            owner = _eval(_compile(match["owner"], "<check>", "eval"), namespace)
            if _issubclass(_type(owner), _TensorBase):
                with _no_torch_function():
                    obs["owner"] = {
                        "requires_grad": bool(_requires_grad(owner)),
                        "is_leaf": bool(_is_leaf(owner)),
                        "retains_grad": bool(_retains_grad(owner)),
                    }
        except Exception:  # noqa: BLE001
            pass
    return obs
