"""The in-process guard's own promises, checked on its code rather than through a job.

observe.py and evidence.py are what the child's main thread runs after the
learner's code has started, as private copies. That is only safe if nothing it looks up at run
time can be changed from outside the copy: every global it loads must be an
immutable value, a C function or a class, and no attribute may be looked up
on a module (os.write, json.dumps) while it runs.
"""
from __future__ import annotations

import builtins
import dis
import json
import os
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from grader.sandbox import evidence, guard, observe

IMMUTABLE = (int, float, str, bytes, bool, type(None), type, types.FunctionType, types.BuiltinFunctionType,
             types.MethodWrapperType, types.MethodDescriptorType, types.WrapperDescriptorType,
             types.GetSetDescriptorType)
# Shared on purpose: the interpreter's own sys.modules and the warnings module are what quiet() repairs.
SHARED_ON_PURPOSE = {"_sys_modules", "_warnings_module"}


IMMUTABLE_TYPE = 1 << 8  # Py_TPFLAGS_IMMUTABLETYPE: a C type whose attributes cannot be set


def _immutable(value: Any) -> bool:
    if isinstance(value, (tuple, frozenset)):
        return all(_immutable(v) for v in value)
    if isinstance(value, IMMUTABLE):
        return True
    # An instance of one of torch's immutable C types without an instance dict (torch.strided, a torch.layout)
    kind = type(value)
    return kind.__module__ == "torch" and bool(kind.__flags__ & IMMUTABLE_TYPE) and not hasattr(value, "__dict__")


MAIN_THREAD_FUNCTIONS = [*guard.iter_functions(observe), *guard.iter_functions(evidence)]


@pytest.mark.parametrize("function", MAIN_THREAD_FUNCTIONS, ids=lambda f: f"{f.__module__}.{f.__name__}")
def test_the_observer_loads_only_immutable_globals_and_no_module_attributes(function: types.FunctionType) -> None:
    instructions = list(dis.get_instructions(function))
    module = function.__globals__
    for i, ins in enumerate(instructions):
        if ins.opname != "LOAD_GLOBAL":
            continue
        name = ins.argval
        if name in module:
            value = module[name]
        else:
            assert name in vars(builtins), f"{function.__name__} loads an unknown global {name}"
            continue  # builtins come from the private copy of builtins
        following = instructions[i + 1] if i + 1 < len(instructions) else None
        if isinstance(value, types.ModuleType):
            assert name in SHARED_ON_PURPOSE, f"{function.__name__} uses the module {name}"
            assert following is None or following.opname not in ("LOAD_ATTR", "LOAD_METHOD"), (
                f"{function.__name__} looks up an attribute of the module {name} at run time")
            continue
        assert name in SHARED_ON_PURPOSE or _immutable(value), (
            f"{function.__name__} loads {name}, a mutable {type(value).__name__} shared with the original module")


def test_a_private_copy_ignores_patches_to_its_module_and_to_builtins() -> None:
    def probe() -> str:  # in a fork: patching builtins would break pytest itself
        copy = guard.private_copy(observe)
        honest = copy.encode({"a": [1, 2.5, "x"]})
        observe._escape = lambda s: '"forged"'
        observe._float_repr = lambda f: "7.0"
        setattr(builtins, "type", lambda o: dict)  # a learner's patch; mypy rightly refuses the plain assignment
        builtins.len = lambda o: 0
        json.dumps = lambda *a, **k: "{}"
        try:
            patched = observe.encode({"a": [1, 2.5, "x"]})
        except Exception as exc:  # noqa: BLE001 - the patched builtins may break it outright
            patched = repr(exc)
        return copy.encode({"a": [1, 2.5, "x"]}) + "\n" + patched

    private, patched = in_a_fork(probe).split("\n", 1)
    assert private == '{"a":[1,2.5,"x"]}'
    assert patched != private  # the module itself is patched


def in_a_fork(action: Callable[[], str]) -> str:
    """Run action in a forked child (an audit hook cannot be removed) and return what it said."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write, action().encode())
        except BaseException as exc:  # noqa: BLE001
            os.write(write, f"crashed: {exc!r}".encode())
        finally:
            os._exit(0)
    os.close(write)
    out = b""
    while chunk := os.read(read, 1 << 16):
        out += chunk
    os.waitpid(pid, 0)
    return out.decode()


def _try(action: Callable[[], Any]) -> str:
    try:
        action()
    except guard.Refused as exc:
        return f"refused ({exc})"
    return "allowed"


def test_the_audit_hook_refuses_and_trusted_stands_it_down() -> None:
    def probe() -> str:
        import ctypes
        import gc

        trusted = guard.install()
        results = {
            "gc": _try(gc.get_objects),
            "current_frames": _try(sys._current_frames),
            "settrace": _try(lambda: sys.settrace(None)),
            "ctypes": _try(lambda: ctypes.string_at(id(1), 1)),
            "import grader": _try(lambda: __import__("grader.sandbox.not_loaded_yet")),
            "trusted current_frames": _try(lambda: trusted(sys._current_frames)),
            "after trusted": _try(sys._current_frames),
            "getframe": _try(sys._getframe),
        }
        return json.dumps(results)

    results = json.loads(in_a_fork(probe))
    for name in ("gc", "current_frames", "settrace", "ctypes", "import grader", "after trusted"):
        assert results[name].startswith("refused (the grader does not allow"), (name, results)
    assert results["trusted current_frames"] == "allowed" and results["getframe"] == "allowed"


def test_scrubbing_hides_the_graders_modules() -> None:
    def probe() -> str:
        main = sys.modules["__main__"]
        setattr(main, "planted", observe)  # the zygote's __main__ holds the zygote module, say
        count = guard.scrub_modules(names=guard.module_names())
        left = [n for n in sys.modules if n.startswith("grader")]
        return json.dumps({"count": count, "left": left, "main": hasattr(main, "planted")})

    result = json.loads(in_a_fork(probe))
    assert result["count"] > 5 and result["left"] == [] and result["main"] is False, result


def test_scrubbing_by_name_also_hides_a_module_loaded_after_the_names_were_taken() -> None:
    """A child scrubs by the names the template took (walking sys.modules would copy ~1,000 pages): a grader
    module imported since, under any name its package could give it, is removed all the same."""
    sandbox_files = {p.stem for p in Path(guard.__file__).parent.glob("*.py") if p.stem != "__init__"}

    def probe() -> str:
        names = guard.module_names()
        sys.modules.pop("grader.sandbox.bench", None)  # not loaded when the names were taken
        __import__("grader.sandbox.bench")
        count = guard.scrub_modules(names=names)
        left = [n for n in sys.modules if n.startswith("grader")]
        return json.dumps({"count": count, "left": left, "names": sorted(names)})

    result = json.loads(in_a_fork(probe))
    assert result["left"] == [] and result["count"] > 5, result
    assert {f"grader.sandbox.{stem}" for stem in sandbox_files} <= set(result["names"]), result["names"]
