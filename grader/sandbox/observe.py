"""The main thread's side of a job, once the learner's code has started: wait, observe, report.

Everything here runs as a private copy (guard.private_copy): its globals and
builtins are dictionaries no learner code can reach, and every module-level
name it uses is bound below, before any learner code exists, to an immutable
value or a C function (tests/sandbox/test_guard.py checks both). So patching
json, os, builtins, torch's functions or this module changes nothing here.

It never runs learner code: values are read only from objects of exact
built-in types and from genuine tensors (torch.Tensor, nn.Parameter) through
torch's C descriptors, with the Python warnings machinery switched to
"ignore" first (a warning would call the warnings module's Python hooks) and
the garbage collector off (a collection would run learner finalizers). A
tensor subclass is reported by name, never read. The learner's own thread
and its dispatch or torch-function modes are thread-local, and the thread is
checked to be parked before anything is read.
"""
from __future__ import annotations

import gc
import json.encoder
import math
import os
import struct
import sys
import time
import warnings
from typing import Any

import _warnings
import torch

try:
    import numpy as _np
except ImportError:  # pragma: no cover - numpy is in requirements.txt
    _np = None

FRAME_VERSION = 1
VALUES_CAP = 10_000  # tensor elements serialised per observation
ITEMS_CAP = 64  # elements of a list or tuple
REPR_CAP = 200
OBSERVATION_BYTES = 512 << 10  # one observation, written out
OBSERVATIONS_BYTES = 2 << 20  # all of them (the zygote refuses result frames over 4 MiB)
RECURSION_LIMIT = 1000
RESULT_FD = 4

_TensorBase = torch._C.TensorBase
_GENUINE_TENSORS = (torch.Tensor, torch.nn.Parameter)
_detach = _TensorBase.detach
_reshape = _TensorBase.reshape
_tolist = _TensorBase.tolist
_numel = _TensorBase.numel
_size = _TensorBase.size
_requires_grad = _TensorBase.requires_grad.__get__
_is_leaf = _TensorBase.is_leaf.__get__
_grad = _TensorBase.grad.__get__
_grad_fn = _TensorBase.grad_fn.__get__
_retains_grad = _TensorBase.retains_grad.__get__
_dtype = _TensorBase.dtype.__get__
_layout = _TensorBase.layout.__get__
_is_meta = _TensorBase.is_meta.__get__
_strided = torch.strided
# Genuine tensors still consult torch.Tensor.__torch_function__, a Python class attribute learner code can
# replace: every read here runs with torch-function handling off (a C context manager, thread-local).
_no_torch_function = torch._C.DisableTorchFunction
_OWNER_READERS = (("grad", _grad), ("requires_grad", _requires_grad), ("is_leaf", _is_leaf), ("grad_fn", _grad_fn))
_type_name = type.__dict__["__name__"].__get__
_isfinite = math.isfinite
_isnan = math.isnan
_float_repr = float.__repr__
_int_repr = int.__repr__
_escape = json.encoder.c_encode_basestring_ascii or json.encoder.encode_basestring_ascii
_header = struct.Struct(">I").pack
_write = os.write
_dup2 = os.dup2
_open = os.open
_close = os.close
_O_WRONLY = os.O_WRONLY
_DEVNULL = "/dev/null"
_gc_disable = gc.disable
_setrecursionlimit = sys.setrecursionlimit
_sys_modules = sys.modules
_warnings_module = warnings
_filters_mutated = _warnings._filters_mutated
_process_time = time.process_time
_perf_counter = time.perf_counter
_sleep = time.sleep
# The learner's thread says it is done and then walks into its parking spot: on a busy machine the main thread
# can look before it gets there. It is given this long, looked at every PARK_POLL_SECONDS, before its job counts
# as unfinished (a thread still running code, in a finalizer say, never parks and still fails).
PARK_WAIT_SECONDS = 0.2
PARK_POLL_SECONDS = 0.0005
_PLAIN = (str, bytes, complex, range)
_PRIMITIVE = (str, bytes, int, float, bool, complex, type(None))
if _np is not None:
    _NUMPY_BOOL = (_np.bool_,)
    _NUMPY_INTEGERS = tuple(set(_np.sctypes["int"] + _np.sctypes["uint"])) if hasattr(_np, "sctypes") else tuple(
        {_np.int8, _np.int16, _np.int32, _np.int64, _np.uint8, _np.uint16, _np.uint32, _np.uint64})
    _NUMPY_FLOATS = (_np.float16, _np.float32, _np.float64)
