"""What the grader reads from the code itself: the screen, the static checks, the starter, graph shapes.

Pure functions in the parent (grader/sandbox/static.py, provenance.py); the
last tests go through the real sandbox to show that each way to reach the
lineage recorder from learner code is refused before anything runs.
"""
from __future__ import annotations

from typing import Any

import pytest

from grader.sandbox import Check, Limits, Sandbox, grade_code, is_starter, screen_problem, static_problem
from grader.sandbox.provenance import graph_diff, judge_graph, signature
from grader.sandbox.static import analyse, judge_static

from .hostile import CHECKS, SOLUTION


# -- the screen ---------------------------------------------------------------------------
@pytest.mark.parametrize("code, fragment", [
    ("import torch\nstack = torch._C._get_function_stack_at(0)\n", "line 2 uses `._"),
    ("from torch.overrides import _get_current_function_mode_stack\n", "imports `torch.overrides`"),
    ("import torch\ntorch.overrides.TorchFunctionMode\n", "uses `.overrides`"),
    ("def f():\n    yield 1\ng = f()\nprint(g.gi_frame.f_back)\n", "looks into the interpreter's frames"),
    ("try:\n    1 / 0\nexcept Exception as e:\n    t = e.__traceback__\n", "`.__traceback__`, a private attribute"),
    ("f = getattr(print, 'x')\n", "uses getattr()"),
    ("vars()\n", "uses vars()"),
    ("exec('x = 1')\n", "uses exec()"),
    ("__builtins__\n", "uses __builtins__"),
    ("import sys\n", "imports `sys`; exercises here may import only"),
    ("import gc\n", "imports `gc`"),
    ("import ctypes\n", "imports `ctypes`"),
    ("import inspect\n", "imports `inspect`"),
    ("from typing import get_type_hints\n", "imports `typing`"),
    ("import copy\n", "imports `copy`"),
    ("import torch\ntorch.load('/scratch/x.pt', weights_only=False)\n", "`.load` (loading pickled objects)"),
    ("import numpy as np\nnp.load('a.npy', allow_pickle=True)\n", "`.load` (loading pickled objects)"),
    ("import torch.jit\n", "imports `torch.jit`"),
    ("from . import x\n", "relative import"),
    ("class A:\n    pass\nA.__subclasses__()\n", "`.__subclasses__`, a private attribute"),
])
def test_the_screen_refuses_what_would_reach_the_graders_evidence(code: str, fragment: str) -> None:
    problem = screen_problem(code)
    assert problem is not None and fragment in problem, problem


@pytest.mark.parametrize("code", [
    SOLUTION,
    "import torch\nimport torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
    "        self.fc = nn.Linear(2, 1)\n    def forward(self, x):\n        return self.fc(x)\n",
    "import torch\nfrom torch.autograd import grad, Function\nimport math, random, itertools, time\nimport numpy as np\n",
    "import torch\nclass Square(torch.autograd.Function):\n    @staticmethod\n    def forward(ctx, x):\n"
    "        ctx.save_for_backward(x)\n        return x * x\n    @staticmethod\n    def backward(ctx, g):\n"
    "        x, = ctx.saved_tensors\n        return 2 * x * g\n",
    "if __name__ == '__main__':\n    print('__main__ is fine as a string')\n",
    "x = 1 +\n",  # does not parse: the sandbox reports the syntax error, not the screen
])
def test_the_screen_lets_ordinary_autograd_code_through(code: str) -> None:
    assert screen_problem(code) is None


def test_every_seed_solution_and_starter_passes_the_screen() -> None:
    from quiz.content_format import load_file

    from .test_seed_items import SEED_FILE

    for item in load_file(SEED_FILE).items:
        if item.kind == "code":
            assert screen_problem(item.solution) is None, item.slug
            assert screen_problem(item.starter) is None, item.slug


