"""manage.py grade, sandbox_check, and the worker's isolation policy."""
from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from grader import runner
from grader.sandbox import Sandbox, SandboxFault

CORRECT = "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\ny.backward()\nprint('dy/dx', x.grad)\n"
TWICE = CORRECT + "y = x**2 + 3*x + 1\ny.backward()\n"


def grade(*args: str) -> str:
    out = io.StringIO()
    call_command("grade", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def code_file(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(text: str | bytes) -> str:
        path = tmp_path / "answer.py"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return str(path)
    return write


@pytest.mark.django_db
def test_grade_json_gives_the_verdict_of_a_correct_file(seed_quiz, code_file) -> None:  # type: ignore[no-untyped-def]
    result = json.loads(grade("grad-of-polynomial", code_file(CORRECT), "--json"))
    assert set(result) == {"status", "score", "checks", "stdout", "error", "duration_ms"}
    assert result["status"] == "passed" and result["score"] == 1.0 and result["error"] is None
    assert result["checks"] == [{"name": n, "passed": True, "message": ""}
                                for n in ("x.grad", "x.requires_grad", "y.requires_grad")]
    assert result["stdout"] == "dy/dx tensor(7.)\n"
    assert 0 < result["duration_ms"] < 10_000


@pytest.mark.django_db
def test_grade_report_teaches_on_a_typical_mistake(seed_quiz, code_file) -> None:  # type: ignore[no-untyped-def]
    report = grade("grad-of-polynomial", code_file(TWICE))
    assert "grad-of-polynomial: FAILED" in report and "score 0.67" in report
    assert "x.grad is 14.0, expected 7.0 — 2× the expected gradient" in report


@pytest.mark.django_db
def test_grade_refuses_nul_bytes_without_running_them(seed_quiz, code_file) -> None:  # type: ignore[no-untyped-def]
    result = json.loads(grade("grad-of-polynomial", code_file(b"x = 1\x00\n"), "--json"))
    assert result["status"] == "rejected" and "NUL byte" in result["error"] and result["checks"] == []


@pytest.mark.django_db
@pytest.mark.parametrize(("item", "message"), [("no-such-item", "no item with slug"), ("no-grad-purpose", "is a choice item")])
def test_grade_usage_errors_exit_2(seed_quiz, code_file, item, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match=message) as raised:
        grade(item, code_file(CORRECT))
    assert raised.value.returncode == 2


@pytest.mark.django_db
def test_grade_missing_file_exits_2(seed_quiz) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match="cannot read /nonexistent.py") as raised:
        grade("grad-of-polynomial", "/nonexistent.py")
    assert raised.value.returncode == 2


def test_sandbox_check_reports_every_layer_active_here() -> None:
    out = io.StringIO()
    call_command("sandbox_check", stdout=out, no_color=True)
    text = out.getvalue()
    for layer in ("seccomp", "landlock", "rlimits", "network_namespace", "pid_namespace", "mount_namespace",
                  "unprivileged_uid", "no_new_privs"):
        assert f"[active]   {layer}" in text, f"{layer} not active:\n{text}"
    assert "[inactive]" not in text and "[ALLOWED]" not in text
    assert "[blocked]  open a TCP socket" in text and "[ok]     torch.distributions" in text
    assert "Required for grading (seccomp, landlock, rlimits): all active." in text


def test_a_zygote_missing_a_required_layer_is_refused() -> None:
    box = Sandbox(require=("seccomp", "landlock", "rlimits", "tpm_attestation"))
    with pytest.raises(SandboxFault, match="refusing to grade: isolation layer.s. tpm_attestation not active here"):
        box.start()
    assert box.zygote_pid is None, "the refused zygote was stopped"


@pytest.mark.parametrize("unsafe", [False, True])
def test_the_worker_grades_without_a_layer_only_when_unsafe_is_on_and_says_so_loudly(
        settings, monkeypatch, caplog, unsafe) -> None:  # type: ignore[no-untyped-def]
    settings.GRADER_ALLOW_UNSAFE_SANDBOX = unsafe
    monkeypatch.setattr(runner, "REQUIRED_LAYERS", ("seccomp", "landlock", "rlimits", "tpm_attestation"))
    monkeypatch.setattr(runner, "_sandbox", None)
    try:
        if not unsafe:
            with pytest.raises(SandboxFault, match="tpm_attestation"):
                runner.get_sandbox()
        else:
            with caplog.at_level(logging.CRITICAL, logger="grader.runner"):
                assert runner.get_sandbox().ping()["ok"]
            assert any(r.levelno == logging.CRITICAL and "UNSAFE SANDBOX" in r.getMessage()
                       and "tpm_attestation" in r.getMessage() for r in caplog.records)
    finally:
        if runner._sandbox is not None:
            runner._sandbox.close()
