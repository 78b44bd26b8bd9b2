"""The web worker's thread pool (config/gunicorn_worker.py): futures as ThreadPoolExecutor gives them, and work
handed to the most recently idle thread, so the threads a burst added stay idle afterwards."""
from __future__ import annotations

import threading
import time

import pytest

from config.gunicorn_worker import LifoThreadPool


def test_results_and_exceptions_come_back_through_futures() -> None:
    pool = LifoThreadPool(max_workers=2)
    try:
        assert pool.submit(lambda a, b=0: a + b, 2, b=3).result(5) == 5
        with pytest.raises(ZeroDivisionError):
            pool.submit(lambda: 1 / 0).result(5)
    finally:
        pool.shutdown()


def test_after_a_burst_ordinary_work_stays_on_one_thread() -> None:
    pool = LifoThreadPool(max_workers=20)
    release = threading.Event()
    try:
        burst = [pool.submit(release.wait, 5) for _ in range(12)]
        time.sleep(0.2)
        assert pool.thread_count() == 12
        release.set()
        for future in burst:
            future.result(5)
        time.sleep(0.1)
        names = {pool.submit(lambda: threading.current_thread().name).result(5) for _ in range(50)}
        # A pool that takes the longest-idle thread (ThreadPoolExecutor) would use all 12 in turn.
        assert len(names) == 1, names
        assert pool.thread_count() == 12, "no thread was added for sequential work"
    finally:
        pool.shutdown()


def test_work_beyond_max_workers_waits_its_turn_in_order() -> None:
    pool = LifoThreadPool(max_workers=2)
    release = threading.Event()
    done: list[int] = []
    try:
        blockers = [pool.submit(release.wait, 5) for _ in range(2)]
        queued = [pool.submit(done.append, n) for n in range(5)]
        time.sleep(0.2)
        assert done == [] and pool.thread_count() == 2
        release.set()
        for future in [*blockers, *queued]:
            future.result(5)
        assert sorted(done) == [0, 1, 2, 3, 4]
    finally:
        pool.shutdown()


def test_shutdown_stops_idle_threads_and_refuses_new_work() -> None:
    pool = LifoThreadPool(max_workers=4)
    futures = [pool.submit(time.sleep, 0.05) for _ in range(4)]
    for future in futures:
        future.result(5)
    pool.shutdown(wait=True)
    assert not any(thread.is_alive() for thread in pool._threads)
    with pytest.raises(RuntimeError):
        pool.submit(print)
