"""The process-wide sandbox: one zygote per process that grades (each Celery
worker process, or a management command), started on first use or when the
worker process starts, and checked against the isolation policy."""
from __future__ import annotations

import atexit
import logging
import threading

from django.conf import settings

from .sandbox import REQUIRED_LAYERS, Sandbox, missing_layers

logger = logging.getLogger(__name__)

_sandbox: Sandbox | None = None
_lock = threading.Lock()


def get_sandbox() -> Sandbox:
    """The started sandbox of this process. Raises SandboxFault when it cannot start
    or lacks a required isolation layer (unless GRADER_ALLOW_UNSAFE_SANDBOX)."""
    global _sandbox
    with _lock:
        if _sandbox is None:
            unsafe = settings.GRADER_ALLOW_UNSAFE_SANDBOX
            sandbox = Sandbox(pool_size=settings.GRADER_POOL_SIZE, require=() if unsafe else REQUIRED_LAYERS)
            sandbox.start()
            if unsafe:
                missing = missing_layers(sandbox.hello["layers"], REQUIRED_LAYERS)
                if missing:
                    logger.critical(
                        "UNSAFE SANDBOX: grading learner code WITHOUT %s because GRADER_ALLOW_UNSAFE_SANDBOX "
                        "is on. Never run this way with untrusted learners.", ", ".join(missing))
            _sandbox = sandbox
            atexit.register(sandbox.close)
        return _sandbox


def stop_sandbox() -> None:
    global _sandbox
    with _lock:
        if _sandbox is not None:
            _sandbox.close()
            _sandbox = None
