"""A pool child's warm-up: it runs while the child waits for a job, and never keeps a job waiting.

Each case runs in a forked process (the learner thread's locks and the lineage recorder are per process), as
the child does: a LearnerThread serving the warm-up job and then one more job, after which it parks.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from grader.sandbox import child, guard, lineage, stage

from .test_guard import in_a_fork


def _warm_up_then_a_job(job_arrived: Callable[[float], bool]) -> dict[str, Any]:
    def probe() -> str:
        thread = child.LearnerThread(jobs=2)
        lineage_code = guard.private_copy(lineage)
        warm_up, _, reading = child._job_tuple("", stage.PREFAULT, list(stage.PREFAULT_TARGETS),
                                              list(stage.PREFAULT_PROBES), b"", lineage_code)
        stop = [False]
        namespace = reading[2]
        namespace["_stop"] = stop
        ran = thread.warm_up(warm_up, job_arrived, stop)
        warmed = sorted(name for name in ("x", "w", "text") if name in namespace)
        job, _, _ = child._job_tuple("", "answer = 6 * 7", ["answer"], [], b"", lineage_code)
        thread.slot[0] = job
        thread.start.release()
        thread.done.acquire()
        phase, reads = thread.slot[1][0], thread.slot[1][1]
        answer = reads[0][1] if phase == "done" else None
        return json.dumps({"ran": ran, "warmed": warmed, "phase": phase, "answer": answer})

    return json.loads(in_a_fork(probe))


def test_with_no_job_in_sight_the_warm_up_runs_to_its_end() -> None:
    result = _warm_up_then_a_job(lambda seconds: False)
    assert result == {"ran": True, "warmed": ["text", "w", "x"], "phase": "done", "answer": 42}, result


def test_a_job_waiting_when_the_child_is_ready_skips_the_warm_up() -> None:
    result = _warm_up_then_a_job(lambda seconds: True)
    assert result == {"ran": False, "warmed": [], "phase": "done", "answer": 42}, result


def test_a_job_arriving_during_the_warm_up_stops_it_at_its_next_step() -> None:
    looks: list[float] = []

    def arrives_on_the_first_poll(seconds: float) -> bool:
        looks.append(seconds)
        return len(looks) > 1  # not during the grace, on the first look while the warm-up runs

    result = _warm_up_then_a_job(arrives_on_the_first_poll)
    # It got past its first step (x) or not, but never to its end; the job after it runs all the same.
    assert result["ran"] is False and "text" not in result["warmed"], result
    assert result["phase"] == "done" and result["answer"] == 42, result