# -- static checks ------------------------------------------------------------------------
@pytest.mark.parametrize("target, code, passed", [
    ("backward", "y.backward()\n", True),
    ("backward", "(y * 2).sum().backward()\n", True),
    ("backward", "torch.autograd.backward([y])\n", True),
    ("backward", "y.grad_fn\n", False),
    ("autograd.grad", "import torch\ng = torch.autograd.grad(y, x)\n", True),
    ("autograd.grad", "from torch.autograd import grad as G\ng = G(y, x)\n", True),
    ("autograd.grad", "import torch.autograd as ag\ng = ag.grad(y, x)\n", True),
    ("autograd.grad", "g = x.grad\n", False),
    ("no_grad | inference_mode", "with torch.inference_mode():\n    y = x * 2\n", True),
    ("no_grad | inference_mode", "with torch.set_grad_enabled(False):\n    y = x * 2\n", False),
])
def test_a_calls_check_finds_the_call_however_it_is_spelled(target: str, code: str, passed: bool) -> None:
    ok, message = judge_static(Check(target, compare="calls"), analyse(code))
    assert ok is passed
    assert (message == "") is passed
    if not passed:
        assert message.startswith("Your code never calls `")


@pytest.mark.parametrize("target, code, passed, fragment", [
    ("assign:grad", "x.grad = torch.tensor(7.0)\n", False, "assigns to `.grad`"),
    ("assign:grad", "x.grad += 1\n", False, "assigns to `.grad`"),
    ("assign:grad", "g = x.grad\n", True, ""),
    ("attr:data", "x.data.zero_()\n", False, "uses `.data`"),
    ("call:torch.tensor", "b = torch.tensor([3.0, 6.0])\n", False, "calls `torch.tensor()`"),
    ("call:torch.tensor", "b = d.detach()\n", True, ""),
])
def test_a_forbids_check_names_the_construct(target: str, code: str, passed: bool, fragment: str) -> None:
    ok, message = judge_static(Check(target, compare="forbids"), analyse(code))
    assert ok is passed and fragment in message


@pytest.mark.parametrize("check, problem", [
    (Check("backward | autograd.grad", compare="calls"), None),
    (Check("backward()", compare="calls"), "names separated by |"),
    (Check("assign:grad", compare="forbids"), None),
    (Check("grad", compare="forbids"), "call:NAME, attr:NAME or assign:NAME"),
    (Check("assign:x.grad =", compare="forbids"), "call:NAME"),
])
def test_a_malformed_static_target_is_named(check: Check, problem: str | None) -> None:
    found = static_problem(check)
    assert (found is None) if problem is None else (found is not None and problem in found)


# -- the starter --------------------------------------------------------------------------
STARTER = "import torch\n\n# TODO: make x track gradients\nx = torch.tensor(2.0)\ny = ...\n"


@pytest.mark.parametrize("code, same", [
    (STARTER, True),
    ("import torch\nx = torch.tensor(2.0)   # I looked at it\n\n\ny = ...\n", True),
    ("import torch\nx = torch.tensor(2.0)\ny = ...\n# TODO done?\n", True),
    ("import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = ...\n", False),
    ("import torch\nx = torch.tensor(2.0)\ny = ...\nprint(x)\n", False),
    ("import torch\nx = torch.tensor(2.0\n", False),  # does not tokenize: compared as text
])
def test_the_starter_is_recognised_through_comments_and_layout(code: str, same: bool) -> None:
    assert is_starter(code, STARTER) is same


def test_an_item_without_starter_code_never_matches() -> None:
    assert not is_starter("", "") and not is_starter("x = 1\n", "   \n")


# -- graph shapes -------------------------------------------------------------------------
def graph(nodes: list[str], edges: list[tuple[int, int]]) -> dict[str, Any]:
    return {"nodes": [[n, "leaf" if n == "AccumulateGrad" else "op", n] for n in nodes],
            "edges": [list(e) for e in edges], "truncated": False}


