"""Derive the seccomp allow-list by tracing graded children: which calls they make after the filter is in.

    python -m grader.sandbox.trace_syscalls [--with-tests PATH ...] [--with-bench] [--keep DIR]

Runs a workload under `strace -f -ff` (one trace file per process), finds in
each file the line where a graded child installs its seccomp filter, and counts
every system call that child makes after it: the calls learner code, torch, the
standard library and the child's own reporting need once the filter is in. What
happens before the filter (namespaces, mounts, rlimits, Landlock, the uid drop)
is not counted: the filter never sees it.

The built-in workload goes through the public API (`Sandbox`, `Job`): the seed
quiz's code items (solution and starter) and the typical learner programs in
LEARNER_PROGRAMS below. `--with-tests` and `--with-bench` trace pytest files and
the benchmark as well. The report lists each call with how often jobs made it
and the filter's verdict, then what needs a look: calls a job made that the
filter refuses (on a benign workload: a call missing from the allow-list),
allowed calls no job made (each needs its reason in seccomp.py), the argument
values the checked calls were made with (ioctl requests, fcntl commands, signal
targets, ...), prlimit64 calls that set a limit and any clone.

The zygote's probe child (its job is `{"op": "probe"}`) tries what hostile code
would try on purpose; its calls are counted apart and never argue for allowing
anything. Needs strace (apt-get install strace) and root for the full sandbox.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import seccomp
from .syscalls import NUMBERS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TRACE_PREFIX = "t"
# The argument-checked calls: strace prints their arguments as numbers, which the report lists.
RAW_CALLS = tuple(seccomp.ARG_RULES)
INSTALL = re.compile(r"^(?:prctl\(PR_SET_SECCOMP, SECCOMP_MODE_FILTER|seccomp\(SECCOMP_SET_MODE_FILTER)"
                     r"|^prctl\(0x16, 0x2,")
CALL = re.compile(r"^(?P<name>[a-z_0-9]+)\((?P<args>.*)")
RESULT_EPERM = re.compile(r"= -1 EPERM ")
PROBE_JOB = '\\"op\\":\\"probe\\"'
UNKNOWN_CALL = re.compile(r"^syscall_0x(?P<nr>[0-9a-f]+)$")
# The new thread's id as strace's own pid namespace sees it (the child lives in the zygote's).
THREAD_ID = re.compile(r"= \d+ /\* (\d+) in strace's PID NS \*/$")
NAMES_BY_NUMBER = {nr: name for name, nr in NUMBERS.items()}

# Generous limits: under strace every call stops the child twice. (Half the jobs'
# CPU maximum, so the child's own start-up time never pushes it past the cap.)
TRACE_CPU_SECONDS = 5.0
TRACE_WALL_SECONDS = 60.0
TRACE_MEMORY_MB = 512

# (label, code, targets): what learners typically write beyond the seed items.
LEARNER_PROGRAMS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("print tensors", """\
import torch
torch.manual_seed(0)
x = torch.randn(3, 4)
print(x)
print(x.sum(), x.shape, x.dtype, x.mean(dim=0))
print(torch.arange(10).reshape(2, 5), torch.eye(3), torch.zeros(2, dtype=torch.int64))
print(f"{x[0, 0].item():.3f}", x.tolist()[0][:2], repr(x.T))
torch.set_printoptions(precision=2)
print(torch.linspace(0, 1, 5))
y = x.abs().max()
""", ("y",)),
    ("nn.Linear and an SGD step", """\
import torch
import torch.nn as nn
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
x, t = torch.randn(16, 3), torch.randn(16, 1)
for _ in range(5):
    opt.zero_grad()
    loss = nn.functional.mse_loss(model(x), t)
    loss.backward()
    opt.step()
adam = torch.optim.Adam(model.parameters(), lr=1e-3)
adam.zero_grad(); model(x).sum().backward(); adam.step()
w = model[0].weight.detach().clone()
print(model, loss.item())
""", ("w", "loss")),
    ("autograd.grad with create_graph", """\
import torch
x = torch.tensor(2.0, requires_grad=True)
y = x ** 3 + torch.sin(x)
g, = torch.autograd.grad(y, x, create_graph=True)
h, = torch.autograd.grad(g, x)
v = torch.randn(3, requires_grad=True)
jac = torch.autograd.functional.jacobian(lambda a: a ** 2, v)
with torch.enable_grad():
    z = (v * 2).sum()