else:  # pragma: no cover
    _NUMPY_BOOL = _NUMPY_INTEGERS = _NUMPY_FLOATS = ()
# Allocation failures, by exact class: a learner's own class called MemoryError is none of these.
try:
    from numpy._core._exceptions import _ArrayMemoryError
    _MEMORY_ERRORS: tuple[type, ...] = (MemoryError, _ArrayMemoryError)
except ImportError:  # pragma: no cover - numpy 1.x, or none
    _MEMORY_ERRORS = (MemoryError,)
_MEMORY_MESSAGE = "DefaultCPUAllocator: can't allocate memory"
_errno_of = OSError.__dict__["errno"].__get__


# -- reading values -----------------------------------------------------------------------
def one_of(kind: type, options: tuple[type, ...]) -> bool:
    """kind is one of options, by identity: `in` would call __eq__, which a learner's metaclass can define."""
    for option in options:
        if option is kind:
            return True
    return False


def number(value: float) -> float | str:
    if _isfinite(value):
        return value
    return "nan" if _isnan(value) else ("inf" if value > 0 else "-inf")


def integer(value: int) -> dict[str, Any]:
    if -(2**63) <= value < 2**63:
        return {"kind": "int", "value": value}
    try:
        return {"kind": "float", "value": number(float(value))}
    except OverflowError:
        return {"kind": "float", "value": "inf" if value > 0 else "-inf"}


def observe_tensor(t: Any, subclass: str | None = None) -> dict[str, Any]:
    with _no_torch_function():
        return read_tensor(t, subclass)


def read_tensor(t: Any, subclass: str | None) -> dict[str, Any]:
    dtype = str(_dtype(t)).removeprefix("torch.")
    numel = int(_numel(t))
    grad_fn = _grad_fn(t)
    obs: dict[str, Any] = {
        "kind": "tensor",
        "dtype": dtype,
        "shape": [int(n) for n in _size(t)],
        "numel": numel,
        "requires_grad": bool(_requires_grad(t)),
        "is_leaf": bool(_is_leaf(t)),
        "grad_fn": None if grad_fn is None else _type_name(type(grad_fn))[:80],
        "values": None,
    }
    if subclass is not None:
        obs["subclass"] = subclass[:80]
        return obs
    if numel <= VALUES_CAP and not dtype.startswith("complex") and _layout(t) is _strided and not _is_meta(t):
        try:
            flat = _tolist(_reshape(_detach(t), (-1,)))
        except Exception:  # noqa: BLE001 - quantized or otherwise unreadable: observed without values
            return obs
        if dtype == "bool":
            obs["values"] = [v is True for v in flat]
        elif dtype.startswith(("int", "uint")):
            obs["values"] = [v for v in flat if type(v) is int]
        else:
            obs["values"] = [number(v) for v in flat if type(v) is float]
        if len(obs["values"]) != numel:
            obs["values"] = None
    return obs


def plain_repr(value: Any, depth: int = 0) -> str | None:
    """repr of a value made only of built-in types (no learner __repr__ can run), else None."""
    kind = type(value)
    if one_of(kind, _PLAIN):
        return repr(value)[:REPR_CAP]
    if depth > 2:
        return None
    if kind is dict:
        for key, item in value.items():
            if not one_of(type(key), _PRIMITIVE) or not one_of(type(item), _PRIMITIVE):
                return None
        return repr(value)[:REPR_CAP]
    if kind is set or kind is frozenset or kind is list or kind is tuple:
        for item in value:
            if not one_of(type(item), _PRIMITIVE):
                return None
        return repr(value)[:REPR_CAP]
    return None


