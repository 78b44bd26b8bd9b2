"""The main thread's reading of lineage: facts about how a checked value came to be.

Runs as a private copy after the learner's thread has parked, under the same
discipline as observe.py (tests/sandbox/test_guard.py checks it): module-level
names are immutable values or C functions bound before any learner code
exists, objects are compared by identity, tensors are read through torch's C
descriptors with torch-function handling off, and the lineage events
(lineage.py) are read as hostile data, by exact type.

The facts are plain data for the parent, which judges them (compare.py):

    lineage  {"writer": engine | from_engine | hand | untraced | none,
              "changed": bool, "sources": [given names reached], "complete": bool}
    same     the target is the very object it was after the item's setup
    graph    {"nodes": [[type, kind, label]], "edges": [[parent, child]], "truncated": bool}
"""
from __future__ import annotations

from typing import Any

import torch

MAX_NODES = 200
MAX_EDGES = MAX_NODES * 8
MAX_VISITS = 200_000
LABEL_CAP = 60

_TensorBase = torch._C.TensorBase
_FunctionBase = torch._C._FunctionBase
_no_torch_function = torch._C.DisableTorchFunction
_grad = _TensorBase.grad.__get__
_grad_fn = _TensorBase.grad_fn.__get__
_size = _TensorBase.size
_equal = torch.equal
_count_nonzero = torch.count_nonzero
_type_name = type.__dict__["__name__"].__get__
_type_dict = type.__dict__["__dict__"].__get__
_type_mro = type.__dict__["__mro__"].__get__
_type_flags = type.__dict__["__flags__"].__get__
_function_next = _FunctionBase.__dict__["next_functions"].__get__
_HEAP_TYPE = 1 << 9
_PLAIN_TENSOR = torch.Tensor
_PARAMETER = torch.nn.Parameter
_id = id
_NOTHING = ()


def one_of(kind: type, options: tuple[type, ...]) -> bool:
    for option in options:
        if option is kind:
            return True
    return False


def index(events: Any) -> tuple[dict[int, list[Any]], dict[int, Any], dict[int, tuple[Any, ...]]]:
    """(producers: id -> objects it was computed from, engine: id -> gradients autograd made,
    last: id(owner) -> its last .grad event)."""
    producers: dict[int, list[Any]] = {}
    engine: dict[int, Any] = {}
    last: dict[int, tuple[Any, ...]] = {}
    pending: list[Any] = []
    if type(events) is not list:
        return producers, engine, last
    for event in events:
        if type(event) is not tuple or not event or type(event[0]) is not str:
            continue
        tag = event[0]
        if tag == "op" and len(event) == 5 and type(event[2]) is tuple and type(event[3]) is tuple:
            for result in event[2]:
                known = producers.get(_id(result))
                if known is None:
                    producers[_id(result)] = list(event[3])
                else:
                    known.extend(event[3])
        elif tag == "write" and len(event) == 5:
            last[_id(event[1])] = event
            engine[_id(event[2])] = event[2]
            pending.append(event[2])
        elif tag == "hand" and len(event) == 3:
            last[_id(event[1])] = event
        elif tag == "engine" and len(event) == 4 and type(event[2]) is tuple and type(event[3]) is tuple:
            for output in event[2]:
                engine[_id(output)] = output
                pending.append(output)
            for grad in pending:
                producers.setdefault(_id(grad), []).extend(event[3])
            pending = []
    return producers, engine, last


def reached(start: Any, producers: dict[int, list[Any]]) -> set[int]:
    """Ids of every object start was computed from (start included)."""
    seen = {_id(start)}
    stack = [start]
    while stack and len(seen) < MAX_VISITS:
        for source in producers.get(_id(stack.pop()), _NOTHING):
            if _id(source) not in seen:
                seen.add(_id(source))
                stack.append(source)
    return seen


def is_zero(t: Any) -> bool:
    return int(_count_nonzero(t)) == 0


