"""gunicorn's threaded worker with a thread pool that reuses the most recently idle thread first.

Why: each thread keeps its own database connection between requests (CONN_MAX_AGE). The standard
ThreadPoolExecutor hands work to whichever idle thread waited longest, so once a burst (50 clients
long-polling) has grown the pool to 60 threads, ordinary traffic afterwards takes turns through all 60 and
every one of them opens and keeps a connection: measured, 300 sequential requests after such a burst left one
process holding 51 PostgreSQL connections, two processes more than PostgreSQL's default 100. Handing work to
the thread that finished last keeps ordinary traffic on the few threads it needs and their connections warm,
and the burst's extra threads idle, holding no new connections.

Used through config/gunicorn.conf.py (worker_class). Everything else is gunicorn's gthread worker.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

WorkItem = tuple[Future, Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class _Idle:
    """An idle thread's mailbox: the next work item, or None to stop."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.item: WorkItem | None = None


class LifoThreadPool(Executor):
    """Up to max_workers threads, started on demand; new work goes to the most recently idle thread, or waits
    in order when all are busy. Threads are daemons: gunicorn waits for its in-flight requests itself."""

    def __init__(self, max_workers: int) -> None:
        self.max_workers = max_workers
        self._lock = threading.Lock()
        self._idle: list[_Idle] = []  # a stack: the last to go idle is the first to work again
        self._backlog: deque[WorkItem] = deque()
        self._threads: list[threading.Thread] = []
        self._stopping = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        item: WorkItem = (future, fn, args, kwargs)
        with self._lock:
            if self._stopping:
                raise RuntimeError("cannot schedule new work after shutdown")
            if self._idle:
                idle = self._idle.pop()
                idle.item = item
                idle.event.set()
            elif len(self._threads) < self.max_workers:
                thread = threading.Thread(target=self._work, args=(item,), daemon=True,
                                          name=f"lifo-pool-{len(self._threads)}")
                self._threads.append(thread)
                thread.start()
            else:
                self._backlog.append(item)
        return future

    def _work(self, item: WorkItem | None) -> None:
        mailbox = _Idle()
        while item is not None:
            future, fn, args, kwargs = item
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:  # handed to the future, as ThreadPoolExecutor does
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            del future, fn, args, kwargs
            with self._lock:
                if self._backlog:
                    item = self._backlog.popleft()
                    continue
                if self._stopping:
                    return
                mailbox.event.clear()
                mailbox.item = None
                self._idle.append(mailbox)
            mailbox.event.wait()
            item = mailbox.item

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._stopping = True
            idle, self._idle = self._idle, []
            if cancel_futures:
                while self._backlog:
                    self._backlog.popleft()[0].cancel()
        for mailbox in idle:
            mailbox.item = None
            mailbox.event.set()
        if wait:
            for thread in list(self._threads):
                if thread is not threading.current_thread():
                    thread.join()

    def thread_count(self) -> int:
        return len(self._threads)


class LifoThreadWorker(ThreadWorker):
    """gunicorn's gthread worker on a LifoThreadPool."""

    def get_thread_pool(self) -> LifoThreadPool:
        return LifoThreadPool(max_workers=self.cfg.threads)
