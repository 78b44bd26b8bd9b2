"""gunicorn settings for every way the site is served: `make run` (config/devstack.py), docker-compose's
web service and the tests that start a real server (tests/web/). Options given on the command line win.

    gunicorn -c config/gunicorn.conf.py config.wsgi:application --bind 0.0.0.0:8000

Why threads: a client waiting for a verdict (`GET /api/v1/submissions/ID/?wait=25`) holds its request for up
to 30 s. With sync workers three such clients held an ordinary page for 24 s (issue 14). Here each process
serves THREADS requests at once (gthread); a waiting request sleeps on a socket without the GIL and without a
database connection (below), so it costs a thread and little else.
grader.notify lets at most GRADER_WAITS_PER_PROCESS (64) requests per process wait and answers any more at
once, so THREADS - 64 threads per process stay free for ordinary requests however many clients long-poll.
That cap holds per process because the kernel does not spread connections evenly: measured, 50 long-polls
opened at once all landed in one of two idle processes. tests/web/test_long_polls.py measures the whole:
50 concurrent long-polls, an ordinary request's latency.

On PostgreSQL each process keeps a pool of DATABASE_POOL_SIZE connections (12, set below; Django's psycopg pool,
config/settings/base.py) that its threads borrow per request, and a long-poll hands its connection back while it
waits: the web tier holds at most 2 x 12 connections however many clients wait, and no request opens one. (Before,
each thread kept its own connection and long-polls past 16 per process closed and reopened theirs at each look; a
deadline rush spent most of the web tier's CPU on that.) The worker class hands work to the most recently idle
thread, so ordinary traffic stays on the few threads it needs. On SQLite (make run's default) threads keep their own.
"""
from __future__ import annotations

import gc
import os
from typing import Any

# Processes: one per core is enough for this app (requests spend their time in the database or waiting);
# WEB_CONCURRENCY is the variable gunicorn and most platforms use for it.
# Read by the settings when the app loads (preload_app, below): pooled PostgreSQL connections per web process.
os.environ.setdefault("DATABASE_POOL_SIZE", "12")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gthread, with a thread pool that reuses the most recently idle thread first, so a burst's extra threads do
# not each end up holding a database connection (config/gunicorn_worker.py).
worker_class = "config.gunicorn_worker.LifoThreadWorker"
THREADS = 80
threads = THREADS
# Import the app (Django, and torch through the grader) once in the master, 4 s of CPU, then fork: a worker
# (re)starts at once and shares those pages, and no request waits behind a sibling's start-up. A code change
# needs a full restart (HUP reloads settings, not preloaded code).
preload_app = True
# gthread's worker heartbeat comes from its main loop, not from requests: a 30 s long-poll is not a hang.
timeout = 60
# Let waiting requests (at most 30 s) finish on a restart or deploy.
graceful_timeout = 35
keepalive = 5
accesslog = "-"


def when_ready(server: Any) -> None:
    """In the master, with the app loaded (preload_app) and before any worker forks: put every object alive now
    in the collector's permanent generation. Django, DRF and the project's modules are some 130,000 objects that
    live as long as the process; unfrozen, every full collection in every worker walks them all again, while all
    its threads wait on the GIL, and touching them un-shares the memory the workers share with the master."""
    gc.freeze()
