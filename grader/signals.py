"""Each Celery worker process owns a zygote, started as the process starts so the
first submission does not pay for importing torch."""
from __future__ import annotations

import gc
import logging
from typing import Any

from celery.signals import worker_process_init, worker_process_shutdown

from .runner import get_sandbox, stop_sandbox
from .sandbox import SandboxFault

logger = logging.getLogger(__name__)


@worker_process_init.connect
def start_zygote(**kwargs: Any) -> None:
    try:
        get_sandbox()
    except SandboxFault as exc:  # the task retries, and reports internal_error if it stays broken
        logger.error("could not start the sandbox in this worker process: %s", exc)
    # What the process holds now (Django, Celery, the project's modules) lives as long as it does: out of the
    # collector's way, so a full collection between two gradings walks only what grading made (config/gunicorn.conf.py
    # does the same for the web processes).
    gc.freeze()


@worker_process_shutdown.connect
def stop_zygote(**kwargs: Any) -> None:
    stop_sandbox()