def observe_value(value: Any, depth: int = 0) -> dict[str, Any]:
    kind = type(value)
    if value is None:
        return {"kind": "none"}
    if kind is bool:
        return {"kind": "bool", "value": value}
    if kind is int:
        return integer(value)
    if kind is float:
        return {"kind": "float", "value": number(value)}
    if one_of(kind, _GENUINE_TENSORS):
        return observe_tensor(value)
    if issubclass(kind, _TensorBase):
        return observe_tensor(value, subclass=_type_name(kind))
    if one_of(kind, _NUMPY_BOOL):
        return {"kind": "bool", "value": bool(value)}
    if one_of(kind, _NUMPY_INTEGERS):
        return integer(int(value))
    if one_of(kind, _NUMPY_FLOATS):
        return {"kind": "float", "value": number(float(value))}
    if (kind is list or kind is tuple) and depth < 2:
        return {
            "kind": "sequence",
            "type": "list" if kind is list else "tuple",
            "length": len(value),
            "items": [observe_value(v, depth + 1) for v in value[:ITEMS_CAP]],
        }
    name = _type_name(kind)[:80]
    text = plain_repr(value)
    return {"kind": "other", "type": name, "repr": text if text is not None else f"<{name} object>"}


def described(description: Any) -> tuple[str, str, str, int | None]:
    """The learner thread's (name, message, traceback, line), trusted only in its exact types."""
    if type(description) is tuple and len(description) == 4:
        name, message, traceback, line = description
        if type(name) is str and type(message) is str and type(traceback) is str and (
                line is None or type(line) is int):
            return name[:200], message[:2000], traceback[-8000:], line
    return "Exception", "", "(the exception could not be described)", None


def error_of(failure: Any, phase: str) -> dict[str, Any]:
    exc, description = failure if type(failure) is tuple and len(failure) == 2 else (None, None)
    name, message, traceback, line = described(description)
    kind = type(exc)
    memory = one_of(kind, _MEMORY_ERRORS) or (kind is RuntimeError and _MEMORY_MESSAGE in message)
    error = {"type": name, "message": message, "traceback": traceback, "line": line, "phase": phase,
             "memory": memory}
    if issubclass(kind, OSError):
        number = _errno_of(exc)
        if type(number) is int:
            error["errno"] = number
    return error


def observe_target(result: Any, meta: tuple[Any, ...]) -> dict[str, Any] | tuple[str, Any]:
    """One target's observation; ("fatal", error) when reading it raised a BaseException that is no Exception."""
    attr, owner_text = meta[1], meta[2]
    if type(result) is not tuple or not result or type(result[0]) is not str:
        return {"kind": "missing", "error": "the target could not be read"}
    tag = result[0]
    if tag == "raised" and len(result) == 3:
        exc_type = type(result[1])
        if not issubclass(exc_type, Exception):
            return ("fatal", error_of((result[1], result[2]), "run"))
        name, message, _, _ = described(result[2])
        return {"kind": "missing", "error": f"{name}: {message}"[:400]}
    if len(result) != 2:
        return {"kind": "missing", "error": "the target could not be read"}
    value = result[1]
    if tag == "value":
        return observe_value(value)
    owner_type = type(value)
    if not issubclass(owner_type, _TensorBase):
        return {"kind": "missing", "error": f"`{owner_text}` is a {_type_name(owner_type)[:80]}, not a tensor"[:400]}
    with _no_torch_function():
        owner = {"requires_grad": bool(_requires_grad(value)), "is_leaf": bool(_is_leaf(value)),
                 "retains_grad": bool(_retains_grad(value))}
        if attr == "grad" and not owner["is_leaf"] and not owner["retains_grad"]:
            # Autograd keeps no .grad for such a tensor, and torch would warn on reading it (a warning
            # is Python code of the warnings module's); a hand-assigned one does not count.
            attribute = None
        else:
            for name, reader in _OWNER_READERS:
                if name == attr:
                    attribute = reader(value)
                    break
            else:
                return {"kind": "missing", "error": f"unknown attribute {attr}"}
    obs = observe_value(attribute)
    if attr == "grad":
        obs["owner"] = owner
    return obs


