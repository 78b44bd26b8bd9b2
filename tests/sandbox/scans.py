"""Learner code that looks for another learner's work in its own process.

Shared by the sandbox tests (several jobs through one zygote) and the API test
(two learners through the real worker). The scanner never holds the secret it
looks for as one string: it looks for FIRST immediately followed by SECOND,
so its own literals do not count. It prints one line per method:
`frames: clean`, `gc: refused: ...`, `heap: clean N` (N pages read), or FOUND.
"""
from __future__ import annotations

import uuid


def secret() -> tuple[str, str]:
    """Two halves; the secret is their concatenation."""
    token = uuid.uuid4().hex
    return f"SECRET{token[:12]}", f"{token[12:]}TERCES"


def victim_code(first: str, second: str) -> str:
    """A correct submission whose code, output and variables all carry the secret."""
    return (
        f"# {first}{second}\n"
        "import torch\n"
        f"note = '{first}' + '{second}'\n"
        "print(note)\n"
        "x = torch.tensor(2.0, requires_grad=True)\n"
        "y = x ** 2 + 3 * x + 1\n"
        "y.backward()\n"
    )


_SCANNER = '''
import sys
FIRST, SECOND = {first!r}, {second!r}


def holds(text):
    i = text.find(FIRST)
    while i != -1:
        if text.startswith(SECOND, i + len(FIRST)):
            return True
        i = text.find(FIRST, i + 1)
    return False


def text_of(value):
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value if isinstance(value, str) else ""


# 1. Every frame this thread can walk to, with its locals and globals.
found, depth = False, 0
frame = sys._getframe()
while frame is not None:
    depth += 1
    for scope in (frame.f_locals, frame.f_globals):
        for value in list(scope.values()):
            found = found or holds(text_of(value))
    frame = frame.f_back
print("frames:", "FOUND" if found else "clean", depth)

# 2. The garbage collector's objects.
try:
    import gc
    print("gc:", "FOUND" if any(holds(text_of(o)) for o in gc.get_objects()) else "clean")
except RuntimeError as exc:
    print("gc: refused:", exc)

# 3. The raw heap, without ctypes: numpy reads any address an __array_interface__ names.
#    The 4 KiB pages around many fresh objects: an earlier job's freed memory would be reused by them.
import numpy as np


class Raw:
    def __init__(self, address, size):
        self.__array_interface__ = {{"version": 3, "shape": (size,), "typestr": "|u1", "data": (address, True)}}


PAGE = 4096
keep = [bytes([i % 251]) * n for i in range(300) for n in (8, 40, 200, 900, 3000)]
keep += [str(i) * 60 for i in range(300)] + [dict(a=i) for i in range(300)]
pages = sorted({{id(o) & ~(PAGE - 1) for o in keep + [sys.modules, globals(), sys.stdout]}})
found = any(holds(np.asarray(Raw(page, PAGE)).tobytes().decode("latin-1")) for page in pages)
print("heap:", "FOUND" if found else "clean", len(pages))
'''


def scanner_code(first: str, second: str) -> str:
    return _SCANNER.format(first=first, second=second)