# y = x**2 + 3*x + 1, as torch records it: Add(Add(Pow(x), Mul(x)))
POLY = graph(["AddBackward0", "AddBackward0", "PowBackward0", "MulBackward0", "AccumulateGrad"],
             [(0, 1), (1, 2), (1, 3), (2, 4), (3, 4)])
# y = 1 + 3*x + x**2: the terms in another order and grouping
REORDERED = graph(["AddBackward0", "AddBackward1", "MulBackward0", "PowBackward0", "AccumulateGrad"],
                  [(0, 1), (0, 3), (1, 2), (2, 4), (3, 4)])
# y = x*x + 3*x + 1: x*x records MulBackward0 with both edges to x
SQUARED_BY_MUL = graph(["AddBackward0", "AddBackward0", "MulBackward0", "MulBackward0", "AccumulateGrad"],
                       [(0, 1), (1, 2), (1, 3), (2, 4), (2, 4), (3, 4)])
# y = x**2 + 3*x + sin(x)
WITH_SIN = graph(["AddBackward0", "AddBackward0", "PowBackward0", "MulBackward0", "SinBackward0", "AccumulateGrad"],
                 [(0, 1), (0, 4), (1, 2), (1, 3), (2, 5), (3, 5), (4, 5)])


def test_sums_in_another_order_and_x_times_x_have_the_shape_of_the_reference() -> None:
    assert signature(REORDERED) == signature(POLY)
    assert signature(SQUARED_BY_MUL) == signature(POLY)
    assert signature(WITH_SIN) != signature(POLY)


def test_a_different_graph_is_named_by_its_extra_and_missing_nodes() -> None:
    extra, missing = graph_diff(WITH_SIN, POLY)
    assert [WITH_SIN["nodes"][i][0] for i in extra] == ["SinBackward0"] and missing == []
    check = Check("y", compare="graph")
    ok, message = judge_graph(check, {"graph": POLY}, {"graph": WITH_SIN}, True)
    assert not ok and "it has SinBackward0 that the reference's does not" in message
    ok, message = judge_graph(check, {"graph": POLY}, {"graph": graph([], [])}, True)
    assert not ok and "has no autograd graph" in message and "no_grad" in message


def test_a_cycle_in_a_hostile_graph_does_not_hang_the_comparer() -> None:
    looped = graph(["AddBackward0", "MulBackward0"], [(0, 1), (1, 0)])
    assert signature(looped) != signature(POLY)


# -- the recorder is out of reach -----------------------------------------------------------
REACHING = {
    "mode-stack": "import torch\nmode = torch._C._get_function_stack_at(0)\nmode.events.clear()\n",
    "disable-torch-function": "import torch\nwith torch._C.DisableTorchFunction():\n    x = torch.ones(1)\n",
    "frames-of-a-generator": "def walk():\n    yield\ng = walk()\nnext(g)\nframe = g.gi_frame\n",
    "traceback-frames": "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    f = e.__traceback__.tb_frame\n",
    "getattr-by-name": "import torch\nstack = getattr(torch, '_C')\n",
    "annotation-eval": "from typing import get_type_hints\n",
    "pickle-reduce": "import torch\ntorch.save(1, '/scratch/a')\ntorch.load('/scratch/a', weights_only=False)\n",
}


@pytest.mark.parametrize("name", sorted(REACHING))
def test_code_reaching_for_the_lineage_recorder_is_refused_before_it_runs(sandbox: Sandbox, name: str) -> None:
    reference = [{"kind": "none"}] * len(CHECKS)
    code = REACHING[name] + SOLUTION
    g = grade_code(sandbox, code=code, setup="", checks=CHECKS, reference=reference, limits=Limits(),
                   reveal_expected=True)
    assert (g.status, g.score, g.checks) == ("rejected", 0.0, []), g
    assert g.error is not None and g.error.startswith("Your code was not run: line ")
