"""A wrong answer that tries to talk the grader into `passed`, from inside its own process.

Every attack runs WRONG (x.grad is 12.0, the reference 7.0) and then tries to
change what the grader reports. None may pass: each ends `failed` with the
true value in the message, or as an `error` that names the refusal. The
attacks that would run the learner's code on the grader's main thread print
EVIL-ON-MAIN when they get there; that must never appear.
"""
from __future__ import annotations

from typing import Any

import pytest

from grader.sandbox import Check, Grade, protocol, schema

from .hostile import WRONG, GradeFn, assert_error, describe

FORGED_GRAD = {"kind": "tensor", "dtype": "float32", "shape": [], "numel": 1, "requires_grad": False,
               "is_leaf": True, "grad_fn": None, "values": [7.0],
               "owner": {"requires_grad": True, "is_leaf": True, "retains_grad": False}}
FORGED = f"FORGED = {FORGED_GRAD!r}\nFORGED_BOOL = {{'kind': 'bool', 'value': True}}\n"
# Learner code that reaches a frame's globals and replaces every observer function in them.
PATCH_GLOBALS = FORGED + '''
def patch(scope):
    hit = 0
    for name in list(scope):
        if name.startswith(("observe", "read_tensor", "encode", "frame_bytes", "build")) and callable(scope[name]):
            scope[name] = (lambda *a, **k: FORGED) if name.startswith(("observe", "read_")) else scope[name]
            hit += 1
    return hit
'''
# Run on the main thread, this says so, then patches whatever it can reach from there.
EVIL = PATCH_GLOBALS + '''
import sys, threading
def evil(*args, **kwargs):
    if threading.current_thread() is threading.main_thread():
        print("EVIL-ON-MAIN", flush=True)
        frame = sys._getframe()
        while frame is not None:
            patch(frame.f_globals)
            frame = frame.f_back
    return False
'''


def assert_wrong_answer_failed(g: Grade) -> None:
    assert "EVIL-ON-MAIN" not in g.stdout, f"learner code ran on the grader's main thread: {describe(g)}"
    assert g.status == "failed", describe(g)
    failed = [c for c in g.checks if not c.passed]
    assert [c.name for c in failed] == ["x.grad"], describe(g)
    assert "x.grad is 12.0, expected 7.0" in failed[0].message


def assert_not_passed(g: Grade) -> None:
    assert "EVIL-ON-MAIN" not in g.stdout, f"learner code ran on the grader's main thread: {describe(g)}"
    assert g.status != "passed", describe(g)


# -- the reported forgeries ---------------------------------------------------------------------------
def test_patching_the_observer_through_sys_modules_is_refused(grade: GradeFn) -> None:
    g = grade(WRONG + FORGED + "import sys\nsys.modules['grader.sandbox.observe'].observe_value = lambda *a: FORGED\n")
    assert_error(g, "KeyError: 'grader.sandbox.observe'")  # the grader's modules are not there to patch


def test_patching_the_observer_reached_through_class_hierarchies_changes_nothing(grade: GradeFn) -> None:
    # The grader's modules are still in memory: a class of theirs leads to its module's globals.
    code = WRONG + PATCH_GLOBALS + '''
import types
hits, seen, stack = 0, set(), [object]
while stack:
    cls = stack.pop()
    if id(cls) in seen:
        continue
    seen.add(id(cls))
    stack.extend(type.__subclasses__(cls))
    for value in list(vars(cls).values()):
        scope = getattr(value, "__globals__", None)
        if isinstance(scope, dict) and str(scope.get("__name__", "")).startswith("grader"):
            hits += patch(scope)
            for module in list(scope.values()):
                if isinstance(module, types.ModuleType) and module.__name__.startswith("grader"):
                    hits += patch(vars(module))
print("patched", hits)
'''
    g = grade(code)
    assert "patched " in g.stdout and int(g.stdout.split("patched ")[1].split()[0]) > 0, describe(g)
    assert_wrong_answer_failed(g)


