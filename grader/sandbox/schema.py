"""Strict validation of what a graded child sends back.

The child ran hostile code, so its frame is hostile input: every field is
checked for type and size before anything reads it, and anything unexpected
makes the whole frame unusable.
"""
from __future__ import annotations

import math
from typing import Any

from .protocol import FrameError

PHASES = {"done", "setup_error", "syntax_error", "code_error", "target_error", "report_failed", "unfinished",
          "internal", "probe"}
KINDS = {"none", "bool", "int", "float", "tensor", "sequence", "other", "missing", "oversized"}
NONFINITE = {"nan", "inf", "-inf"}
WRITERS = {"engine", "from_engine", "hand", "untraced", "none"}
NODE_KINDS = {"op", "leaf", "custom"}
MAX_NODES = 200


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise FrameError(what)


def _is_int(v: Any) -> bool:
    return type(v) is int


def _is_number(v: Any) -> bool:
    kind = type(v)
    return kind is int or (kind is float and math.isfinite(v)) or (kind is str and v in NONFINITE)


def _check_str(v: Any, cap: int, what: str) -> None:
    _require(type(v) is str and len(v) <= cap, f"{what} must be a string of at most {cap} characters")


def validate_observation(obs: Any, depth: int = 0) -> None:
    _require(type(obs) is dict, "an observation must be an object")
    kind = obs.get("kind")
    _require(kind in KINDS, f"unknown observation kind {kind!r}")
    allowed = {"kind", "owner"}  # owner: what x was, for a target x.grad
    owner = obs.get("owner")
    if owner is not None:
        _require(type(owner) is dict and set(owner) == {"requires_grad", "is_leaf", "retains_grad"}
                 and all(type(v) is bool for v in owner.values()), "bad owner")
    if kind == "bool":
        allowed |= {"value"}
        _require(type(obs.get("value")) is bool, "bool observation needs a bool value")
    elif kind == "int":
        allowed |= {"value"}
        _require(_is_int(obs.get("value")), "int observation needs an int value")
    elif kind == "float":
        allowed |= {"value"}
        _require(_is_number(obs.get("value")), "float observation needs a number")
    elif kind == "tensor":
        allowed |= {"dtype", "shape", "numel", "requires_grad", "is_leaf", "grad_fn", "values", "subclass"}
        if "subclass" in obs:
            _check_str(obs["subclass"], 80, "subclass")
            _require(obs.get("values") is None, "a tensor subclass is observed without values")
        _check_str(obs.get("dtype"), 40, "dtype")
        shape = obs.get("shape")
        _require(type(shape) is list and len(shape) <= 16 and all(_is_int(n) and n >= 0 for n in shape), "bad shape")
        numel = obs.get("numel")
        _require(_is_int(numel) and numel == math.prod(shape), "numel does not match the shape")
        for key in ("requires_grad", "is_leaf"):
            _require(type(obs.get(key)) is bool, f"{key} must be a bool")
        _require(obs.get("grad_fn") is None or (type(obs["grad_fn"]) is str and len(obs["grad_fn"]) <= 80), "bad grad_fn")
        values = obs.get("values")
        if values is not None:
            _require(type(values) is list and len(values) == numel, "values do not match numel")
            _require(all(type(v) is bool or _is_number(v) for v in values), "values must be numbers")
    elif kind == "sequence":
        allowed |= {"type", "length", "items"}
        _require(obs.get("type") in ("list", "tuple"), "bad sequence type")
        items = obs.get("items")
        _require(depth < 3 and type(items) is list and len(items) <= 64, "bad sequence items")
        _require(_is_int(obs.get("length")) and obs["length"] >= len(items), "bad sequence length")
        for item in items:
            validate_observation(item, depth + 1)
    elif kind == "other":
        allowed |= {"type", "repr"}
        _check_str(obs.get("type"), 80, "type")
        _check_str(obs.get("repr"), 200, "repr")
    elif kind == "missing":
        allowed |= {"error"}
        _check_str(obs.get("error"), 400, "error")
    elif kind == "oversized":
        allowed |= {"bytes"}
        _require(_is_int(obs.get("bytes")) and obs["bytes"] >= 0, "oversized needs a byte count")
    if depth == 0:
        allowed |= _validate_facts(obs)
    _require(set(obs) <= allowed, f"unexpected fields in a {kind} observation")