z.backward()
""", ("g", "h", "v.grad")),
    ("numpy conversion", """\
import numpy as np
import torch
a = torch.arange(6.0).reshape(2, 3).numpy()
b = torch.from_numpy(np.ones(3) * 2)
c = np.linspace(0, 1, 4) @ np.ones(4)
d = torch.tensor(np.random.default_rng(0).normal(size=(2, 2)))
s = float(a.sum()) + float(b.sum()) + float(c)
print(a, b, np.array2string(a), d.numpy().dtype)
""", ("s",)),
    ("standard library imports", """\
import math, random, json, itertools, collections, functools, re, numpy, statistics, string, dataclasses, typing
import fractions, decimal, operator, heapq, bisect, copy, pprint, textwrap, enum, abc, contextlib, io, sys, os
random.seed(1)
r = random.random() + random.gauss(0, 1) + math.sqrt(2)
j = json.loads(json.dumps({"a": [1, 2.5, None]}))
c = collections.Counter("hello").most_common(1)
m = re.findall(r"l+", "hello")
p = list(itertools.permutations(range(3)))
f = functools.reduce(operator.add, range(10))
q = statistics.mean([1, 2, 3]) + float(fractions.Fraction(1, 3)) + float(decimal.Decimal("1.5"))
pprint.pprint({"k": list(range(30))})
print(textwrap.fill("word " * 30, 40), sys.version_info[:2], os.getcwd(), os.getpid() > 0)
import platform; print(platform.system(), platform.python_version())
import secrets; token = secrets.token_hex(4)
""", ("r", "f")),
    ("files in the working folder", """\
import os, pathlib, pickle, csv, shutil
import torch
with open("notes.txt", "w") as fh:
    fh.write("hello\\n" * 3)
with open("notes.txt") as fh:
    text = fh.read()
with open("notes.txt", "a") as fh:
    print("more", file=fh)
pathlib.Path("p.txt").write_text("x")
names = sorted(os.listdir("."))
os.makedirs("sub/dir", exist_ok=True)
os.rename("p.txt", "q.txt")  # within one folder: Landlock (no REFER right) refuses moves across folders
exists = os.path.exists("q.txt") and os.path.isdir("sub")
size = os.stat("notes.txt").st_size
with open("data.pkl", "wb") as fh:
    pickle.dump({"a": 1}, fh)
with open("data.pkl", "rb") as fh:
    loaded = pickle.load(fh)
with open("t.csv", "w", newline="") as fh:
    csv.writer(fh).writerow([1, 2])
torch.save({"w": torch.ones(3)}, "model.pt")
back = torch.load("model.pt")["w"].sum()
for entry in os.scandir("."):
    entry.is_file()
shutil.copy("notes.txt", "copy.txt")
shutil.copy2("notes.txt", "copy2.txt")
shutil.move("copy2.txt", "moved.txt")
import numpy as np, tempfile
np.save("a.npy", np.ones(3))
arr = np.load("a.npy")
with tempfile.TemporaryDirectory(dir=".") as tmp:
    pathlib.Path(tmp, "x").write_text("y")
shutil.rmtree("sub")
os.remove("notes.txt")
print(names, size, loaded, back, list(pathlib.Path(".").glob("*.pt")))
""", ("text", "size", "back")),
    ("exceptions", """\
import traceback, warnings
try:
    1 / 0
except ZeroDivisionError as exc:
    msg = str(exc)
try:
    import torch
    torch.ones(2) @ torch.ones(3)
except RuntimeError:
    tb = traceback.format_exc()
try:
    {}["missing"]
except KeyError:
    pass
warnings.warn("careful")
class Custom(Exception):
    pass
try:
    raise Custom("mine")
except Custom as exc:
    caught = repr(exc)
""", ("msg", "caught")),
    ("time and sleeping", """\
import time, datetime, select, threading
t0 = time.time()
time.sleep(0.01)
p = time.perf_counter() + time.monotonic() + time.process_time()
now = datetime.datetime.now().isoformat()
select.select([], [], [], 0.01)
threading.Event().wait(0.01)
elapsed = time.time() - t0 > 0
""", ("elapsed",)),
    ("torch.nn.functional", """\
