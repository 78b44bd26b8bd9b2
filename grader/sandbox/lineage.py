"""Lineage: how the learner's tensors came to be, recorded while its code runs.

A torch-function mode on the learner's thread sees every torch call the
learner's code makes (it is pushed once the item's setup has run: what the
setup computed is given), under `no_grad` and `inference_mode` too (it sits
above autograd), and records:

* each operation: its name, the objects it returned and the objects it took
  (so a value can be traced back to the tensors it was computed from);
* each call into the autograd engine (`Tensor.backward`,
  `torch.autograd.backward`, `torch.autograd.grad`): the `.grad` tensors the
  engine wrote (owner, tensor, version, a copy of the values) and the
  gradients `autograd.grad` returned;
* `.grad` assigned by hand, in-place changes, `retain_grad`, and the
  grad-mode switches (`_set_grad_enabled`, `requires_grad_`, `detach`, the
  `requires_grad` and `data` setters), which are operations like any other.

The records are evidence, not a verdict: the main thread (observe.py) reads
them after the learner's thread has parked and checks each claim against the
tensors themselves (identity, version counter and values, read through
torch's C descriptors). The mode and its records are reachable only through
torch's private mode-stack API and frame objects, which the static hygiene
rules (static.py) refuse in submitted code; SECURITY.md says what that rests on.
"""
from __future__ import annotations

from typing import Any

import torch
from torch.overrides import TorchFunctionMode

MAX_OPS = 20_000  # operations recorded per job; past this the lineage is reported incomplete
# Tensor elements the records may keep alive (they hold every result, so that ids stay unique): past this the
# lineage is reported incomplete rather than the learner's memory budget spent on the grader's records.
MAX_KEPT_ELEMENTS = 8 << 20
SNAPSHOT_CAP = 1 << 16  # elements of an engine-written gradient copied for the change check

_TensorBase = torch._C.TensorBase
_no_torch_function = torch._C.DisableTorchFunction
_grad_descriptor = _TensorBase.__dict__["grad"]
_grad = _grad_descriptor.__get__
_grad_fn = _TensorBase.grad_fn.__get__
_version = _TensorBase._version.__get__
_numel = _TensorBase.numel
_detach = _TensorBase.detach
_clone = _TensorBase.clone
_ENGINE_CALLS = {torch.Tensor.backward: "backward", torch.autograd.backward: "backward",
                 torch.autograd.grad: "autograd.grad"}
_GRAD = torch.autograd.grad
_is_grad_enabled = torch.is_grad_enabled  # a C function: no torch-function dispatch
_IN_PLACE_DUNDERS = frozenset({"__iadd__", "__isub__", "__imul__", "__itruediv__", "__ifloordiv__", "__imod__",
                               "__ipow__", "__iand__", "__ior__", "__ixor__", "__ilshift__", "__irshift__",
                               "__imatmul__"})
try:
    from numpy import ndarray as _ndarray
except ImportError:  # pragma: no cover - numpy is in requirements.txt
    _ndarray = float
# Besides tensors, values are traced through Python floats and numpy arrays (x.grad.item(), t.numpy()); not
# ints or bools, whose small values are shared objects, so identity would link unrelated values.


def flat(value: Any, out: list[Any], depth: int = 0) -> list[Any]:
    """The tensors (and Python floats, numpy arrays) in value, two levels into lists, tuples and dicts
    (torch.tensor(d.tolist()) takes a list of floats inside its argument tuple)."""
    kind = type(value)
    if isinstance(value, _TensorBase) or kind is float or kind is _ndarray:
        out.append(value)
    elif depth < 2 and (kind is list or kind is tuple):
        for item in value:
            flat(item, out, depth + 1)
    elif depth < 2 and kind is dict:
        for item in value.values():
            flat(item, out, depth + 1)
    return out


def graph_leaves(roots: list[Any], retained: list[Any]) -> list[Any]:
    """Tensors whose .grad a backward pass from roots may write: the graph's leaves, and the
    tensors retain_grad() was called on."""
    seen: set[int] = set()
    leaves: list[Any] = list(retained)
    stack = []
    for root in roots:
        if isinstance(root, _TensorBase):
            node = _grad_fn(root)
            if node is not None:
                stack.append(node)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        variable = getattr(node, "variable", None) if type(node).__name__ == "AccumulateGrad" else None
        if variable is not None:
            leaves.append(variable)
            continue
        for child, _ in node.next_functions:
            if child is not None:
                stack.append(child)
    return leaves


