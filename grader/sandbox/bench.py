"""Benchmark: grading latency through the zygote vs a fresh interpreter per submission.

    python -m grader.sandbox.bench [--rounds N] [--baseline N]

Grades the seed quiz's code items repeatedly (each item's reference solution,
which must pass, and its starter code with one token added, which must not:
the unchanged starter is refused without running) and prints p50/p99
latency per submission in two regimes: paced (a short pause between
submissions, as a worker has while it writes a verdict and fetches the next
job, so the pool of pre-forked children refills) and back-to-back (the pool
must refill under load). In the same run it times the model of runners that
start a fresh interpreter per submission: `python -c` importing torch and
running the same code. It also measures what lineage tracing costs: each
item's solution run with the recorder on and off, compared on the child's own
execution time (median per item). No Django, no broker: just the sandbox.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from .client import Sandbox
from .grading import grade_code, observe_reference, sandbox_job
from .jobs import STATIC_KINDS, Check, Limits

SEED = Path(__file__).resolve().parents[2] / "quiz" / "content" / "autograd-basics.yaml"
PACED_TARGET_MS = 5.0
BACK_TO_BACK_TARGET_MS = 10.0
SPEEDUP_TARGET = 200.0  # paced, against a fresh interpreter per submission measured in the same run
TRACING_TARGET_MS = 1.0  # lineage recording, per seed item (median of the child's execution time, on - off)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def load_items() -> list[dict]:
    """The seed quiz's code items, read straight from its YAML (the sandbox imports nothing of the project;
    the content loader, quiz/content_format.py, has validated the same file in the tests)."""
    items = []
    for raw in yaml.safe_load(SEED.read_text())["items"]:
        if raw.get("kind") == "code":
            limits = raw.get("limits", {})
            items.append({"slug": raw["slug"], "setup": raw.get("setup", ""), "solution": raw["solution"],
                          "starter": raw.get("starter", "") + "\n_touched = 1\n",
                          "targets": [c["target"] for c in raw["checks"]],
                          "compare": [c.get("compare") for c in raw["checks"]],
                          "sources": [tuple(c.get("from", ())) for c in raw["checks"]],
                          "limits": Limits(cpu_seconds=limits.get("time_seconds", 2.0),
                                           memory_mb=limits.get("memory_mb", 256))})
    return items


def fresh_interpreter_ms(item: dict) -> float:
    """One submission the Jobe/Judge0 way: a new interpreter that imports torch, runs, observes."""
    targets = [t for t, c in zip(item["targets"], item["compare"]) if c not in STATIC_KINDS]
    script = "\n".join([item["setup"], item["solution"], f"_ = [eval(t) for t in {targets!r}]"])
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", script], check=True, env=env, capture_output=True)
    return (time.perf_counter() - started) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m grader.sandbox.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15, help="passes over the items per regime (default 15)")
    parser.add_argument("--baseline", type=int, default=20, help="fresh-interpreter runs (default 20)")
    parser.add_argument("--pause-ms", type=float, default=20.0, help="pause between paced submissions")
    parser.add_argument("--pool", type=int, default=2, help="pre-forked children per zygote (default 2)")
    args = parser.parse_args(argv)

    items = load_items()
    started = time.perf_counter()
    sandbox = Sandbox(pool_size=args.pool)
    hello = sandbox.start()
    start_s = time.perf_counter() - started
    print(f"Sandbox benchmark: {len(items)} seed code items, torch {hello['torch']}, {os.cpu_count()} CPUs", flush=True)
    print(f"  zygote start (import torch, warm up, probe): {start_s:.2f} s", flush=True)
    try:
        for item in items:
            probing = [Check(target=t, compare=c or "value", sources=s)
                       for t, c, s in zip(item["targets"], item["compare"], item["sources"])]
            item["reference"] = observe_reference(sandbox, solution=item["solution"], setup=item["setup"],
                                                  checks=probing, limits=item["limits"])
            item["checks"] = [Check(target=c.target, compare=c.compare if c.compare != "value" else _infer(o),
                                    sources=c.sources) for c, o in zip(probing, item["reference"])]

        def grade(item: dict, code: str) -> tuple[float, str]:
            t0 = time.perf_counter()
            result = grade_code(sandbox, code=code, setup=item["setup"], checks=item["checks"],
                                reference=item["reference"], limits=item["limits"], reveal_expected=True)
            return (time.perf_counter() - t0) * 1000, result.status

        wrong = 0
        results: dict[str, list[float]] = {"paced": [], "back-to-back": []}
        for regime, pause in (("paced", args.pause_ms / 1000), ("back-to-back", 0.0)):
            for _ in range(args.rounds):
                for item in items:
                    for code, must_pass in ((item["solution"], True), (item["starter"], False)):
                        if pause:
                            time.sleep(pause)
                        ms, status = grade(item, code)
                        results[regime].append(ms)
                        wrong += (status == "passed") != must_pass
        total = sum(len(v) for v in results.values())
        print(f"  graded {total} submissions (reference solutions and starters); wrong verdicts: {wrong}")
        for regime, values in results.items():
            print(f"  {regime + ':':<34} p50 {percentile(values, 50):6.1f} ms   p99 {percentile(values, 99):6.1f} ms")
        tracing = tracing_cost(sandbox, items, args.rounds)
        for slug, cost in tracing.items():
            print(f"  lineage tracing, {slug + ':':<26} {cost:+5.2f} ms")
        worst = max(tracing.values())
        print(f"  lineage tracing, worst item: {worst:+.2f} ms (target <= {TRACING_TARGET_MS:.0f} ms: "
              f"{'MET' if worst <= TRACING_TARGET_MS else 'NOT MET'})")
        print(f"  zygote restarts during the run: {sandbox.restarts}", flush=True)
    finally:
        sandbox.close()

    print(f"  fresh interpreter per submission ({args.baseline} runs) ...", flush=True)
    baseline = [fresh_interpreter_ms(items[i % len(items)]) for i in range(args.baseline)]
    base_p50 = percentile(baseline, 50)
    print(f"  {'fresh interpreter:':<34} p50 {base_p50:6.1f} ms   p99 {percentile(baseline, 99):6.1f} ms")
    paced_p50, b2b_p50 = percentile(results["paced"], 50), percentile(results["back-to-back"], 50)
    print(f"  speed-up at p50: {base_p50 / paced_p50:.0f}x paced, {base_p50 / b2b_p50:.0f}x back-to-back")
    met = (paced_p50 <= PACED_TARGET_MS and b2b_p50 <= BACK_TO_BACK_TARGET_MS
           and base_p50 / paced_p50 >= SPEEDUP_TARGET)
    print(f"  target (paced p50 <= {PACED_TARGET_MS:.0f} ms and >= {SPEEDUP_TARGET:.0f}x a fresh interpreter, "
          f"back-to-back p50 <= {BACK_TO_BACK_TARGET_MS:.0f} ms): {'MET' if met and not wrong else 'NOT MET'}  "
          "(median of per-submission latencies)")
    if wrong:
        raise SystemExit(f"{wrong} wrong verdicts")


def tracing_cost(sandbox: Sandbox, items: list[dict], rounds: int) -> dict[str, float]:
    """Per item: the median, over back-to-back pairs of runs, of the child's execution time with lineage recorded
    minus without (pairs, so that the machine's drift cancels out)."""
    cost = {}
    for item in items:
        job = sandbox_job(code=item["solution"], setup=item["setup"], checks=item["checks"], limits=item["limits"])
        differences = []
        for _ in range(max(2 * rounds, 40)):
            pair = {}
            for trace in (True, False):
                time.sleep(0.03)  # paced: a ready child each time
                outcome = sandbox.run(type(job)(**{**job.__dict__, "trace": trace}))
                pair[trace] = float(outcome.frame["exec_ms"]) if outcome.frame else float("nan")
            differences.append(pair[True] - pair[False])
        cost[item["slug"]] = percentile(differences, 50)
    return cost


def _infer(observation: dict) -> str:
    kind = observation["kind"]
    return "none" if kind == "none" else "bool" if kind == "bool" else "value"


if __name__ == "__main__":
    main()
