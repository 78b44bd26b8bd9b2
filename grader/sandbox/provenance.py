"""Judge the checks about how a value came to be: autograd, derived, in_place, graph.

Runs in the trusted parent on the facts the child observed (evidence.py),
validated by schema.py. Each message names what happened and what to do.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Any

from .jobs import Check

_SUFFIX = re.compile(r"Backward\d*$")
# Operations whose operands can be regrouped or reordered without changing the value: a graph built from
# x**2 + 3*x + 1 and one built from 1 + 3*x + x**2 have the same normalised shape.
_ASSOCIATIVE = {"Add", "Mul"}


def op_name(node_type: str) -> str:
    """`AddBackward0` -> `Add`; `AccumulateGrad` stays."""
    return _SUFFIX.sub("", node_type) or node_type


def judge_autograd(check: Check, actual: dict[str, Any]) -> tuple[bool, str]:
    facts = actual["lineage"]
    name, target = check.subject, check.target.strip()
    is_grad = target.endswith(".grad")
    owner = target[: -len(".grad")] if is_grad else None
    writer = facts["writer"]
    if not facts["complete"]:
        return False, (f"{name}: your code made more tensor operations, or bigger results, than the grader can "
                       "trace (20,000 operations, 8 million elements); it cannot tell whether autograd computed it")
    if writer in ("engine", "from_engine") and not facts["changed"]:
        return _differentiated(check, facts)
    if writer == "engine":
        return False, (f"{name} was changed after autograd wrote it: leave the gradient as backward() "
                       "computed it (zeroing it with .zero_() is fine)")
    if writer == "hand":
        return False, f"{name} was set by hand; let backward() compute it from a result that uses `{owner}`"
    if is_grad and writer == "none":
        return False, (f"{name} is None: no backward() wrote it — call backward() on a result computed from "
                       f"`{owner}`")
    if is_grad:
        return False, f"{name} was not written by a backward() call the grader saw; let backward() compute it"
    return False, (f"{name} was not computed by autograd: take it from torch.autograd.grad(...) or from a .grad "
                   "that backward() filled, rather than working it out by hand")


def _differentiated(check: Check, facts: dict[str, Any]) -> tuple[bool, str]:
    """An autograd check with `from`: the engine differentiated those results (evidence.differentiated).
    Without it, `(7 * x).backward()` writes x.grad = 7 "by autograd": the slope of x**2 + 3*x + 1 at 2, worked
    out by hand and merely multiplied in."""
    missing = [n for n in check.sources if n not in facts["differentiated"]]
    if not missing:
        return True, ""
    names = " and ".join(f"`{n}`" for n in missing)
    return False, (f"{check.subject} was computed by autograd, but not by differentiating {names}: call "
                   f"backward() on {names} itself (or take torch.autograd.grad of it) rather than on another "
                   "expression that gives the same gradient")


def judge_derived(check: Check, actual: dict[str, Any]) -> tuple[bool, str]:
    facts = actual["lineage"]
    missing = [n for n in check.sources if n not in facts["sources"]]
    if not missing:
        return True, ""
    if not facts["complete"]:
        return False, (f"{check.subject}: your code made more tensor operations, or bigger results, than the "
                       "grader can trace (20,000 operations, 8 million elements)")
    names = ", ".join(f"`{n}`" for n in missing)
    return False, (f"{check.subject} was not computed from {names}: build it from the given "
                   f"tensor{'s' if len(missing) > 1 else ''} with torch operations instead of typing its values in")


def judge_in_place(check: Check, actual: dict[str, Any]) -> tuple[bool, str]:
    if actual.get("same"):
        return True, ""
    return False, (f"`{check.target.strip()}` was replaced by a new object: change the given tensor in place "
                   "(for example with .requires_grad_()) instead of re-creating it")


def signature(graph: dict[str, Any]) -> str:
    """A canonical text of the graph's shape: node types, children sorted, Add and Mul chains flattened."""
    nodes, edges = graph["nodes"], graph["edges"]
    if not nodes:
        return ""
    children: dict[int, list[int]] = {i: [] for i in range(len(nodes))}
    for parent, child in edges:
        children[parent].append(child)
    memo: dict[int, str] = {}

    def operands(i: int, name: str, depth: int) -> list[str]:
        out: list[str] = []
        for child in children[i]:
            if name in _ASSOCIATIVE and op_name(nodes[child][0]) == name and depth <= len(nodes):
                out.extend(operands(child, name, depth + 1))
            else:
                out.append(sig(child, depth + 1))
        return out

    def sig(i: int, depth: int = 0) -> str:
        if i in memo:
            return memo[i]
        if depth > len(nodes):  # a cycle: the schema admits any edges
            return "?"
        name = op_name(nodes[i][0])
        if name == "Mul" and len(children[i]) == 2 and children[i][0] == children[i][1]:
            name = "Pow"  # x * x records MulBackward0 with both edges to x: the graph of x ** 2, in effect
            children[i] = children[i][:1]
        parts = operands(i, name, depth)
        memo[i] = f"{name}({','.join(sorted(parts))})" if parts else name
        return memo[i]

    return sig(0)


