"""A pool child's warm-up: it runs while the child waits for a job, never keeps a job waiting, and is skipped
while the machine's CPUs are contended.

Each case runs in a forked process (the learner thread's locks and the lineage recorder are per process), as
the child does: a LearnerThread serving the warm-up job (or the idle job standing in for it) and then one more
job, after which it parks.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from grader.sandbox import child, guard, lineage, stage, zygote

from .test_guard import in_a_fork


def _first_job_then_an_answer(first: Callable[[child.LearnerThread, Any], object]) -> dict[str, Any]:
    """Start a learner thread, give it `first` (the warm-up or the idle job), then a job; what each did."""
    def probe() -> str:
        thread = child.LearnerThread(jobs=2)
        lineage_code = guard.private_copy(lineage)
        ran = first(thread, lineage_code)
        job, _, _ = child._job_tuple("", "answer = 6 * 7", ["answer"], [], b"", lineage_code)
        thread.slot[0] = job
        thread.start.release()
        thread.done.acquire()
        phase, reads = thread.slot[1][0], thread.slot[1][1]
        return json.dumps({"first": ran, "phase": phase, "answer": reads[0][1] if phase == "done" else None})

    return json.loads(in_a_fork(probe))


def _warm_up(job_arrived: Callable[[float], bool]) -> Callable[[child.LearnerThread, Any], object]:
    def first(thread: child.LearnerThread, lineage_code: Any) -> object:
        warm_up, _, reading = child._job_tuple("", stage.PREFAULT, list(stage.PREFAULT_TARGETS),
                                              list(stage.PREFAULT_PROBES), b"", lineage_code)
        stop = [False]
        namespace = reading[2]
        namespace["_stop"] = stop
        ran = thread.warm_up(warm_up, job_arrived, stop)
        return {"ran": ran, "warmed": sorted(name for name in ("x", "w", "text") if name in namespace)}

    return first


def test_with_no_job_in_sight_the_warm_up_runs_to_its_end() -> None:
    result = _first_job_then_an_answer(_warm_up(lambda seconds: False))
    assert result == {"first": {"ran": True, "warmed": ["text", "w", "x"]}, "phase": "done", "answer": 42}, result


def test_a_job_arriving_during_the_warm_up_stops_it_at_its_next_step() -> None:
    result = _first_job_then_an_answer(_warm_up(lambda seconds: True))
    # It got past a step or two, never to its end; the job after it runs all the same.
    assert result["first"]["ran"] is False and "text" not in result["first"]["warmed"], result
    assert result["phase"] == "done" and result["answer"] == 42, result


def test_the_idle_job_stands_in_for_a_skipped_warm_up() -> None:
    def idle(thread: child.LearnerThread, lineage_code: Any) -> object:
        thread.serve(child._job_tuple("", "", [], [], b"", lineage_code, trace=False)[0])
        return thread.slot[1][0]

    result = _first_job_then_an_answer(idle)
    assert result == {"first": "done", "phase": "done", "answer": 42}, result


@pytest.mark.parametrize(("pressure", "contended"), [
    ("some avg10=31.50 avg60=12.00 avg300=3.00 total=123\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", True),
    ("some avg10=1.25 avg60=40.00 avg300=40.00 total=123\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", False),
])
def test_children_skip_the_warm_up_while_the_cpus_are_contended(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pressure: str, contended: bool) -> None:
    """The last 10 s decide, not the minute: a rush that has just begun stops the warm-ups, and one that has
    just ended lets them run again."""
    psi = tmp_path / "cpu"
    psi.write_text(pressure)
    monkeypatch.setattr(zygote, "CPU_PRESSURE", str(psi))
    assert zygote.cpu_contended() is contended


def test_without_pressure_stall_information_the_load_average_decides(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zygote, "CPU_PRESSURE", str(tmp_path / "absent"))
    monkeypatch.setattr(zygote.os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    assert zygote.cpu_contended() is True
    monkeypatch.setattr(zygote.os, "getloadavg", lambda: (0.1, 0.5, 0.5))
    assert zygote.cpu_contended() is False
