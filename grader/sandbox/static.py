"""What the grader reads from the learner's code itself, in the trusted parent, before running it.

Three things, all on the syntax tree (nothing here runs the code):

* the screen (`screen_problem`): constructs no autograd exercise needs and that
  would reach the grader's own evidence inside the learner's process: private
  attributes (`torch._C`, `__closure__`), frame and code objects (`gi_frame`,
  `f_back`), the introspection builtins (`getattr`, `vars`, `eval`, `exec`...),
  the loaders that call what a pickle names (`torch.load`), and modules outside
  a short allow-list. Code that uses one is refused before
  it runs, with the line and a reason: a learner's feedback, not an attempt.
* static checks (`judge_static`): the `calls` and `forbids` check kinds, e.g.
  "calls backward() or torch.autograd.grad()", "does not assign .grad";
* starter detection (`is_starter`): code equal to the starter code once
  comments and layout are ignored.
"""
from __future__ import annotations

import ast
import functools
from dataclasses import dataclass

from .jobs import Check

# Not typing, functools or dataclasses (they evaluate annotation strings), nor copy or pickle (they call
# what a __reduce__ returns, getattr included).
ALLOWED_MODULES = frozenset({"torch", "math", "numpy", "random", "itertools", "collections", "statistics",
                             "numbers", "fractions", "decimal", "time"})
REFUSED_NAMES = {
    "getattr": "getattr()", "setattr": "setattr()", "delattr": "delattr()",
    "vars": "vars()", "globals": "globals()", "locals": "locals()", "eval": "eval()", "exec": "exec()",
    "compile": "compile()", "__import__": "__import__()", "open": "open()", "breakpoint": "breakpoint()",
    "input": "input()", "memoryview": "memoryview()", "__builtins__": "__builtins__",
}
# Attributes of frames, generators, coroutines, tracebacks and code objects: a way to other frames' variables.
FRAME_ATTRIBUTES = frozenset({
    "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "ag_frame", "ag_code", "ag_await",
    "f_back", "f_locals", "f_globals", "f_builtins", "f_code", "f_trace", "tb_frame", "tb_next", "co_code",
    "co_consts", "co_names",
})
ALLOWED_DUNDERS = frozenset({"__init__"})  # super().__init__() in an nn.Module
# Public attributes that unpickle, compile or load code: each a way to call getattr or eval indirectly.
REFUSED_ATTRIBUTES = {
    "load": "loading pickled objects", "hub": "torch.hub", "jit": "TorchScript", "package": "torch.package",
    "compile": "torch.compile", "compiler": "torch.compiler", "fx": "torch.fx", "library": "torch.library",
    "cpp_extension": "C++ extensions", "ctypeslib": "numpy.ctypeslib", "overrides": "torch.overrides",
}


def _attribute_problem(name: str) -> str | None:
    if name in FRAME_ATTRIBUTES:
        return f"uses `.{name}`, which looks into the interpreter's frames"
    if name in REFUSED_ATTRIBUTES:
        return f"uses `.{name}` ({REFUSED_ATTRIBUTES[name]}), which exercises here do not need"
    if name.startswith("_") and name not in ALLOWED_DUNDERS:
        return f"uses `.{name}`, a private attribute"
    return None


def _module_problem(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] not in ALLOWED_MODULES:
        return f"imports `{module}`; exercises here may import only {', '.join(sorted(ALLOWED_MODULES))}"
    for part in parts[1:]:
        problem = _attribute_problem(part)
        if problem is not None:
            return f"imports `{module}`: {problem.removeprefix('uses ')}"
    return None


def parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _node_problem(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute):
        return _attribute_problem(node.attr)
    if isinstance(node, ast.Name) and node.id in REFUSED_NAMES:
        return f"uses {REFUSED_NAMES[node.id]}"
    if isinstance(node, ast.Import):
        return next((p for p in map(_module_problem, (a.name for a in node.names)) if p), None)
    if isinstance(node, ast.ImportFrom):
        return ("uses a relative import" if node.level else _module_problem(node.module or "")) or next(
            (f"imports `{a.name}`: {p.removeprefix('uses ')}" for a in node.names
             if (p := _attribute_problem(a.name)) is not None), None)
    return None


def screen_problem(code: str, tree: ast.Module | None = None) -> str | None:
    """Why code is refused before it runs ("line 3 uses `.__class__`, a private attribute"), or None.

    Code that does not parse is not refused here: the sandbox reports its syntax error.
    """
    return examine(code, tree)[0]


