"""The main thread's reading of lineage: facts about how a checked value came to be.

Runs as a private copy after the learner's thread has parked, under the same
discipline as observe.py (tests/sandbox/test_guard.py checks it): module-level
names are immutable values or C functions bound before any learner code
exists, objects are compared by identity, tensors are read through torch's C
descriptors with torch-function handling off, and the lineage events
(lineage.py) are read as hostile data, by exact type.

The facts are plain data for the parent, which judges them (compare.py):

    lineage  {"writer": engine | from_engine | hand | untraced | none,
              "changed": bool, "sources": [given names reached], "complete": bool,
              "differentiated": [given names the engine differentiated to make it]}
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


def index(events: Any) -> tuple[dict[int, list[Any]], dict[int, Any], dict[int, tuple[Any, ...]],
                                dict[int, list[Any]], dict[int, tuple[str, tuple[Any, ...]]]]:
    """(producers: id -> objects it was computed from, engine: id -> gradients autograd made,
    last: id(owner) -> its last .grad event, roots: id(gradient) -> what every engine call that wrote it
    differentiated, made: id -> (the operation that first returned it, its inputs))."""
    producers: dict[int, list[Any]] = {}
    engine: dict[int, Any] = {}
    last: dict[int, tuple[Any, ...]] = {}
    roots: dict[int, list[Any]] = {}
    made: dict[int, tuple[str, tuple[Any, ...]]] = {}
    pending: list[Any] = []
    if type(events) is not list:
        return producers, engine, last, roots, made
    for event in events:
        if type(event) is not tuple or not event or type(event[0]) is not str:
            continue
        tag = event[0]
        if tag == "op" and len(event) == 5 and type(event[2]) is tuple and type(event[3]) is tuple:
            for result in event[2]:
                if type(event[1]) is str:
                    made.setdefault(_id(result), (event[1], event[3]))
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
                roots.setdefault(_id(grad), []).extend(event[3])
            pending = []
    return producers, engine, last, roots, made


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


def gradients_of(start: Any, producers: dict[int, list[Any]], engine: dict[int, Any]) -> list[Any]:
    """The gradients autograd made that start was read from (start itself, for x.grad; x.grad for
    g = x.grad.item()), without going back through what those gradients were differentiated from: a gradient
    computed from another one (`(x * (x.grad * 0 + 7)).backward()`) counts for itself only."""
    found: list[Any] = []
    seen = {_id(start)}
    stack = [start]
    while stack and len(seen) < MAX_VISITS:
        value = stack.pop()
        if _id(value) in engine:
            found.append(value)
            continue
        for source in producers.get(_id(value), _NOTHING):
            if _id(source) not in seen:
                seen.add(_id(source))
                stack.append(source)
    return found


REDUCTIONS = ("sum", "mean")  # y.sum().backward() differentiates y, as y.backward(torch.ones_like(y)) does
MAX_ROOTS = 64  # distinct starting points of engine calls judged per target; past this, none is taken


def differentiated(checked: Any, indexed: Any, givens: list[tuple[str, str, Any]],
                   sources: tuple[str, ...]) -> list[str]:
    """The names in sources whose tensors the engine differentiated to make checked.

    Every engine call behind it must have started from one of them, alone or reduced by sum() or mean(), and
    from nothing else. A start that is another object but has the very same autograd graph counts as that
    name: a loop that rebuilds `y = 3 * x` before each `y.backward()` differentiates y every time. (The graph
    is compared node type by node type, not constants: what graph checks compare.) `(7 * x).backward()` and
    `(y * 0 + 7 * x).backward()` differentiate neither `y` nor anything named: [] (the slope was worked out by
    hand, and autograd merely multiplied it in)."""
    producers, engine, _last, roots, made = indexed
    started: dict[int, Any] = {}
    for gradient in gradients_of(checked, producers, engine):
        for root in roots.get(_id(gradient), _NOTHING):
            started[_id(root)] = root
    if not started or len(started) > MAX_ROOTS:
        return []
    named: dict[int, str] = {}
    shapes: list[tuple[str, dict[str, Any]]] = []
    for source in sources:
        for _label, given, obj in givens:
            if given == source and isinstance(obj, _TensorBase):
                named[_id(obj)] = source
                shape = graph(obj, {})
                if shape["nodes"] and not shape["truncated"]:
                    shapes.append((source, shape))
    found: list[str] = []
    for root in started.values():
        name = _start_name(root, made, named, shapes)
        if name is None:
            return []
        if name not in found:
            found.append(name)
    return found


def _start_name(root: Any, made: dict[int, tuple[str, tuple[Any, ...]]], named: dict[int, str],
                shapes: list[tuple[str, dict[str, Any]]]) -> str | None:
    """Which named result an engine call's root is: that very tensor, or one with its graph; either alone or
    reduced by sum() or mean(). None when it is neither."""
    candidates = [root]
    op = made.get(_id(root))
    if op is not None and op[0] in REDUCTIONS and len(op[1]) == 1:  # op[0] is an exact str (index)
        candidates.append(op[1][0])
    for candidate in candidates:
        if _id(candidate) in named:
            return named[_id(candidate)]
    if shapes:
        for candidate in candidates:
            shape = graph(candidate, {})
            for name, expected in shapes:
                if shape == expected:
                    return name
    return None


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
    producers, engine, last = indexed[0], indexed[1], indexed[2]
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
        # Only a gradient can pass an autograd check (judge_autograd); a derived check's value skips the walk.
        engine_made = bool(sources) and writer in ("engine", "from_engine")
        made_from = differentiated(checked, indexed, givens, sources) if engine_made else []
    return {"writer": writer, "changed": changed, "sources": found, "complete": complete,
            "differentiated": made_from}


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