def _validate_facts(obs: dict[str, Any]) -> set[str]:
    """The probe facts a top-level observation may carry (evidence.py); returns their keys."""
    present = set()
    if "lineage" in obs:
        facts = obs["lineage"]
        _require(type(facts) is dict and set(facts) == {"writer", "changed", "sources", "complete", "differentiated"},
                 "bad lineage")
        _require(facts["writer"] in WRITERS, "bad lineage writer")
        _require(type(facts["changed"]) is bool and type(facts["complete"]) is bool, "bad lineage flags")
        for key in ("sources", "differentiated"):
            names = facts[key]
            _require(type(names) is list and len(names) <= 32 and all(type(n) is str and len(n) <= 200
                                                                       for n in names), f"bad lineage {key}")
        present.add("lineage")
    if "same" in obs:
        _require(type(obs["same"]) is bool, "same must be a bool")
        present.add("same")
    if "graph" in obs:
        graph = obs["graph"]
        _require(type(graph) is dict and set(graph) == {"nodes", "edges", "truncated"}, "bad graph")
        nodes, edges = graph["nodes"], graph["edges"]
        _require(type(nodes) is list and len(nodes) <= MAX_NODES, "bad graph nodes")
        for node in nodes:
            _require(type(node) is list and len(node) == 3 and all(type(v) is str and len(v) <= 80 for v in node)
                     and node[1] in NODE_KINDS, "bad graph node")
        _require(type(edges) is list and len(edges) <= MAX_NODES * 8, "bad graph edges")
        for edge in edges:
            _require(type(edge) is list and len(edge) == 2 and all(_is_int(i) and 0 <= i < len(nodes) for i in edge),
                     "bad graph edge")
        _require(type(graph["truncated"]) is bool, "bad graph flag")
        present.add("graph")
    return present


def validate_error(err: Any) -> None:
    _require(type(err) is dict, "error must be an object")
    _require(set(err) <= {"type", "message", "traceback", "line", "phase", "errno", "memory"},
             "unexpected error fields")
    _require(err.get("memory") is None or type(err["memory"]) is bool, "memory must be a bool")
    _check_str(err.get("type"), 200, "error type")
    _check_str(err.get("message"), 2000, "error message")
    _check_str(err.get("traceback"), 8000, "traceback")
    _require(err.get("line") is None or _is_int(err["line"]), "line must be an int")
    _require(err.get("phase") in ("compile", "run"), "bad error phase")
    _require(err.get("errno") is None or _is_int(err["errno"]), "errno must be an int")


def validate_frame(frame: Any, n_targets: int) -> dict[str, Any]:
    """Return the frame if it is a well-formed result for n_targets targets."""
    _require(type(frame) is dict, "the frame must be an object")
    # type() too: True == 1.0 == 1 in Python, and a hostile frame's types are checked like its values.
    _require(type(frame.get("v")) is int and frame["v"] == 1, "unknown frame version")
    phase = frame.get("phase")
    _require(phase in PHASES - {"probe"}, f"unknown phase {phase!r}")
    allowed = {"v", "phase", "cpu_ms", "exec_ms"}
    if phase == "done":
        allowed.add("observations")
        observations = frame.get("observations")
        _require(type(observations) is list and len(observations) == n_targets,
                 "there must be one observation per target")
        for obs in observations:
            validate_observation(obs)
    elif phase in ("setup_error", "syntax_error", "code_error", "target_error"):
        allowed.add("error")
        validate_error(frame.get("error"))
        if phase == "target_error":
            allowed.add("target")
            _check_str(frame.get("target"), 200, "target")
    elif phase == "internal":
        allowed.add("detail")
        _check_str(frame.get("detail"), 600, "detail")
    for key in ("cpu_ms", "exec_ms"):
        if key in frame:
            _require(type(frame[key]) in (int, float) and frame[key] >= 0, f"{key} must be a number")
    _require(set(frame) <= allowed, "unexpected fields in the frame")
    return frame