import torch
import torch.nn.functional as F
torch.manual_seed(0)
logits = torch.randn(4, 3, requires_grad=True)
target = torch.tensor([0, 2, 1, 0])
loss = F.cross_entropy(logits, target) + F.mse_loss(F.softmax(logits, dim=1), torch.full((4, 3), 1 / 3))
loss.backward()
img = torch.randn(1, 1, 8, 8)
conv = F.conv2d(img, torch.randn(2, 1, 3, 3), padding=1)
pooled = F.max_pool2d(F.relu(conv), 2)
e = torch.einsum("ij,jk->ik", torch.randn(2, 3), torch.randn(3, 2))
inv = torch.linalg.inv(torch.eye(3) * 2)
big = torch.randn(256, 256) @ torch.randn(256, 256)
dist = torch.distributions.Normal(0.0, 1.0).log_prob(torch.tensor(0.5))
""", ("logits.grad", "pooled")),
    ("larger tensors", """\
import torch
x = torch.zeros(20_000_000)
x += 1
total = x.sum().item()
del x
y = [torch.ones(1000) for _ in range(1000)]
""", ("total",)),
    ("signals to itself", """\
import os, signal
seen = []
signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
os.kill(os.getpid(), signal.SIGUSR1)
signal.raise_signal(signal.SIGUSR1)
signal.pthread_sigmask(signal.SIG_BLOCK, [])
count = len(seen)
""", ("count",)),
    ("reading stdin", """\
try:
    line = input("value? ")
except EOFError:
    line = "eof"
""", ("line",)),
    ("a runtime error in torch", "import torch\ny = torch.ones(2, 3) @ torch.ones(2, 3)\n", ("y",)),
    ("a syntax error", "def f(:\n    pass\n", ("f",)),
    ("an error in learner code", "def f(n):\n    return f(n + 1)\nf(0)\n", ("f",)),
)


@dataclass
class Trace:
    """What one traced process did after its seccomp filter was installed."""

    path: Path
    probe: bool = False
    calls: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    checked_args: Counter[tuple[str, int, int]] = field(default_factory=Counter)  # (call, arg index, value)
    prlimit_sets: int = 0


def _call_name(raw: str) -> str:
    unknown = UNKNOWN_CALL.match(raw)
    if unknown:
        nr = int(unknown["nr"], 16)
        return NAMES_BY_NUMBER.get(nr, f"syscall_{nr}")
    return raw


def _args(text: str) -> list[str]:
    """Top-level comma-separated arguments of a raw-printed call (no nested braces there)."""
    inner = text.rsplit(")", 1)[0] if ") = " not in text else text.split(") = ", 1)[0]
    return [a.strip() for a in inner.split(",")]


def _record_checked(trace: Trace, name: str, args: list[str]) -> None:
    """The values of the arguments the call's rule looks at (pointers only as NULL or not)."""
    for index in sorted({clause.arg for clause in seccomp.ARG_RULES[name](0)}):
        try:
            value = int(args[index], 0)
        except (IndexError, ValueError):
            continue
        if name == "prlimit64" and index == 2:
            trace.prlimit_sets += value != 0
            value = int(value != 0)
        trace.checked_args[(name, index, value)] += 1


def _timed_lines(path: Path) -> list[tuple[float, str]]:
    """(timestamp, call text) for each line of a trace file written with strace -ttt."""
    out = []
    with path.open(errors="replace") as fh:
        for line in fh:
            stamp, _, text = line.partition(" ")
            try:
                out.append((float(stamp), text))
            except ValueError:
                continue
    return out


def _add_call(trace: Trace, text: str) -> None:
    match = CALL.match(text)
    if not match:
        return  # signals, exits, "<... resumed>" halves
    name = _call_name(match["name"])
    trace.calls[name] += 1
    if RESULT_EPERM.search(text):
        trace.refused[name] += 1
    if name in seccomp.ARG_RULES:
        _record_checked(trace, name, _args(match["args"]))


def _threads_started(timed: list[tuple[float, str]]) -> list[int]:
    """Thread ids this thread started (clone or clone3 with CLONE_THREAD, possibly interrupted and resumed)."""
    threads, pending = [], False
    for _, text in timed:
        text = text.rstrip()
        if text.startswith(("clone(", "clone3(")) and "CLONE_THREAD" in text:
            pending = text.endswith("<unfinished ...>")
            if not pending and (match := THREAD_ID.search(text)):
                threads.append(int(match[1]))
        elif pending and text.startswith(("<... clone resumed>", "<... clone3 resumed>")):
            pending = False
            if match := THREAD_ID.search(text):
                threads.append(int(match[1]))
    return threads


