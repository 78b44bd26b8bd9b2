"""Which isolation layers a graded child must have: decided here, once.

Used by the zygote (a child missing a layer the probe child had refuses to
run), the client (a zygote whose children lack a required layer is refused),
the Celery worker (grader.runner) and `manage.py sandbox_check`.
"""
from __future__ import annotations

from typing import Any

# Every layer a child reports, in the order sandbox_check prints them, with what it is for.
LAYERS: dict[str, str] = {
    "session": "its own session and process group",
    "memory_cgroup": "a memory cgroup counting everything the child holds",
    "network_namespace": "no network at all",
    "ipc_namespace": "no SysV IPC or hostname shared with anyone",
    "pid_namespace": "sees no other process",
    "mount_namespace": "a minimal root: nothing of the host exists",
    "rlimits": "CPU, address space, file size, descriptors and processes capped",
    "no_new_privs": "can never gain privileges",
    "landlock": "reads only the interpreter, writes only its scratch folder",
    "unprivileged_uid": "a random unprivileged uid",
    "capabilities": "no capabilities",
    "environment": "an empty environment",
    "seccomp": "an allow-list of system calls",
    "in_process_guard": "the grader's own reading out of the learner's reach",
}
# Without these the worker refuses to grade (unless GRADER_ALLOW_UNSAFE_SANDBOX is on).
# The memory cgroup is used where the machine offers one: without it RLIMIT_AS still caps
# memory, and seccomp refuses the ways around it (memfd, SysV shared memory).
REQUIRED_LAYERS: tuple[str, ...] = (
    "seccomp", "landlock", "rlimits", "in_process_guard", "mount_namespace", "pid_namespace",
    "network_namespace", "unprivileged_uid",
)


def missing(layers: dict[str, Any], required: tuple[str, ...] = REQUIRED_LAYERS) -> list[str]:
    """Required layers that are not active in a child's report."""
    return [name for name in required if not layers.get(name, {}).get("active")]


def child_requirements(probe_layers: dict[str, Any]) -> list[str]:
    """What every later child must have: each layer the zygote's probe child got."""
    return [name for name, layer in probe_layers.items() if layer.get("active")]
