"""`make run`'s supervision (config/devstack.py): a worker or beat that exits is started again, with back-off."""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence

import pytest

from config.devstack import Stack, start_workers


def test_a_process_that_keeps_exiting_is_restarted_with_growing_backoff(capsys: pytest.CaptureFixture[str]) -> None:
    stack = Stack()
    stack.start("celery worker", [sys.executable, "-c", "import sys; sys.exit(3)"], quiet=True, restart=True)
    pids = set()
    try:
        end = time.monotonic() + 5
        while time.monotonic() < end:
            assert stack.supervise_once() is None, "a restartable process never stops the stack"
            pids.add(stack.services[0].process.pid)
            time.sleep(0.05)
    finally:
        stack.stop()
    out = capsys.readouterr().out
    assert len(pids) >= 3, f"started {len(pids)} time(s) in 5 s"
    assert "celery worker exited with status 3" in out
    assert "restarting it in 1 s" in out and "restarting it in 2 s" in out, out  # 1, 2, 4 ... 30 s


def test_a_process_that_ran_a_while_is_restarted_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    stack = Stack()
    stack.start("celery beat", [sys.executable, "-c", "pass"], quiet=True, restart=True)
    stack.services[0].started -= Stack.STABLE_SECONDS  # as if it had run for a minute before dying
    stack.services[0].failures = 5
    try:
        stack.services[0].process.wait()
        stack.supervise_once()
    finally:
        stack.stop()
    assert "restarting it in 1 s" in capsys.readouterr().out, "the back-off starts over after a stable run"


def test_a_process_not_marked_for_restart_still_stops_the_stack() -> None:
    stack = Stack()
    stack.start("gunicorn", [sys.executable, "-c", "import sys; sys.exit(4)"], quiet=True)
    try:
        assert stack.wait_any() == ("gunicorn", 4)
    finally:
        stack.stop()


class Recorded(Stack):
    """Records what would be started; starts a harmless sleeper in its place."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[tuple[str, list[str], bool]] = []

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None, quiet: bool = False,
              restart: bool = False) -> subprocess.Popen[bytes]:
        self.started.append((name, list(argv), restart))
        return super().start(name, [sys.executable, "-c", "import time; time.sleep(30)"], env, True, restart)


@pytest.mark.parametrize("beat", [True, False])
def test_make_run_starts_beat_on_its_own_and_both_are_supervised(beat: bool) -> None:
    stack = Recorded()
    try:
        start_workers(stack, 2, beat=beat)
    finally:
        stack.stop()
    names = [name for name, _, _ in stack.started]
    assert names == (["celery worker", "celery beat"] if beat else ["celery worker"])
    worker = stack.started[0][1]
    assert "worker" in worker and not {"-B", "--beat"} & set(worker), worker
    assert all(restart for _, _, restart in stack.started)
    if beat:
        assert stack.started[1][1][2:6] == ["celery", "-A", "config", "beat"], stack.started[1][1]
