"""The soak's own arithmetic: memory read from /proc, what counts as growth, the per-minute line. (The soak
itself runs for minutes against the whole stack: `make soak`.)"""
from __future__ import annotations

import os

from grader.bench_soak import GROWTH_MIB, Minute, grown, memory, minute_line, pss_kib


def test_pss_of_a_live_process_is_read_and_of_a_gone_one_is_zero() -> None:
    assert pss_kib(os.getpid()) > 1024  # this interpreter holds more than a MiB
    assert pss_kib(2 ** 22 + 1) == 0  # above pid_max's default: no such process


def test_memory_sums_each_components_tree_without_the_zygotes() -> None:
    mine = os.getpid()
    sizes = memory(gunicorn=mine, celery=mine, zygotes={mine})
    assert sizes == {"gunicorn": 0.0, "celery": 0.0, "sandbox": sizes["sandbox"]}  # pruned there, counted here
    assert sizes["sandbox"] > 1.0


def test_growth_must_pass_both_limits() -> None:
    first = {"gunicorn": 100.0, "celery": 400.0, "sandbox": 800.0}
    assert grown(first, dict(first)) == []
    assert grown(first, {**first, "gunicorn": 100.0 + GROWTH_MIB + 1}) == ["gunicorn: 100 -> 126 MiB"]
    # 30 MiB on 800 is under 10 %: the zygotes' size moves that much with the pool refilling
    assert grown(first, {**first, "sandbox": 830.0}) == []
    assert grown(first, {**first, "celery": 405.0, "sandbox": 900.0}) == ["sandbox: 800 -> 900 MiB"]


def test_a_minute_says_its_counts_latency_and_sizes() -> None:
    line = minute_line(Minute(3, 600, 0, 41.2, 97.8, {"gunicorn": 120.4, "celery": 310.0, "sandbox": 780.6}))
    assert line == ("minute  3: 600 graded, 0 lost/refused/wrong, p50 41 ms, p99 98 ms; gunicorn 120 MiB, "
                    "celery 310 MiB, sandbox 781 MiB")
