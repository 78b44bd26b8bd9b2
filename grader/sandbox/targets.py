"""How a check target (an expression such as `x.grad`) is read.

Targets are the item's own text, so trusted; they are parsed in the child's
main thread before any learner code runs. Most are evaluated on the learner's
thread, in the learner's namespace, after the learner's code. Two shapes are
special:

* `EXPR.grad`, `EXPR.requires_grad`, `EXPR.is_leaf`, `EXPR.grad_fn`: the learner's
  thread evaluates EXPR only; the main thread reads the attribute with torch's
  own C descriptor, so a tensor subclass's `grad` property, or a plain object
  with a `.grad`, cannot stand in for what autograd wrote;
* `torch.is_grad_enabled()` and `torch.is_inference_mode_enabled()`: called
  through references taken before the learner's code ran (a learner cannot
  replace them), on the learner's thread, whose grad mode they report.
"""
from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

import torch

OWNER_ATTRIBUTES = ("grad", "requires_grad", "is_leaf", "grad_fn")
TRUSTED_CALLS: dict[str, Callable[[], Any]] = {
    "torch.is_grad_enabled": torch.is_grad_enabled,
    "torch.is_inference_mode_enabled": torch.is_inference_mode_enabled,
}


Meta = tuple[str, "str | None", str, str, tuple[str, ...]]  # (read as, attribute, text, probe, sources)


def plan(target: str, probe: str = "value", sources: tuple[str, ...] = ()) -> tuple[tuple[Any, ...], Meta]:
    """(what the learner's thread does, what the main thread needs to know) for one target.

    probe (jobs.PROBES) says what the main thread reads besides the value: its
    lineage, whether it is still the object the setup made, or its graph.
    """
    text = target.strip()
    tree = ast.parse(text, mode="eval").body
    if isinstance(tree, ast.Call) and not tree.args and not tree.keywords:
        function = TRUSTED_CALLS.get(ast.unparse(tree.func))
        if function is not None:
            return ("call", function, text), ("value", None, text, probe, sources)
    if isinstance(tree, ast.Attribute) and tree.attr in OWNER_ATTRIBUTES:
        owner = ast.unparse(tree.value)
        code = compile(ast.Expression(tree.value), "<check>", "eval", dont_inherit=True)
        return ("owner", code, text), ("owner", tree.attr, owner, probe, sources)
    code = compile(text, "<check>", "eval", dont_inherit=True)
    return ("eval", code, text), ("value", None, text, probe, sources)