def graph_diff(actual: dict[str, Any], expected: dict[str, Any]) -> tuple[list[int], list[int]]:
    """(learner nodes with no counterpart in the reference, reference nodes the learner's graph lacks), by type."""
    want = Counter(op_name(n[0]) for n in expected["nodes"])
    have = Counter(op_name(n[0]) for n in actual["nodes"])
    extra, missing = [], []
    used: Counter[str] = Counter()
    for i, node in enumerate(actual["nodes"]):
        kind = op_name(node[0])
        used[kind] += 1
        if used[kind] > want[kind]:
            extra.append(i)
    used.clear()
    for i, node in enumerate(expected["nodes"]):
        kind = op_name(node[0])
        used[kind] += 1
        if used[kind] > have[kind]:
            missing.append(i)
    return extra, missing


def judge_graph(check: Check, expected: dict[str, Any], actual: dict[str, Any],
                reveal: bool) -> tuple[bool, str]:
    mine, theirs = actual["graph"], expected.get("graph") or {"nodes": [], "edges": [], "truncated": False}
    name = check.subject
    if signature(mine) == signature(theirs):
        return True, ""
    if not mine["nodes"]:
        return False, (f"{name} has no autograd graph: it was not computed from a tensor that tracks gradients "
                       "(or it was computed under torch.no_grad(), or detached)")
    if not theirs["nodes"]:
        return False, f"{name} should have no autograd graph, but it records {len(mine['nodes'])} operations"
    extra, missing = graph_diff(mine, theirs)
    if not extra and not missing:
        return False, f"{name}'s graph has the right operations, but they are connected differently"
    parts = []
    if missing and reveal:
        parts.append("it lacks " + ", ".join(sorted({theirs["nodes"][i][0] for i in missing})))
    if extra:
        parts.append("it has " + ", ".join(sorted({mine["nodes"][i][0] for i in extra})) + " that the reference's does not")
    detail = "; ".join(parts) if parts else "its operations differ from the reference's"
    return False, f"{name}'s autograd graph is not the one the exercise asks for: {detail}"


def graph_view(check: Check, expected: dict[str, Any], actual: dict[str, Any], reveal: bool) -> dict[str, Any]:
    """The two graphs for the verdict page, with the differences marked (the reference's only if revealed)."""
    mine = actual.get("graph") or {"nodes": [], "edges": [], "truncated": False}
    theirs = expected.get("graph") or {"nodes": [], "edges": [], "truncated": False}
    extra, missing = graph_diff(mine, theirs)
    view: dict[str, Any] = {"learner": mine, "extra": extra}
    if reveal:
        view["reference"], view["missing"] = theirs, missing
    return view