@pytest.mark.parametrize("patch", [
    "import json\njson.dumps = lambda *a, **k: '{}'\njson.encoder.c_make_encoder = None\n"
    "json.encoder.encode_basestring_ascii = lambda s: '\"x\"'\n",
    "import builtins\nbuiltins.float = lambda *a: 7.0\nbuiltins.round = lambda *a, **k: 7.0\n",
    "import builtins\nbuiltins.repr = lambda *a: '7.0'\nbuiltins.len = lambda *a: 1\nbuiltins.isinstance = lambda *a: True\n",
    "import math\nmath.isfinite = lambda v: True\nmath.isclose = lambda *a, **k: True\n",
    "import os\nos.write = lambda fd, data: len(data)\n",
], ids=["json", "float-round", "repr-len-isinstance", "math", "os-write"])
def test_patching_the_standard_library_and_builtins_changes_nothing(grade: GradeFn, patch: str) -> None:
    assert_wrong_answer_failed(grade(WRONG + patch))


@pytest.mark.parametrize("hook", ["import sys\nsys.settrace(lambda *a: None)\n",
                                  "import sys\nsys.setprofile(lambda *a: None)\n"],
                         ids=["settrace", "setprofile"])
def test_trace_and_profile_hooks_are_refused(grade: GradeFn, hook: str) -> None:
    g = grade(WRONG + hook)
    assert_error(g, "Refused: the grader does not allow")


def test_an_audit_hook_of_the_learners_is_never_added(grade: GradeFn) -> None:
    # CPython drops a new audit hook silently when an existing one refuses it.
    code = WRONG + ("import sys\nheard = []\nsys.addaudithook(lambda event, args: heard.append(event))\n"
                    "import json, fractions\nexec('1')\nprint('heard', len(heard))\n")
    g = grade(code)
    assert g.stdout == "heard 0\n", describe(g)
    assert_wrong_answer_failed(g)


def test_threading_settrace_changes_nothing(grade: GradeFn) -> None:
    # threading.settrace only applies to threads started later, and none can be.
    assert_wrong_answer_failed(grade(WRONG + FORGED + "import threading\nthreading.settrace(lambda *a: None)\n"))


def test_frames_lead_to_nothing_of_the_grader(grade: GradeFn) -> None:
    code = WRONG + '''
import sys
names = set()
frame = sys._getframe()
depth = 0
while frame is not None:
    depth += 1
    names |= {k for k in frame.f_locals if isinstance(k, str)}
    last, frame = frame, frame.f_back
print(depth, last.f_code.co_name, sorted(n for n in names if any(w in n.lower() for w in ("token", "observe", "report"))))
'''
    g = grade(code)
    # The learner's module, then the learner thread's own frames down to its bootstrap: nothing of the grader's.
    depth, bottom, found = g.stdout.split(" ", 2)
    assert int(depth) <= 5 and bottom == "bootstrap" and found == "[]\n", describe(g)
    assert_wrong_answer_failed(g)


def _forged_frame(observations: list[dict[str, Any]]) -> bytes:
    frame = {"v": 1, "phase": "done", "observations": observations, "cpu_ms": 1.0, "exec_ms": 1.0}
    schema.validate_frame(frame, len(observations))
    return protocol.encode(frame)


@pytest.mark.parametrize("ending", ["import os\nos._exit(0)\n", ""], ids=["then-exits", "then-continues"])
def test_a_frame_written_with_every_token_the_learner_can_find_is_refused(grade: GradeFn, ending: str) -> None:
    frame = _forged_frame([FORGED_GRAD, {"kind": "bool", "value": True}])
    code = WRONG + f'''
import os, re, sys
frame = {frame!r}
candidates = set()
f = sys._getframe()
while f is not None:
    for value in list(f.f_locals.values()) + list(f.f_globals.values()):
        if isinstance(value, str):
            candidates |= set(re.findall(r"[0-9a-f]{{32}}", value))
    f = f.f_back
for token in candidates or {{"0" * 32}}:
    body = frame[4:-1] + (',"token":"%s"}}' % token).encode()
    os.write(4, len(body).to_bytes(4, "big") + body)
print("tokens tried", len(candidates))
''' + ending
    g = grade(code)
    assert g.status != "passed", describe(g)
    assert g.status == "error", describe(g)


