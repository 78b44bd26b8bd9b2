"""The template: the process every graded child is forked from.

The zygote forks it once, right after warming torch up and before serving any
job, and it never receives job data: only "fork a child with these
descriptors" requests. So a child's memory (frames, gc, raw heap) holds the
warm-up and nothing of any earlier learner's code, output or token. The job
itself reaches the child over the child's own pipe, after the fork.

It also reaps its children (it is their parent) and reports each one's exit
status, CPU time and memory-cgroup events to the zygote, then removes the
child's cgroup. Messages are JSON on a SOCK_SEQPACKET socket, one per packet;
the pipes of a new child ride along with a fork request (SCM_RIGHTS).
"""
from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
from typing import Any

from . import _linux, child, guard, namespaces
from .limits import CgroupUnavailable, MemoryCgroups

PACKET = 1 << 16
CHILD_FDS = 4  # job_r, result_w, out_w, devnull is opened here


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.send(json.dumps(message).encode())


def _cgroup_name(child_id: int) -> str:
    return f"c{child_id}"


class Template:
    def __init__(self, sock: socket.socket, cgroups: MemoryCgroups | None, scratch_root: str | None,
                 inherited: child.Inherited) -> None:
        self.sock = sock
        self.inherited = inherited
        self.cgroups = cgroups
        self.scratch_root = scratch_root
        self.children: dict[int, dict[str, Any]] = {}

    def fork(self, spec: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        job_r, result_w, out_w = fds
        procs = -1
        child_id = spec["id"]
        try:
            if self.cgroups is not None:
                procs = self.cgroups.make_child(_cgroup_name(child_id))
            if self.scratch_root is not None:
                spec["scratch"] = os.path.join(self.scratch_root, f"job-{child_id}")
                os.mkdir(spec["scratch"], 0o700)
                if spec["uid"] is not None:
                    os.chown(spec["scratch"], spec["uid"], spec["gid"])
            pid = os.fork()
        except OSError as exc:
            for fd in (*fds, procs):
                if fd >= 0:
                    os.close(fd)
            if self.cgroups is not None:
                self.cgroups.remove_child(_cgroup_name(child_id))
            return {"forked": None, "id": child_id, "error": f"could not fork a child: {exc}"}
        if pid == 0:  # the child: whatever happens, it leaves through os._exit
            exit_ = os._exit
            try:
                devnull = os.open("/dev/null", os.O_RDONLY)
                # Move the ends out of the way first, so no dup2 clobbers another.
                sources = (devnull, out_w, out_w, job_r, result_w) + ((procs,) if procs >= 0 else ())
                high = [os.dup2(fd, 100 + i) for i, fd in enumerate(sources)]
                for target, source in enumerate(high):
                    os.dup2(source, target)
                _linux.close_range(len(high))
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.set_wakeup_fd(-1)
                child.main(spec, self.inherited)
            finally:
                exit_(70)
        for fd in (*fds, procs):
            if fd >= 0:
                os.close(fd)
        self.children[pid] = {"id": child_id, "scratch": spec.get("scratch")}
        return {"forked": pid, "id": child_id}

    def reap(self) -> None:
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            info = self.children.pop(pid, None)
            if info is None:
                continue
            message: dict[str, Any] = {"exited": pid, "id": info["id"], "status": status,
                                       "cpu": usage.ru_utime + usage.ru_stime, "memory": None}
            if self.cgroups is not None:
                name = _cgroup_name(info["id"])
                try:
                    message["memory"] = self.cgroups.events(name)
                except OSError:
                    pass
                self.cgroups.remove_child(name)
            if info["scratch"]:
                namespaces.remove_tree(info["scratch"])
            _send(self.sock, message)

    def serve(self) -> None:
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        poller.register(wake_r, select.POLLIN)
        while True:
            for fd, _ in poller.poll():
                if fd == wake_r:
                    while True:
                        try:
                            if not os.read(wake_r, 512):
                                break
                        except BlockingIOError:
                            break
                    self.reap()
                    continue
                data, fds, _, _ = socket.recv_fds(self.sock, PACKET, CHILD_FDS)
                if not data:
                    return  # the zygote is gone; pid 1's exit takes every child with it
                request = json.loads(data)
                if request.get("op") == "fork" and len(fds) == 3:
                    _send(self.sock, self.fork(request["spec"], fds))
                else:
                    for fd in fds:
                        os.close(fd)
            self.reap()


def start(sock: socket.socket, cgroups: MemoryCgroups | None, scratch_root: str | None, inherited: child.Inherited,
          close: list[int]) -> int:
    """Fork the template; returns its pid. In the template: never returns. inherited (child.inherit) is made
    by the zygote before its heap goes into huge pages; the template hides the grader's modules by name only,
    so that it writes to as few of those pages as it can."""
    pid = os.fork()
    if pid:
        return pid
    exit_ = os._exit
    try:
        for fd in close:
            os.close(fd)
        guard.scrub_modules(names=inherited.hidden_modules)
        Template(sock, cgroups, scratch_root, inherited).serve()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the zygote is gone: so is everything it served
    except BaseException as exc:  # noqa: BLE001
        sys.stderr.write(f"[grader-template] failed: {exc!r}\n")
    finally:
        exit_(0)
    return 0


__all__ = ["start", "CgroupUnavailable"]