def parse_traces(paths: list[Path]) -> list[Trace]:
    """What each graded child made after its seccomp install, its learner thread included.

    strace -ff writes one file per thread. The child's main thread installs the
    filter (with TSYNC, on every thread at once), so a thread's calls count from
    the install's timestamp in the file of the thread that started it.
    """
    lines = {int(path.name.rsplit(".", 1)[1]): (path, _timed_lines(path)) for path in paths}
    traces = []
    for tid, (path, timed) in lines.items():
        installed_at = next((ts for ts, text in timed if INSTALL.match(text) and text.rstrip().endswith("= 0")), None)
        if installed_at is None:
            continue
        trace = Trace(path, probe=any(PROBE_JOB in text for _, text in timed))
        threads = _threads_started(timed)
        for ts, text in timed:
            if ts > installed_at:
                _add_call(trace, text)
        for thread in threads:
            for ts, text in lines.get(thread, (None, []))[1]:
                if ts > installed_at:
                    _add_call(trace, text)
        traces.append(trace)
    return traces


def verdict(name: str) -> str:
    """What the filter does with a call, in words, from seccomp's own tables."""
    if name in seccomp.ALLOWED:
        return "allow"
    if name in seccomp.ARG_RULES:
        return "checked"
    if name in seccomp.ENOSYS_CALLS:
        return "ENOSYS"
    return "refused"


def report(traces: list[Trace], out: Any = sys.stdout) -> int:
    """Print the call table and the findings; 1 if a benign job needed a call the filter refuses."""
    jobs = [t for t in traces if not t.probe]
    probes = [t for t in traces if t.probe]
    job_calls: Counter[str] = sum((t.calls for t in jobs), Counter())
    probe_calls: Counter[str] = sum((t.calls for t in probes), Counter())
    refused_in_jobs: Counter[str] = sum((t.refused for t in jobs), Counter())
    seen_by: dict[str, int] = defaultdict(int)
    for trace in jobs:
        for name in trace.calls:
            seen_by[name] += 1

    print(f"\n{len(jobs)} graded children and {len(probes)} probe children traced after their seccomp install.",
          file=out)
    print(f"\n{'call':<22}{'nr':>5}{'calls':>10}{'children':>10}  filter", file=out)
    for name in sorted(job_calls):
        print(f"{name:<22}{NUMBERS.get(name, -1):>5}{job_calls[name]:>10}{seen_by[name]:>10}  {verdict(name)}",
              file=out)

    print(f"\nsorted set used by graded children ({len(job_calls)}):", file=out)
    print(" ".join(sorted(job_calls)), file=out)

    problems = sorted(n for n in job_calls if verdict(n) == "refused")
    print("\ncalls jobs made that the filter refuses (fine when a job tried them on purpose):", file=out)
    print("  " + (", ".join(f"{n} x{job_calls[n]}" for n in problems) or "none"), file=out)
    eperm = sorted(n for n in refused_in_jobs if verdict(n) != "refused")
    print("allowed or checked calls that answered EPERM in a job (a refusal by an argument rule, or by the kernel):",
          file=out)
    print("  " + (", ".join(f"{n} x{refused_in_jobs[n]}" for n in eperm) or "none"), file=out)
    unused = sorted(set(seccomp.ALLOWED) - set(job_calls))
    print(f"allowed but made by no traced job ({len(unused)}; each needs its reason in seccomp.py):", file=out)
    print("  " + (", ".join(unused) or "none"), file=out)
    checked_args: Counter[tuple[str, int, int]] = sum((t.checked_args for t in jobs), Counter())
    print("argument values of the checked calls (call, argument index: value x count; the child's own pid varies):",
          file=out)
    for name in sorted({key[0] for key in checked_args}):
        values = ", ".join(f"arg{i}={v:#x} x{c}" for (n, i, v), c in sorted(checked_args.items()) if n == name)
        print(f"  {name}: {values}", file=out)
    print(f"prlimit64 calls that set a limit: {sum(t.prlimit_sets for t in jobs)} (refused: every limit must be "
          "set before the filter is installed)", file=out)
    print(f"clone/clone3/fork/vfork in jobs: {sum(job_calls[n] for n in ('clone', 'clone3', 'fork', 'vfork'))}",
          file=out)
    print(f"\nprobe children made {len(probe_calls)} distinct calls; of these not unconditionally allowed: "
          + (", ".join(sorted(n for n in probe_calls if verdict(n) != "allow")) or "none"), file=out)
    return 0