def test_a_tensor_subclass_with_a_grad_property_is_read_for_what_autograd_wrote(grade: GradeFn) -> None:
    code = '''
import torch
class Fake(torch.Tensor):
    @property
    def grad(self):
        return torch.tensor(7.0)
x = torch.tensor(2.0).as_subclass(Fake).requires_grad_()
y = x ** 3
y.backward()
print(float(x.grad))
'''
    g = grade(code)
    assert g.stdout == "7.0\n"  # what the learner's own code sees
    assert_wrong_answer_failed(g)  # what the grader reads: the gradient autograd stored, 12.0


def test_a_plain_object_posing_as_a_tensor_is_not_read(grade: GradeFn) -> None:
    code = "import torch, types\nx = types.SimpleNamespace(grad=torch.tensor(7.0), requires_grad=True)\n"
    g = grade(code)
    assert g.status == "failed", describe(g)
    assert "`x` is a SimpleNamespace, not a tensor" in g.checks[0].message


def test_a_tensor_subclass_as_the_value_itself_is_not_read(grade: GradeFn) -> None:
    code = WRONG + '''
class Seven(torch.Tensor):
    def tolist(self):
        return [7.0]
g = torch.tensor(12.0).as_subclass(Seven)
'''
    plain_seven = {k: v for k, v in FORGED_GRAD.items() if k != "owner"}
    g = grade(code, checks=[Check("g")], extra=[plain_seven])
    assert g.status == "failed", describe(g)
    assert "a Seven (a subclass of torch.Tensor)" in g.checks[2].message


# -- attacks of our own: torch's extension points -------------------------------------------------------
@pytest.mark.parametrize("attack", [
    # A torch-function mode entered and never left: it would answer every read with 7.
    "from torch.overrides import TorchFunctionMode\n"
    "class Seven(TorchFunctionMode):\n"
    "    def __torch_function__(self, func, types, args=(), kwargs=None):\n"
    "        out = func(*args, **(kwargs or {}))\n"
    "        return [7.0] if getattr(func, '__name__', '') == 'tolist' else out\n"
    "Seven().__enter__()\n",
    # A dispatch mode rewriting every detach and view into a tensor of 7s.
    "from torch.utils._python_dispatch import TorchDispatchMode\n"
    "class Seven(TorchDispatchMode):\n"
    "    def __torch_dispatch__(self, func, types, args=(), kwargs=None):\n"
    "        out = func(*args, **(kwargs or {}))\n"
    "        return torch.full_like(out, 7.0) if isinstance(out, torch.Tensor) else out\n"
    "Seven().__enter__()\n",
    # torch.Tensor's own __torch_function__, replaced on the class.
    "def seven(cls, func, types, args=(), kwargs=None):\n"
    "    return [7.0] if getattr(func, '__name__', '') == 'tolist' else torch._C._disabled_torch_function_impl("
    "func, types, args, kwargs)\n"
    "torch.Tensor.__torch_function__ = classmethod(seven)\n",
    # Methods replaced on the class.
    "torch.Tensor.tolist = lambda self: [7.0]\ntorch.Tensor.detach = lambda self: torch.tensor(7.0)\n"
    "torch.Tensor.grad = property(lambda self: torch.tensor(7.0))\n",
], ids=["function-mode", "dispatch-mode", "class-torch-function", "class-methods"])
def test_torch_extension_points_change_nothing(grade: GradeFn, attack: str) -> None:
    assert_wrong_answer_failed(grade(WRONG + attack))


