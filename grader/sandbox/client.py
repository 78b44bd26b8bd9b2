"""The trusted side: starts and owns a zygote, hands it jobs, restarts it when
it dies, and turns its replies into validated RunOutcomes.

The zygote is started with `python -E -s -B` and an environment holding only
locale and thread-count variables: no secret, database or broker URL can reach
it, so none can reach the children it forks.
"""
from __future__ import annotations

import base64
import logging
import secrets
import select
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from . import limits, protocol, schema
from .jobs import Job, RunOutcome
from .policy import REQUIRED_LAYERS, missing

logger = logging.getLogger(__name__)

PROJECT_ROOT = str(Path(__file__).resolve().parents[2])
BOOTSTRAP = (
    "import sys; sys.path.insert(0, {root!r}); "
    "from grader.sandbox import zygote; zygote.main(sys.argv)"
)
ZYGOTE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    # libgomp reads this at load time only: torch.set_num_threads(2) in learner code would
    # otherwise make OpenMP try to start a thread, which seccomp refuses, and exit the child.
    "OMP_THREAD_LIMIT": "1",
    "MALLOC_ARENA_MAX": "2",
}
REPLY_LIMIT = 8 << 20
REPLY_GRACE_SECONDS = 10.0


class SandboxFault(Exception):
    """The sandbox itself failed (not the learner's code): retry or report internal_error."""


class Sandbox:
    """One zygote, used by one thread at a time."""

    def __init__(self, *, pool_size: int = 2, start_timeout: float = 120.0, python: str | None = None,
                 require: tuple[str, ...] = REQUIRED_LAYERS) -> None:
        """require: isolation layers without which the zygote is refused (SandboxFault)."""
        self.pool_size = pool_size
        self.require = require
        self.start_timeout = start_timeout
        self.python = python or sys.executable
        self.hello: dict[str, Any] = {}
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> dict[str, Any]:
        with self._lock:
            self._start()
            return self.hello

    def _start(self) -> None:
        self._stop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._process = subprocess.Popen(
                [self.python, "-E", "-s", "-B", "-c", BOOTSTRAP.format(root=PROJECT_ROOT),
                 str(theirs.fileno()), str(self.pool_size)],
                pass_fds=[theirs.fileno()], env=dict(ZYGOTE_ENV), cwd="/",
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True,
            )
        finally:
            theirs.close()
        self._sock = ours
        try:
            hello = self._receive(self.start_timeout)
        except SandboxFault:
            self._stop()
            raise
        if not hello.get("ready"):
            self._stop()
            raise SandboxFault(f"the zygote did not start: {hello}")
        self.hello = hello
        missing = self.missing_layers()
        if missing:
            self._stop()
            raise SandboxFault(f"refusing to grade: isolation layer(s) {', '.join(missing)} not active here")
        logger.info("sandbox zygote %s ready (torch %s)", hello.get("pid"), hello.get("torch"))

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        if self._sock is not None:
            try:
                protocol.write_frame(self._sock.fileno(), {"op": "stop"})
            except OSError:
                pass
            self._sock.close()
            self._sock = None
        if self._process is not None:
            try:
                self._process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        cgroup = self.hello.get("cgroup")
        if isinstance(cgroup, str):
            # Every process in it died with the zygote's pid namespace: only empty cgroups are left.
            limits.remove_group(cgroup)

    @property
    def zygote_pid(self) -> int | None:
        return self._process.pid if self._process else None

    def missing_layers(self) -> list[str]:
        """Required isolation layers that are not active in this zygote's children."""
        return missing(self.hello.get("layers", {}), self.require)

    # -- jobs -----------------------------------------------------------------
    def _receive(self, timeout: float) -> dict[str, Any]:
        assert self._sock is not None
        ready, _, _ = select.select([self._sock], [], [], timeout)
        if not ready:
            raise SandboxFault(f"the zygote did not answer within {timeout:.0f} s")
        try:
            reply = protocol.read_frame(self._sock.fileno(), REPLY_LIMIT)
        except (protocol.FrameError, OSError) as exc:
            raise SandboxFault(f"the zygote stopped answering: {exc}") from None
        if not isinstance(reply, dict):
            raise SandboxFault("the zygote sent a malformed reply")
        return reply

    def _request(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request; on any fault restart the zygote and raise SandboxFault."""
        with self._lock:
            try:
                if self._sock is None or self._process is None or self._process.poll() is not None:
                    if self._process is not None:
                        logger.warning("sandbox zygote died (exit %s); restarting", self._process.poll())
                        self.restarts += 1
                    self._start()
                assert self._sock is not None
                protocol.write_frame(self._sock.fileno(), request)
                reply = self._receive(timeout)
            except (OSError, SandboxFault) as exc:
                logger.error("sandbox fault: %s; restarting the zygote", exc)
                self.restarts += 1
                self._stop()
                raise SandboxFault(str(exc)) from None
        if not reply.get("ok"):
            raise SandboxFault(str(reply.get("error", "the zygote refused the request")))
        return reply

    def run(self, job: Job) -> RunOutcome:
        # A fresh token per job: the child's own code copies it into the result frame,
        # so a frame that learner code wrote to the result pipe before leaving through
        # os._exit (no real frame follows to give it away) is refused, not judged.
        token = secrets.token_hex(16)
        request = {
            "op": "run", "setup": job.setup, "code": job.code, "targets": list(job.targets), "probes": job.probe_list(),
            "limits": job.limits.as_dict(), "token": token,
        }
        if not job.trace:
            request["trace"] = False
        reply = self._request(request, job.limits.wall + REPLY_GRACE_SECONDS)
        return _outcome(reply, len(job.targets), token)

    def probe(self) -> dict[str, Any]:
        """Harden a fresh child and let it try what hostile code would try."""
        reply = self._request({"op": "probe"}, 30)
        frame = _decode_frame(reply.get("frame"))
        return {"layers": reply.get("layers", {}), "probe": frame}

    def ping(self) -> dict[str, Any]:
        return self._request({"op": "ping"}, 10)

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decode_frame(encoded: Any) -> Any:
    if not isinstance(encoded, str):
        raise protocol.FrameError("no result frame")
    buffer = protocol.FrameBuffer(1 << 30)
    buffer.feed(base64.b64decode(encoded, validate=True))
    return protocol.decode(buffer.payload())


def _outcome(reply: dict[str, Any], n_targets: int, token: str) -> RunOutcome:
    frame = frame_error = None
    if reply.get("frame") is not None:
        try:
            decoded = _decode_frame(reply["frame"])
            if type(decoded) is not dict or decoded.pop("token", None) != token:
                raise protocol.FrameError("the result frame does not carry this job's token")
            frame = schema.validate_frame(decoded, n_targets)
        except (protocol.FrameError, ValueError) as exc:
            frame_error = str(exc)
    killed_for = reply.get("killed_for")
    if killed_for not in (None, "wall", "output", "frame"):
        raise SandboxFault(f"unknown kill reason {killed_for!r}")
    return RunOutcome(
        frame=frame,
        frame_error=frame_error,
        killed_for=killed_for,
        started=reply.get("started") is True,
        memory=reply.get("memory") if isinstance(reply.get("memory"), dict) else None,
        exit_code=reply.get("exit_code"),
        exit_signal=reply.get("exit_signal"),
        cpu_seconds=reply.get("cpu_seconds"),
        output=str(reply.get("output", "")),
        output_bytes=int(reply.get("output_bytes", 0)),
        wall_ms=float(reply.get("wall_ms", 0.0)),
        layers=reply.get("layers", {}),
    )