# -- writing the frame ---------------------------------------------------------------------
def encode(value: Any) -> str:
    """Strict JSON of plain data (exact types only); ValueError on anything else."""
    kind = type(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return _int_repr(value)
    if kind is float:
        if not _isfinite(value):
            raise ValueError("non-finite float")
        return _float_repr(value)
    if kind is str:
        return _escape(value)
    if kind is list or kind is tuple:
        return "[" + ",".join([encode(v) for v in value]) + "]"
    if kind is dict:
        parts = []
        for key, item in value.items():
            if type(key) is not str:
                raise ValueError("keys must be strings")
            parts.append(_escape(key) + ":" + encode(item))
        return "{" + ",".join(parts) + "}"
    raise ValueError("not plain data")


def frame_bytes(head: dict[str, Any], observations: list[str] | None = None) -> bytes:
    text = encode(head)
    if observations is not None:
        text = text[:-1] + ',"observations":[' + ",".join(observations) + "]}"
    data = text.encode("ascii")
    return _header(len(data)) + data


def encoded_observations(observations: list[dict[str, Any]]) -> list[str]:
    """Each observation written out, those over the size budget replaced by an `oversized` one."""
    out = []
    total = 0
    for obs in observations:
        text = encode(obs)
        if len(text) > OBSERVATION_BYTES or total + len(text) > OBSERVATIONS_BYTES:
            text = encode({"kind": "oversized", "bytes": len(text)})
        total += len(text)
        out.append(text)
    return out


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[_write(fd, view):]


def close_output() -> None:
    """Point stdout and stderr at /dev/null, so the zygote sees the output end before the frame."""
    devnull = _open(_DEVNULL, _O_WRONLY)
    _dup2(devnull, 1)
    _dup2(devnull, 2)
    _close(devnull)


# -- the whole of it ------------------------------------------------------------------------
def only_str_keys(namespace: dict[Any, Any], keep: list[Any]) -> None:
    """Rebuild a shared dict with its exact-str keys only.

    A learner can plant a key whose __eq__ runs when a lookup's hash collides
    with it (a str subclass, say, in sys.modules or a module's namespace); C
    code looking up "warnings" or "filters" on this thread would then run it.
    Iterating and clearing call no __eq__; everything removed stays referenced
    in keep, so no finalizer runs either.
    """
    for key in namespace:
        if type(key) is not str:
            break
    else:
        return  # the usual case, checked in ~60 µs for sys.modules; rebuilding it costs ~1 ms
    keep.append(list(namespace.items()))
    namespace.clear()
    for key, value in keep[-1]:
        if type(key) is str:
            namespace[key] = value


def quiet() -> list[Any]:
    """Stop everything that could run Python code behind the grader's back while it reads.

    The collector is switched off first, before anything here allocates (a
    collection would run learner finalizers on this thread). Warnings (torch
    warns when .grad of a non-leaf is read) are ignored outright, so the warnings
    module's Python hooks, which learner code can replace, are never called.
    """
    _gc_disable()
    keep: list[Any] = []  # returned, so the caller keeps what was removed alive
    _setrecursionlimit(RECURSION_LIMIT)
    only_str_keys(_sys_modules, keep)
    _sys_modules["warnings"] = _warnings_module
    names = vars(_warnings_module)
    only_str_keys(names, keep)
    names["filters"] = [("ignore", None, Warning, None, 0)]
    _filters_mutated()
    return keep


def parked(trusted: Any, current_frames: Any, ident: int, park_code: Any, park_lineno: int) -> bool:
    """Whether the learner's thread waits in its parking spot (and so runs no code)."""
    frames = trusted(current_frames)
    frame = frames.get(ident) if type(frames) is dict else None
    return (frame is not None and frame.f_code is park_code and frame.f_back is None
            and frame.f_lineno == park_lineno)


def read_facts(obs: dict[str, Any], result: Any, meta: tuple[Any, ...], before: Any, reading: Any,
               facts: Any, given: list[Any], memo: dict[str, Any]) -> None:
    """Add what the target's probe asks for (lineage, identity, graph) to its observation."""
    probe = meta[3]
    if probe == "value" or obs["kind"] == "missing":
        return
    events, flags, namespace = reading
    if probe == "lineage":
        if "index" not in memo:  # once per job, for all its lineage targets
            memo["index"] = facts.index(events)
        obs["lineage"] = facts.lineage(result, meta[1], memo["index"], flags[1] is False, given, meta[4])
    elif probe == "identity":
        early = before if type(before) is tuple and len(before) == 2 and before[0] == "value" else None
        obs["same"] = early is not None and early[1] is result[1]
    elif probe == "graph":
        obs["graph"] = facts.graph(result[1], facts.names_of(namespace, given))


def build(outcome: Any, metas: list[tuple[Any, ...]], reading: Any,
          facts: Any) -> tuple[dict[str, Any], list[str] | None]:
    phase = outcome[0] if type(outcome) is tuple and outcome and type(outcome[0]) is str else None
    if phase == "setup_error" and len(outcome) == 2:
        return {"phase": "setup_error", "error": error_of(outcome[1], "run")}, None
    if phase == "code_error" and len(outcome) == 2:
        return {"phase": "code_error", "error": error_of(outcome[1], "run")}, None
    if (phase == "done" and len(outcome) == 4 and type(outcome[1]) is list and len(outcome[1]) == len(metas)
            and type(outcome[2]) is list and type(outcome[3]) is list):
        given = [g for g in outcome[3] if type(g) is tuple and len(g) == 3 and type(g[0]) is str
                 and type(g[1]) is str]
        early = iter(outcome[2])
        memo: dict[str, Any] = {}
        observations = []
        for result, meta in zip(outcome[1], metas):
            obs = observe_target(result, meta)
            if type(obs) is tuple:
                return {"phase": "target_error", "target": meta[2][:200], "error": obs[1]}, None
            before = next(early, None) if meta[3] == "identity" else None
            read_facts(obs, result, meta, before, reading, facts, given, memo)
            observations.append(obs)
        return {"phase": "done"}, encoded_observations(observations)
    return {"phase": "unfinished"}, None


def finish(start: Any, done: Any, slot: list[Any], metas: list[tuple[Any, ...]], reading: Any, facts: Any,
           token: str | None,
           trusted: Any, current_frames: Any, ident: int, park_code: Any, park_lineno: int,
           fallback: bytes) -> None:
    """Hand the job to the learner's thread, wait, read, write the result frame. Never raises."""
    started_cpu, started = _process_time(), _perf_counter()
    data = fallback
    try:
        start.release()
        done.acquire()
        kept = quiet()  # noqa: F841 - holds what quiet() removed until the process ends; first, before allocating
        ok = parked(trusted, current_frames, ident, park_code, park_lineno)
        deadline = _perf_counter() + PARK_WAIT_SECONDS
        while not ok and _perf_counter() < deadline:
            _sleep(PARK_POLL_SECONDS)
            ok = parked(trusted, current_frames, ident, park_code, park_lineno)
        head, observations = build(slot[1], metas, reading, facts) if ok else ({"phase": "unfinished"}, None)
        head["v"] = FRAME_VERSION
        head["cpu_ms"] = round((_process_time() - started_cpu) * 1000, 3)
        head["exec_ms"] = round((_perf_counter() - started) * 1000, 3)
        if token is not None:
            head["token"] = token
        data = frame_bytes(head, observations)
    except BaseException:  # noqa: BLE001 - out of memory, or the interpreter broken by the learner's code
        data = fallback
    try:
        close_output()
        write_all(RESULT_FD, data)
        _close(RESULT_FD)  # the zygote reads to the end of the channel: end it now, not when the process is gone
    except BaseException:  # noqa: BLE001 - the learner closed the result channel: the zygote sees no frame
        pass


def prefault(slot: list[Any], metas: list[tuple[Any, ...]], reading: Any, facts: Any) -> int:
    """Read the warm-up job's results as a real job's would be read, and look over sys.modules and the warnings
    module's namespace as quiet() will; returns the frame's size. (quiet()'s walk over sys.modules' ~5,000 keys
    writes a reference count into each key's page: after the fork that is ~1,100 copy-on-write faults, ~5 ms
    off a paced job's time when they happen here.)"""
    only_str_keys(_sys_modules, [])
    only_str_keys(vars(_warnings_module), [])
    head, observations = build(slot[1], metas, reading, facts)
    head["v"] = FRAME_VERSION
    return len(frame_bytes(head, observations))