def _describe(outcome: Any) -> str:
    frame = outcome.frame or {}
    phase = frame.get("phase", "no frame")
    error = frame.get("error") or {}
    if error:
        return f"{phase}: {error.get('type')}: {str(error.get('message'))[:120]}"
    if phase == "internal":
        return f"internal: {frame.get('detail')}"
    if outcome.killed_for:
        return f"killed for {outcome.killed_for}"
    return phase


def run_workload(include_seed: bool) -> int:
    """The traced side: run the seed items and LEARNER_PROGRAMS through the real sandbox."""
    from . import Job, Limits, Sandbox

    limits = Limits(cpu_seconds=TRACE_CPU_SECONDS, memory_mb=TRACE_MEMORY_MB, wall_seconds=TRACE_WALL_SECONDS)
    programs: list[tuple[str, str, tuple[str, ...], str]] = [(l, c, t, "") for l, c, t in LEARNER_PROGRAMS]
    if include_seed:
        from .bench import load_items

        for item in load_items():
            for kind in ("solution", "starter"):
                programs.append((f"{item['slug']} ({kind})", item[kind], tuple(item["targets"]), item["setup"] or ""))
    with Sandbox(start_timeout=600.0) as sandbox:
        for i, (label, code, targets, setup) in enumerate(programs, 1):
            started = time.monotonic()
            outcome = sandbox.run(Job(code=code, targets=targets, setup=setup, limits=limits))
            print(f"  [{i}/{len(programs)}] {label}: {_describe(outcome)} ({time.monotonic() - started:.1f} s)",
                  file=sys.stderr, flush=True)
    return 0


def trace_command(command: list[str], directory: Path, prefix: str, strace: str) -> int:
    """Run command under strace, one output file per process in directory (prefix.PID)."""
    argv = [strace, "-f", "-ff", "-qq", "-ttt", "--pidns-translation", "-e", "raw=" + ",".join(RAW_CALLS), "-o", str(directory / prefix),
            *command]
    print(f"tracing: {' '.join(command)}", file=sys.stderr, flush=True)
    return subprocess.run(argv, cwd=PROJECT_ROOT, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grader.sandbox.trace_syscalls",
        description="Trace graded children under strace and print the system calls they make after the "
                    "seccomp filter is installed, with the filter's verdict on each.")
    parser.add_argument("--with-tests", action="append", default=[], metavar="PATH",
                        help="also trace a pytest run of PATH (repeatable), e.g. tests/sandbox/test_seed_items.py")
    parser.add_argument("--with-bench", action="store_true", help="also trace one round of grader.sandbox.bench")
    parser.add_argument("--no-seed", action="store_true", help="leave the seed quiz items out of the built-in workload")
    parser.add_argument("--no-workload", action="store_true", help="skip the built-in workload")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the raw trace files in DIR")
    parser.add_argument("--parse", type=Path, metavar="DIR", help="only parse trace files already in DIR")
    parser.add_argument("--strace", default=shutil.which("strace") or "/usr/bin/strace", help="strace binary")
    parser.add_argument("--run-workload", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.run_workload:
        return run_workload(include_seed=not args.no_seed)

    if args.parse:
        directory = args.parse
    else:
        if not Path(args.strace).exists():
            parser.error(f"strace not found at {args.strace}")
        directory = args.keep or Path(tempfile.mkdtemp(prefix="sctrace-"))
        directory.mkdir(parents=True, exist_ok=True)
        python = sys.executable
        runs: list[list[str]] = []
        if not args.no_workload:
            runs.append([python, "-m", "grader.sandbox.trace_syscalls", "--run-workload"]
                        + (["--no-seed"] if args.no_seed else []))
        runs += [[python, "-m", "pytest", path, "-q", "-p", "no:cacheprovider"] for path in args.with_tests]
        if args.with_bench:
            runs.append([python, "-m", "grader.sandbox.bench", "--rounds", "1", "--baseline", "1"])
        for index, run in enumerate(runs):
            code = trace_command(run, directory, f"{TRACE_PREFIX}{index}", args.strace)
            if code != 0:
                print(f"warning: {' '.join(run[1:])} exited with status {code}", file=sys.stderr)

    files = sorted(directory.glob(f"{TRACE_PREFIX}*.*"))
    print(f"parsing {len(files)} trace files in {directory}", file=sys.stderr, flush=True)
    traces = parse_traces(files)
    status = report(traces)
    if not args.parse and not args.keep:
        shutil.rmtree(directory, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
