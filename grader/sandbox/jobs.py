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


@dataclass(frozen=True)
class Job:
    code: str
    targets: tuple[str, ...]
    setup: str = ""
    limits: Limits = field(default_factory=Limits)


DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-8


@dataclass(frozen=True)
class Check:
    target: str
    compare: str = "value"  # value | none | bool
    name: str = ""
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    strict_dtype: bool = False
    weight: float = 1.0
    hidden: bool = False
    feedback: str = ""

    @property
    def label(self) -> str:
        return self.name or self.target


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
