"""The plain data the sandbox works with: jobs, limits, checks, run outcomes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_CODE_BYTES = 64 * 1024
MAX_CPU_SECONDS = 10
MAX_MEMORY_MB = 1024


@dataclass(frozen=True)
class Limits:
    cpu_seconds: float = 2.0
    memory_mb: int = 256
    wall_seconds: float | None = None  # default: twice the CPU time plus one second

    @property
    def wall(self) -> float:
        return self.wall_seconds if self.wall_seconds is not None else 2 * self.cpu_seconds + 1

    def as_dict(self) -> dict[str, Any]:
        return {"cpu_seconds": self.cpu_seconds, "memory_mb": self.memory_mb, "wall_seconds": self.wall}


# What the child reads for a target besides its value (evidence.py).
PROBES = ("value", "lineage", "identity", "graph")


@dataclass(frozen=True)
class Job:
    code: str
    targets: tuple[str, ...]
    setup: str = ""
    limits: Limits = field(default_factory=Limits)
    probes: tuple[tuple[str, tuple[str, ...]], ...] = ()  # per target: (probe, source names); empty: values only
    trace: bool = True  # record lineage; off only to measure what recording costs (bench.py)

    def probe_list(self) -> list[list[Any]]:
        probes = self.probes or tuple(("value", ()) for _ in self.targets)
        return [[probe, list(sources)] for probe, sources in probes]


DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-8


@dataclass(frozen=True)
class CheckKind:
    """One way a check judges: what it reads in the sandbox (probe; None: it reads the code
    itself, in the parent), and what it means, for authors."""

    name: str
    label: str
    probe: str | None
    help: str
    inferable: bool = False  # the content may leave it out: inferred from the reference's value


# The one list of check kinds: the content format, the models, the admin, the export and the
# sandbox job all take theirs from here. compare.py judges each, static.py the static ones.
CHECK_KINDS: dict[str, CheckKind] = {kind.name: kind for kind in (
    CheckKind("value", "Value (allclose)", "value", "the target's value matches the reference's", inferable=True),
    CheckKind("none", "Is None", "value", "the target is None", inferable=True),
    CheckKind("bool", "True / False", "value", "the target is the reference's True or False", inferable=True),
    CheckKind("autograd", "Written by autograd", "lineage",
              "the target (x.grad, or a gradient) was computed by autograd, not set or typed in by hand; with "
              "`from`, by differentiating those results (y.backward(), not another expression with its slope)"),
    CheckKind("derived", "Derived from", "lineage",
              "the target was computed, through torch operations, from every tensor named in `from`"),
    CheckKind("in_place", "Changed in place", "identity",
              "the target is still the object the item's setup made (changed in place, not re-created)"),
    CheckKind("graph", "Graph shape", "graph",
              "the target's autograd graph has the reference's shape and node types"),
    CheckKind("calls", "Calls", None,
              "the code calls one of the `|`-separated names in target (e.g. backward | autograd.grad)"),
    CheckKind("forbids", "Forbids", None,
              "the code does not use the construct in target: call:NAME, attr:NAME or assign:NAME"),
)}
VALUE_KINDS = tuple(name for name, kind in CHECK_KINDS.items() if kind.inferable)
STATIC_KINDS = tuple(name for name, kind in CHECK_KINDS.items() if kind.probe is None)


@dataclass(frozen=True)
class Check:
    target: str
    compare: str = "value"  # a CHECK_KINDS name
    name: str = ""
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    strict_dtype: bool = False
    weight: float = 1.0
    hidden: bool = False
    feedback: str = ""
    sources: tuple[str, ...] = ()  # derived: the names it must come from; autograd: the results differentiated

    @property
    def label(self) -> str:
        """What the verdict calls the check: its name, else its target and, beyond value checks, its kind."""
        if self.name:
            return self.name
        target = self.target.strip()
        return {
            "autograd": f"{target} by autograd", "derived": f"{target} from {', '.join(self.sources)}",
            "in_place": f"{target} changed in place", "graph": f"{target}'s graph",
            "calls": f"calls {target.replace('|', 'or')}", "forbids": f"no {target}",
        }.get(self.compare, target)

    @property
    def subject(self) -> str:
        """The check's name, else its target in backticks: what a message is about."""
        return self.name or f"`{self.target.strip()}`"

    @property
    def probe(self) -> str | None:
        return CHECK_KINDS[self.compare].probe


@dataclass
class RunOutcome:
    """What a run produced, before any judgement. Built only from a validated reply."""

    frame: dict[str, Any] | None
    frame_error: str | None
    killed_for: str | None
    started: bool  # the learner's code had started (the child wrote its marker)
    memory: dict[str, int] | None  # the child's memory-cgroup events (failcnt, oom_kill), when it was waited for
    exit_code: int | None
    exit_signal: int | None
    cpu_seconds: float | None
    output: str
    output_bytes: int
    wall_ms: float
    layers: dict[str, Any]


def rejection_reason(code: str | bytes) -> str | None:
    """Why code must not even be run, or None. Checked before anything runs."""
    if isinstance(code, bytes):
        raw = code
        try:
            code = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"the code is not valid UTF-8 (byte {exc.start})"
    else:
        try:
            raw = code.encode("utf-8")
        except UnicodeEncodeError:
            return "the code is not valid UTF-8 (it contains unpaired surrogates)"
    if len(raw) > MAX_CODE_BYTES:
        return f"the code is {len(raw)} bytes; the limit is {MAX_CODE_BYTES} bytes (64 KiB)"
    if "\x00" in code:
        return "the code contains a NUL byte"
    return None