# -- static checks ------------------------------------------------------------------------
@dataclass(frozen=True)
class Code:
    """Learner code parsed once for the static checks: its calls (dotted, imports resolved) and attributes."""

    calls: tuple[str, ...]
    attributes: frozenset[str]
    assigned: frozenset[str]
    parsed: bool


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str:
    """`torch.autograd.grad` for a call's function; `?.backward` where the object is an expression."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    parts.append(aliases.get(node.id, node.id) if isinstance(node, ast.Name) else "?")
    return ".".join(reversed(parts))


def analyse(code: str, tree: ast.Module | None = None) -> Code:
    return examine(code, tree)[1]


def examine(code: str, tree: ast.Module | None = None) -> tuple[str | None, Code]:
    """(the screen's refusal or None, what the static checks read), in one walk of the syntax tree."""
    tree = tree if tree is not None else parse(code)
    if tree is None:
        return None, Code((), frozenset(), frozenset(), parsed=False)
    problem = None
    aliases: dict[str, str] = {}
    functions: list[ast.AST] = []
    attributes: set[str] = set()
    assigned: set[str] = set()
    for node in ast.walk(tree):
        if problem is None:
            found = _node_problem(node)
            if found is not None:
                problem = f"line {getattr(node, 'lineno', '?')} {found}"
        if isinstance(node, ast.Call):
            functions.append(node.func)
        elif isinstance(node, ast.Attribute):
            attributes.add(node.attr)
            if isinstance(node.ctx, ast.Store):  # x.grad = ..., x.grad += ..., for x.grad in ...
                assigned.add(node.attr)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    calls = tuple(_dotted(function, aliases) for function in functions)
    return problem, Code(calls, frozenset(attributes), frozenset(assigned), parsed=True)


def _matches(call: str, pattern: str) -> bool:
    """pattern `backward` matches any call of a function or method named backward; a dotted
    pattern (`autograd.grad`) matches calls whose resolved name ends with it."""
    if "." not in pattern:
        return call.rsplit(".", 1)[-1] == pattern
    return call == pattern or call.endswith("." + pattern)


def static_problem(check: Check) -> str | None:
    """Why a static check's target is malformed, or None."""
    if check.compare == "calls":
        names = [n.strip() for n in check.target.split("|")]
        if not all(n.replace(".", "").replace("_", "").isalnum() for n in names):
            return "must be names separated by |, such as `backward | autograd.grad`"
    elif check.compare == "forbids":
        kind, _, name = check.target.partition(":")
        if kind.strip() not in ("call", "attr", "assign") or not name.strip().replace(".", "").replace("_", "").isalnum():
            return "must be call:NAME, attr:NAME or assign:NAME, such as `assign:grad`"
    return None


def _shown(name: str) -> str:
    return f"{name}()" if not name.startswith(".") else name


def judge_static(check: Check, code: Code) -> tuple[bool, str]:
    """(passed, message) for a `calls` or `forbids` check."""
    name = check.label
    if not code.parsed:
        return False, f"{name}: the code could not be read"
    if check.compare == "calls":
        names = [n.strip() for n in check.target.split("|")]
        if any(_matches(call, n) for call in code.calls for n in names):
            return True, ""
        wanted = " or ".join(f"`{_shown(n)}`" for n in names)
        return False, f"Your code never calls {wanted}"
    kind, _, construct = (part.strip() for part in check.target.partition(":"))
    if kind == "call":
        used = any(_matches(call, construct) for call in code.calls)
        what = f"calls `{_shown(construct)}`"
    elif kind == "attr":
        used, what = construct in code.attributes, f"uses `.{construct}`"
    else:
        used, what = construct in code.assigned, f"assigns to `.{construct}`"
    return (not used), ("" if not used else f"Your code {what}, which this exercise does not allow")


# -- starter code -------------------------------------------------------------------------
@functools.lru_cache(maxsize=256)  # an item's starter code, parsed once per process
def _starter_shape(starter: str) -> str | None:
    tree = parse(starter)
    return None if tree is None else ast.dump(tree)


def is_starter(code: str, starter: str, tree: ast.Module | None = None) -> bool:
    """code is the starter code, ignoring comments, blank lines and layout (their syntax trees are equal)."""
    if not starter.strip():
        return False
    theirs = _starter_shape(starter)
    tree = tree if tree is not None else parse(code)
    if tree is None or theirs is None:
        return " ".join(code.split()) == " ".join(starter.split())
    return ast.dump(tree) == theirs
