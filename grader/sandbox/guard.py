"""Isolation layer inside the learner's own process: what the kernel cannot see.

The kernel layers keep learner code away from the host. This layer keeps it
away from the grader's own code in the same interpreter, which reads the
learner's results and writes the verdict's evidence. The design
(SECURITY.md, "In-process guard") rests on four things:

* The learner's code (and the item's setup, and reading the check targets) runs
  on a thread of its own whose stack starts in `stage.bootstrap`: no frame the
  learner can walk to belongs to the grader's main thread.
* Every function the main thread runs after the learner's code has started is
  a *private copy* (`private_copy`): same code, but its globals and builtins
  are dictionaries nobody else holds, so patching a module, `builtins` or the
  stdlib changes nothing the grader calls.
* A PEP 578 audit hook, which cannot be removed, refuses what would reach the
  main thread or raw memory anyway: `sys._current_frames`, gc's object walks,
  trace and profile hooks, more audit hooks, ctypes, and importing the grader.
  (Changing a class's attributes raises no audit event in CPython; the
  main thread therefore never looks anything up on a Python-level class.)
* Python-level signal handlers (they run on the main thread) and operator
  registration with `torch.library` (kernels would run on any thread) are
  switched off before the learner's code runs.

None of this is a security boundary against memory corruption (ctypes from a
route not listed, a numpy view with forged strides, a CPython bug): SECURITY.md
says what that still cannot reach.
"""
from __future__ import annotations

import builtins
import pkgutil
import signal
import sys
import types
from collections.abc import Callable, Collection, Iterator
from typing import Any

REFUSED_EVENTS: dict[str, str] = {
    "sys._current_frames": "looking at other threads' call stacks",
    "sys._current_exceptions": "looking at other threads' exceptions",
    "sys.settrace": "trace hooks (sys.settrace)",
    "sys.setprofile": "profile hooks (sys.setprofile)",
    "sys.addaudithook": "audit hooks",
    "gc.get_objects": "walking the garbage collector's objects",
    "gc.get_referrers": "walking the garbage collector's objects",
    "gc.get_referents": "walking the garbage collector's objects",
}
REFUSED_PREFIXES: dict[str, str] = {
    "ctypes.": "raw memory and foreign functions (ctypes)",
}
PROTECTED_PACKAGE = "grader"


class Refused(RuntimeError):
    """Raised into learner code that tried something the grader does not allow."""


def _refusal(what: str) -> Refused:
    return Refused(f"the grader does not allow {what} in submitted code")


def install() -> Callable[..., Any]:
    """Add the audit hook; returns `trusted(fn)`, which calls fn with the hook stood down.

    `trusted` is for the main thread only, and only around C functions that run
    no Python code (sys._current_frames while the learner's thread is parked).
    The hook and its state live in this closure, reachable from nothing the
    learner holds.
    """
    standing_down = [False]
    refused_events = dict(REFUSED_EVENTS)
    prefixes = tuple(REFUSED_PREFIXES.items())
    package = PROTECTED_PACKAGE
    package_dot = package + "."

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if standing_down[0]:
            return
        what = refused_events.get(event)
        if what is None:
            for prefix, description in prefixes:
                if event.startswith(prefix):
                    what = description
                    break
        if what is None and event == "import":
            name = args[0]
            if type(name) is str and (name == package or name.startswith(package_dot)):
                what = "importing the grader"
        if what is not None:
            raise _refusal(what)

    sys.addaudithook(hook)

    def trusted(fn: Callable[..., Any], *args: Any) -> Any:
        standing_down[0] = True
        try:
            return fn(*args)
        finally:
            standing_down[0] = False

    return trusted


def neutralise_signals() -> None:
    """Default or ignored dispositions only, and no changing them from learner code.

    A Python signal handler runs on the main thread, between the grader's own
    bytecodes. SIGINT is ignored, so `_thread.interrupt_main()` does nothing.
    """
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM,
                   signal.SIGCHLD, signal.SIGHUP, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGXCPU):
        current = signal.getsignal(signum)
        if callable(current):
            signal.signal(signum, signal.SIG_IGN if signum in (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ)
                          else signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import _signal

    def refusing_signal(signum: Any, handler: Any) -> Any:
        # Python would refuse anyway (learner code does not run on the main thread), with
        # "signal only works in main thread": say why instead.
        raise _refusal("changing signal handlers")

    for module in (signal, _signal):
        setattr(module, "signal", refusing_signal)


def block_operator_registration() -> None:
    """torch.library kernels would run on whichever thread calls the operator: refuse them."""
    torch = sys.modules.get("torch")
    if torch is None:
        return

    def refusing_library(*args: Any, **kwargs: Any) -> Any:
        raise _refusal("registering operator kernels (torch.library)")

    torch._C._dispatch_library = refusing_library


def module_names(package: str = PROTECTED_PACKAGE) -> frozenset[str]:
    """Every name a module of the grader has, or could get, in sys.modules: those loaded now, and every
    module file of the packages loaded now (one a child imported after the template scrubbed, say)."""
    names = {n for n in sys.modules if n == package or n.startswith(package + ".")}
    for name in list(names):
        path = getattr(sys.modules[name], "__path__", None)
        if path is not None:
            names.update(f"{name}.{found.name}" for found in pkgutil.iter_modules(path))
    return frozenset(names)


def scrub_modules(names: Collection[str], package: str = PROTECTED_PACKAGE) -> int:
    """Remove the grader's modules from sys.modules and __main__; returns how many.

    names: the ones to remove (`module_names()`, taken before the fork), for the template and each child:
    looking a few dozen names up writes to a few pages, where walking sys.modules would write a reference
    count into every one of its ~2,000 keys, each page of them a copy-on-write fault after the fork.
    """
    removed = 0
    for name in names:
        if sys.modules.pop(name, None) is not None:
            removed += 1
    main = sys.modules.get("__main__")
    if main is not None:
        for key, value in list(vars(main).items()):
            module_name = getattr(value, "__name__", "") if isinstance(value, types.ModuleType) else \
                getattr(value, "__module__", "")
            if isinstance(module_name, str) and (module_name == package or module_name.startswith(package + ".")):
                delattr(main, key)
    return removed


def private_copy(module: types.ModuleType) -> types.SimpleNamespace:
    """The module's functions, bound to a private copy of its globals and of builtins.

    The copy is shallow: module-level values the functions use must be
    immutable (numbers, strings, tuples, frozensets, C functions and types).
    tests/sandbox/test_guard.py checks that for the module
    the main thread runs after the learner's code.
    """
    private: dict[str, Any] = dict(vars(module))
    private["__builtins__"] = dict(vars(builtins))
    functions = {}
    for function in iter_functions(module):
        copy = types.FunctionType(function.__code__, private, function.__name__, function.__defaults__,
                                  function.__closure__)
        copy.__kwdefaults__ = function.__kwdefaults__
        functions[function.__name__] = copy
    private.update(functions)
    return types.SimpleNamespace(**functions)


def iter_functions(module: types.ModuleType) -> Iterator[types.FunctionType]:
    """The functions defined in module (for the tests that check private_copy's assumptions)."""
    own = vars(module)
    for value in own.values():
        if isinstance(value, types.FunctionType) and value.__globals__ is own:
            yield value