def grad_writer(owner: Any, grad: Any, last: dict[int, tuple[Any, ...]]) -> tuple[str, bool]:
    """(who wrote owner.grad, whether it changed after autograd wrote it)."""
    if grad is None:
        return "none", False
    event = last.get(_id(owner))
    if event is None:
        return "untraced", False
    if event[0] == "hand":
        return "hand", False
    if event[2] is not grad or not one_of(type(grad), (_PLAIN_TENSOR,)):
        return "untraced", False
    copy = event[4]
    if copy is None or not one_of(type(copy), (_PLAIN_TENSOR,)) or _equal(grad, copy):
        return "engine", False
    # Zeroing a gradient autograd wrote (x.grad.zero_(), or through .data) carries no value of the learner's own.
    return "engine", not is_zero(grad)


def lineage(result: Any, attr: Any, indexed: Any, complete: bool,
            givens: list[tuple[str, str, Any]], sources: tuple[str, ...]) -> dict[str, Any]:
    """The lineage facts of one read target (result is the learner thread's ("value"|"owner", object);
    indexed is index() of the job's events, built once per job)."""
    producers, engine, last = indexed
    value = result[1]
    with _no_torch_function():
        if result[0] == "owner" and attr == "grad" and isinstance(value, _TensorBase):
            checked = _grad(value)
            writer, changed = grad_writer(value, checked, last)
        else:
            checked, changed = value, False
            writer = "engine" if _id(value) in engine else "none"
        seen = reached(checked, producers) if checked is not None else set()
        if writer == "none" and checked is not None:
            for key in seen:
                if key in engine:
                    writer = "from_engine"
                    break
        found = []
        for name in sources:
            for label, root, obj in givens:
                if root == name and _id(obj) in seen:
                    found.append(name)
                    break
    return {"writer": writer, "changed": changed, "sources": found, "complete": complete}


def next_functions(node: Any) -> Any:
    kind = type(node)
    if _type_flags(kind) & _HEAP_TYPE:
        for base in _type_mro(kind):
            if base is _FunctionBase:
                return _function_next(node)
        return _NOTHING
    descriptor = _type_dict(kind).get("next_functions")
    return _NOTHING if descriptor is None else descriptor.__get__(node)


def leaf_of(node: Any) -> Any:
    kind = type(node)
    if _type_flags(kind) & _HEAP_TYPE:
        return None
    descriptor = _type_dict(kind).get("variable")
    return None if descriptor is None else descriptor.__get__(node)


def node_entry(node: Any, names: dict[int, str]) -> list[str]:
    kind = type(node)
    name = _type_name(kind)[:LABEL_CAP]
    if _type_flags(kind) & _HEAP_TYPE:
        return [name, "custom", name]
    variable = leaf_of(node) if name == "AccumulateGrad" else None
    if variable is None:
        return [name, "op", name]
    label = names.get(_id(variable))
    if label is None:
        shape = ", ".join([str(int(n)) for n in _size(variable)])
        label = f"tensor [{shape}]"
    return [name, "leaf", label[:LABEL_CAP]]


def graph(value: Any, names: dict[int, str]) -> dict[str, Any]:
    """The autograd graph behind value: its grad_fn and everything it leads to."""
    out: dict[str, Any] = {"nodes": [], "edges": [], "truncated": False}
    if not isinstance(value, _TensorBase):
        return out
    with _no_torch_function():
        root = _grad_fn(value)
        if root is None:
            return out
        where = {_id(root): 0}
        out["nodes"].append(node_entry(root, names))
        stack = [root]
        while stack:
            node = stack.pop()
            for pair in next_functions(node):
                child = pair[0] if type(pair) is tuple and len(pair) == 2 else None
                if child is None:
                    continue
                if _id(child) not in where:
                    if len(out["nodes"]) >= MAX_NODES:
                        out["truncated"] = True
                        continue
                    where[_id(child)] = len(out["nodes"])
                    out["nodes"].append(node_entry(child, names))
                    stack.append(child)
                if len(out["edges"]) >= MAX_EDGES:
                    out["truncated"] = True
                    continue
                out["edges"].append([where[_id(node)], where[_id(child)]])
    return out


def names_of(namespace: Any, givens: list[tuple[str, str, Any]]) -> dict[int, str]:
    """id -> a name the learner would recognise: the item's given tensors, then the learner's own variables."""
    names: dict[int, str] = {}
    for label, _, obj in givens:
        names[_id(obj)] = label
    if type(namespace) is dict:
        for key, value in namespace.items():
            if type(key) is str and not key.startswith("_") and isinstance(value, _TensorBase):
                if _id(value) not in names:
                    names[_id(value)] = key
    return names
