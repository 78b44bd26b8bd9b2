"""Soak: the whole stack at a steady rate for minutes, watching for what grows.

    python -m grader.bench_soak [--minutes 10] [--rate 10] [--clients 10] [--database-url URL]

Serves this tree as the end-to-end bench does (grader.bench_e2e: gunicorn, one Celery worker with two processes,
each with its sandbox zygote, Redis on loopback, a fresh database; SQLite unless --database-url), then for each
minute offers --rate graded submissions per second, evenly spread (reference solutions and starters, alternating),
and prints that minute's p50/p99 latency from POST to verdict and the memory of gunicorn (master and workers),
Celery (without the zygotes) and the sandbox (the zygotes, their templates and pre-forked children), as PSS: forked
processes share pages, and PSS counts each page once across them.

It fails (exit 1) when a component's memory grew, from the second minute (the first warms caches) to the last, by
more than GROWTH_MIB and GROWTH_SHARE both, or when any submission was lost, refused, failed or given a wrong
verdict. Latency is printed, not judged: this machine is shared.
"""
from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from grader.bench_cpu import PROC, process_table, tree
from grader.bench_e2e import ROOT, Side, describe_tree, make_jobs, progress, run_phase, served

GROWTH_MIB = 25.0  # a component that grows by more than this ...
GROWTH_SHARE = 0.10  # ... and by more than this share of its size, between the second and the last minute, fails
COMPONENTS = ("gunicorn", "celery", "sandbox")


def pss_kib(pid: int, proc: Path = PROC) -> int:
    """A process's proportional set size in KiB (0 when it is gone)."""
    try:
        with open(proc / str(pid) / "smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


@dataclass
class Minute:
    number: int
    graded: int
    bad: int
    p50: float
    p99: float
    mib: dict[str, float]


def memory(gunicorn: int, celery: int, zygotes: set[int]) -> dict[str, float]:
    """PSS in MiB of each component's process tree."""
    table = process_table()
    pids = {"gunicorn": tree(table, gunicorn, prune=zygotes.__contains__),
            "celery": tree(table, celery, prune=zygotes.__contains__),
            "sandbox": set().union(*(tree(table, pid) for pid in zygotes))}
    return {name: sum(pss_kib(pid) for pid in found) / 1024 for name, found in pids.items()}


def grown(first: dict[str, float], last: dict[str, float]) -> list[str]:
    """The components that grew past both limits, said as 'name: A -> B MiB'."""
    return [f"{name}: {first[name]:.0f} -> {last[name]:.0f} MiB"
            for name in COMPONENTS
            if last[name] - first[name] > GROWTH_MIB and last[name] - first[name] > GROWTH_SHARE * first[name]]


def minute_line(m: Minute) -> str:
    sizes = ", ".join(f"{name} {m.mib[name]:.0f} MiB" for name in COMPONENTS)
    return (f"minute {m.number:2d}: {m.graded} graded, {m.bad} lost/refused/wrong, p50 {m.p50:.0f} ms, "
            f"p99 {m.p99:.0f} ms; {sizes}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m grader.bench_soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=10, help="how long, in minutes (default 10)")
    parser.add_argument("--rate", type=float, default=10.0, help="graded submissions offered per second (default 10)")
    parser.add_argument("--clients", type=int, default=10, help="concurrent HTTP clients (default 10)")
    parser.add_argument("--port", type=int, default=8124, help="gunicorn's port on 127.0.0.1 (default 8124)")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL URL of a database to drop and create (default: a SQLite file under var/)")
    args = parser.parse_args(argv)
    if args.minutes < 2:
        parser.error("--minutes must be at least 2: the first minute warms up, growth is read from the second")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # leave through `served`'s cleanup

    side = Side("now", describe_tree(), ROOT, args.database_url, "bench-soak")
    minutes: list[Minute] = []
    with served(side, args.port, args.clients) as up:
        per_minute = round(args.rate * 60)
        for number in range(1, args.minutes + 1):
            jobs = make_jobs(up.items, per_minute, f"soak-{number}")
            phase = run_phase(f"minute {number}", up.port, up.tokens, jobs, args.clients, timeout=120.0,
                              meter=up.meter, rate=args.rate)
            zygotes = up.meter.zygotes()
            minutes.append(Minute(number, phase.graded, phase.bad, phase.p50, phase.p99,
                                  memory(up.meter.gunicorn, up.meter.celery, zygotes)))
            print(minute_line(minutes[-1]), flush=True)
    problems = grown(minutes[1].mib, minutes[-1].mib)
    bad = sum(m.bad for m in minutes)
    print(f"\nover {args.minutes} minutes at {args.rate:g}/s: {sum(m.graded for m in minutes)} graded, {bad} "
          f"lost/refused/wrong; memory from minute 2 to {args.minutes}: "
          + ("; ".join(problems) + " (GREW)" if problems else "no component grew past "
             f"{GROWTH_MIB:.0f} MiB and {GROWTH_SHARE:.0%}"))
    progress("done")
    sys.exit(1 if problems or bad else 0)


if __name__ == "__main__":
    main()