def grad_state(tensor: Any) -> tuple[Any, int]:
    grad = _grad(tensor)
    return grad, (-1 if grad is None else _version(grad))


def snapshot(grad: Any) -> Any:
    if _numel(grad) > SNAPSHOT_CAP:
        return None
    return _clone(_detach(grad))


class Recorder(TorchFunctionMode):
    """The lineage of one job. `events` is in call order; every entry is a plain tuple:

        ("op", name, results, inputs, grad_enabled)
        ("write", owner, grad, version, copy)     the engine wrote owner.grad
        ("hand", owner, value)                    owner.grad = value, by hand
        ("engine", name, outputs, roots)          a call into the engine (outputs: autograd.grad's)
    """

    def __init__(self, events: list[tuple[Any, ...]], flags: list[bool]) -> None:
        """events and flags ([recording, overflowed]) are the main thread's own lists: it reads
        them without looking anything up on this class."""
        super().__init__()
        self.events = events
        self.flags = flags
        self.retained: list[Any] = []
        self.kept = 0

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        if kwargs is None:
            kwargs = {}
        if not self.flags[0]:
            return func(*args, **kwargs)
        if len(self.events) >= MAX_OPS:
            self.flags[0], self.flags[1] = False, True
            return func(*args, **kwargs)
        engine = _ENGINE_CALLS.get(func) if type(func) is type(flat) else None
        if engine is not None:
            return self.engine_call(engine, func, args, kwargs)
        owner = getattr(func, "__self__", None)
        if owner is _grad_descriptor and getattr(func, "__name__", "") == "__set__" and len(args) == 2:
            with _no_torch_function():
                current = _grad(args[0])
            if args[1] is not current:  # `x.grad += 1` writes the same tensor back: not a new gradient
                self.events.append(("hand", args[0], args[1]))
        result = func(*args, **kwargs)
        name = getattr(func, "__name__", "?")
        if name == "__set__" or name == "__get__":
            name = f"{getattr(owner, '__name__', '?')}.{name[2:5]}"
        inputs = flat(args, [])
        if kwargs:
            flat(kwargs, inputs)
        results = tuple(flat(result, []))
        self.events.append(("op", name, results, tuple(inputs), _is_grad_enabled()))
        for value in results:
            if isinstance(value, _TensorBase):
                self.kept += _numel(value)
        if self.kept > MAX_KEPT_ELEMENTS:
            self.flags[0], self.flags[1] = False, True
        if name == "retain_grad" and args:
            self.retained.append(args[0])
        return result

    def engine_call(self, name: str, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        roots = flat(args[0], []) if args else flat(kwargs.get("tensors", kwargs.get("outputs")), [])
        with _no_torch_function():
            leaves = graph_leaves(roots, self.retained)
            before = [grad_state(t) for t in leaves]
        result = func(*args, **kwargs)
        with _no_torch_function():
            for tensor, (old, old_version) in zip(leaves, before):
                grad, version = grad_state(tensor)
                if grad is not None and (grad is not old or version != old_version):
                    self.events.append(("write", tensor, grad, version, snapshot(grad)))
            outputs = tuple(flat(result, [])) if func is _GRAD else ()
            self.events.append(("engine", name, outputs, tuple(roots)))
        return result


MAX_GIVENS = 200
_Module = torch.nn.Module


def givens(namespace: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(label, name, object) for the tensors the item's setup made, a module's parameters included.

    Runs on the learner's thread right after the setup, before any learner
    code: the objects it names are the ones the checks call "given".
    """
    out: list[tuple[str, str, Any]] = []
    for key, value in list(namespace.items()):
        if type(key) is not str or key.startswith("_") or len(out) >= MAX_GIVENS:
            continue
        if isinstance(value, _TensorBase):
            out.append((key, key, value))
        elif isinstance(value, _Module):
            for name, parameter in value.named_parameters():
                out.append((f"{key}.{name}", key, parameter))
    return out


def resolve(names: tuple[str, ...], namespace: dict[str, Any], given: list[tuple[str, str, Any]]) -> None:
    """Add the learner's own tensors for source names the setup did not give (after the learner's code)."""
    for name in names:
        if any(root == name for _, root, _ in given):
            continue
        value = namespace.get(name)
        if isinstance(value, _TensorBase):
            given.append((name, name, value))
        elif isinstance(value, _Module):
            for label, parameter in value.named_parameters():
                given.append((f"{name}.{label}", name, parameter))