def test_operator_kernels_cannot_be_registered(grade: GradeFn) -> None:
    code = WRONG + ("lib = torch.library.Library('aten', 'IMPL')\n"
                    "lib.impl('detach', lambda t: torch.full_like(t, 7.0), 'CPU')\n")
    assert_error(grade(code), "Refused: the grader does not allow registering operator kernels")


# -- attacks of our own: code that would run later, on the grader's thread ----------------------------------
def test_a_warning_hook_never_runs_on_the_grader_thread(grade: GradeFn) -> None:
    # Reading h.grad of a non-leaf makes torch warn: a replaced showwarning would run there.
    code = WRONG + EVIL + ("import warnings\nwarnings.showwarning = evil\nwarnings.simplefilter('always')\n"
                           "warnings.formatwarning = evil\nh = x * 1\n")
    g = grade(code, checks=[Check("h.grad", "none")], extra=[{"kind": "none"}])
    assert_wrong_answer_failed(g)


def test_planted_keys_with_hostile_equality_never_run_on_the_grader_thread(grade: GradeFn) -> None:
    # Keys whose hash collides with "warnings" and "filters": a lookup on the grader's thread would call __eq__.
    code = WRONG + EVIL + '''
import sys, warnings
class Key(str):
    def __hash__(self):
        return hash(str(self))
    def __eq__(self, other):
        evil()
        return str.__eq__(self, other)
module = sys.modules.pop("warnings")
sys.modules[Key("warnings")] = module
sys.modules["warnings"] = module
filters = vars(warnings).pop("filters")
setattr(warnings, Key("filters"), filters)
h = x * 1
'''
    g = grade(code, checks=[Check("h.grad", "none")], extra=[{"kind": "none"}])
    assert_wrong_answer_failed(g)


def test_a_metaclass_with_hostile_equality_is_never_compared_by_the_grader(grade: GradeFn) -> None:
    code = WRONG + EVIL + '''
class Meta(type):
    def __eq__(cls, other):
        evil()
        return False
    __hash__ = type.__hash__
class Odd(metaclass=Meta):
    pass
g = Odd()
'''
    g = grade(code, checks=[Check("g")], extra=[{"kind": "other", "type": "Odd", "repr": "<Odd object>"}])
    assert_wrong_answer_failed(g)


def test_collector_callbacks_and_finalizers_never_run_on_the_grader_thread(grade: GradeFn) -> None:
    # A collection runs gc.callbacks and finalizers on whichever thread allocates: with a threshold
    # of 1, the grader's first allocation would collect, were the collector still on.
    code = WRONG + EVIL + '''
import gc
class Cycle:
    def __del__(self):
        evil()
gc.disable()
for _ in range(1000):
    a, b = Cycle(), Cycle()
    a.other, b.other = b, a
del a, b
gc.callbacks.append(lambda phase, info: evil())
gc.set_threshold(1, 1, 1)
gc.enable()
'''
    assert_wrong_answer_failed(grade(code))


def test_hooks_of_the_interpreter_never_run_on_the_grader_thread(grade: GradeFn) -> None:
    code = WRONG + EVIL + ("import sys\nsys.unraisablehook = evil\nsys.excepthook = evil\nsys.displayhook = evil\n"
                           "sys.breakpointhook = evil\nimport _thread\n_thread.interrupt_main()\n")
    assert_wrong_answer_failed(grade(code))


def test_code_that_keeps_running_after_it_reports_is_an_error(grade: GradeFn) -> None:
    # Release the lock the grader waits on, then keep changing x.grad while it reads.
    code = WRONG + '''
import sys, time
frame = sys._getframe()
while frame.f_back is not None:
    frame = frame.f_back
frame.f_locals["done"].release()
end = time.monotonic() + 0.5
while time.monotonic() < end:
    x.grad = torch.tensor(7.0)
'''
    g = grade(code)
    assert_error(g, "still running")
