"""manage.py grade, sandbox_check, and the worker's isolation policy."""
from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from pytest_django.fixtures import Settings

from grader import runner
from grader.management.commands import grade as grade_command
from grader.sandbox import LAYERS, REQUIRED_LAYERS, CheckResult, Grade, Sandbox, SandboxFault
from quiz.models import Item

CORRECT = "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\ny.backward()\nprint('dy/dx', x.grad)\n"
TWICE = CORRECT + "y = x**2 + 3*x + 1\ny.backward()\n"
NO_BACKWARD = "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\n"
# Erase the line, back to its start, green: a terminal that obeyed it would show a fake verdict. Written
# here as the code's source text, which is also how the report must show it.
FAKE_PASSED = r"\x1b[2K\r\x1b[32mgrad-of-polynomial: PASSED\x1b[0m"
RAW_CONTROLS = "\x1b\r\x07\x9b\x7f"


def grade(*args: str, **options: Any) -> str:
    out = io.StringIO()
    call_command("grade", *args, stdout=out, **options)
    return out.getvalue()


@pytest.fixture
def code_file(tmp_path: Path) -> Callable[[str | bytes], str]:
    def write(text: str | bytes) -> str:
        path = tmp_path / "answer.py"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return str(path)
    return write


@pytest.mark.django_db
def test_grade_json_gives_the_verdict_of_a_correct_file(
        seed_quiz: None, code_file: Callable[[str | bytes], str]) -> None:
    result = json.loads(grade("grad-of-polynomial", code_file(CORRECT), "--json"))
    assert set(result) == {"status", "score", "checks", "stdout", "error", "duration_ms"}
    assert result["status"] == "passed" and result["score"] == 1.0 and result["error"] is None
    assert result["checks"] == [{"name": n, "passed": True, "message": ""}
                                for n in ("x.grad", "x.requires_grad", "y.requires_grad", "x.grad by autograd",
                                          "y's graph")]
    assert result["stdout"] == "dy/dx tensor(7.)\n"
    assert 0 < result["duration_ms"] < 10_000


@pytest.mark.django_db
def test_grade_report_teaches_on_a_typical_mistake(seed_quiz: None, code_file: Callable[[str | bytes], str]) -> None:
    report = grade("grad-of-polynomial", code_file(TWICE))
    assert "grad-of-polynomial: FAILED" in report and "score 0.80" in report
    assert "x.grad is 14.0, expected 7.0 — 2× the expected gradient" in report


@pytest.mark.django_db
def test_grade_report_shows_printed_escapes_instead_of_obeying_them(
        seed_quiz: None, code_file: Callable[[str | bytes], str]) -> None:
    code = NO_BACKWARD + f'print("{FAKE_PASSED}", end="\\x07\\x9b\\x7f\\n")\n'
    report = grade("grad-of-polynomial", code_file(code), no_color=True)
    assert not set(RAW_CONTROLS) & set(report), repr(report)
    lines = report.splitlines()  # split at \n only: the report holds no other line break
    assert lines[0].startswith("grad-of-polynomial: FAILED")
    assert lines[lines.index("Output:") + 1:] == ["  " + FAKE_PASSED + r"\x07\x9b\x7f"]


@pytest.mark.django_db
def test_grade_report_shows_escapes_in_an_error_instead_of_obeying_them(
        seed_quiz: None, code_file: Callable[[str | bytes], str]) -> None:
    report = grade("grad-of-polynomial", code_file(NO_BACKWARD + f'raise ValueError("{FAKE_PASSED}")\n'),
                   no_color=True)
    assert not set(RAW_CONTROLS) & set(report), repr(report)
    assert report.startswith("grad-of-polynomial: ERROR")
    assert report.splitlines()[-1] == "  ValueError: " + FAKE_PASSED


@pytest.mark.django_db
def test_grade_report_shows_escapes_in_check_names_and_messages(
        seed_quiz: None, code_file: Callable[[str | bytes], str], monkeypatch: pytest.MonkeyPatch) -> None:
    verdict = Grade(status="failed", checks=[CheckResult("x.grad\x1b[8m", False, "x.grad is a W (\x1b[2K\rPASSED)")])
    monkeypatch.setattr(grade_command, "code_grade", lambda **_: verdict)
    report = grade("grad-of-polynomial", code_file(CORRECT), no_color=True)
    assert report.splitlines()[1:] == [r"  ✗ x.grad\x1b[8m — x.grad is a W (\x1b[2K\rPASSED)"]


@pytest.mark.django_db
@pytest.mark.parametrize(("item", "code", "message"), [
    ("autograd-grad", "import torch\nx = torch.tensor(0.5, requires_grad=True)\ng = 1.7e308\n",
     "g is 1.7e+308, expected 0.918217. "),
    ("zero-grad", "import torch\nx = torch.tensor(2.0, requires_grad=True)\n(x**2 + 3*x + 1).backward()\n"
     "x.grad.zero_()\ng = 1e-320\n", "g is 9.99989e-321, expected 7.0. "),
])
def test_grade_judges_learner_values_that_overflowed_the_comparer(
        seed_quiz: None, code_file: Callable[[str | bytes], str], item: str, code: str, message: str) -> None:
    result = json.loads(grade(item, code_file(code), "--json"))
    assert result["status"] == "failed"
    assert result["checks"][0]["name"] == "g" and result["checks"][0]["message"].startswith(message)
    assert result["checks"][1]["passed"]
    typed_in = next(c for c in result["checks"] if c["name"] == "g by autograd")  # and it was typed in
    assert not typed_in["passed"] and "not computed by autograd" in typed_in["message"]


@pytest.mark.django_db
def test_grade_refuses_nul_bytes_without_running_them(seed_quiz: None, code_file: Callable[[str | bytes], str]) -> None:
    result = json.loads(grade("grad-of-polynomial", code_file(b"x = 1\x00\n"), "--json"))
    assert result["status"] == "rejected" and "NUL byte" in result["error"] and result["checks"] == []


@pytest.mark.django_db
@pytest.mark.parametrize(("item", "message"), [("no-such-item", "no item with slug"), ("no-grad-purpose", "is a choice item")])
def test_grade_usage_errors_exit_2(
        seed_quiz: None, code_file: Callable[[str | bytes], str], item: str, message: str) -> None:
    with pytest.raises(CommandError, match=message) as raised:
        grade(item, code_file(CORRECT))
    assert raised.value.returncode == 2


@pytest.mark.django_db
def test_grade_missing_file_exits_2(seed_quiz: None) -> None:
    with pytest.raises(CommandError, match="cannot read /nonexistent.py") as raised:
        grade("grad-of-polynomial", "/nonexistent.py")
    assert raised.value.returncode == 2


def test_sandbox_check_reports_every_layer_active_here() -> None:
    out = io.StringIO()
    call_command("sandbox_check", stdout=out, no_color=True)
    text = out.getvalue()
    for layer in LAYERS:  # every layer, the memory cgroup and the in-process guard included
        assert f"[active]   {layer}" in text, f"{layer} not active:\n{text}"
    assert "[inactive]" not in text and "[ALLOWED]" not in text
    for action in ("open a TCP socket", "see /etc/shadow (stat)", "see the mount table (listmount)",
                   "memory outside the budget (memfd)", "memory outside the budget (SysV shm)", "raise a limit",
                   "start a thread", "walk the garbage collector", "raw memory (ctypes)"):
        assert f"[blocked]  {action}" in text, f"{action} not blocked:\n{text}"
    assert "[ok]     torch.distributions" in text
    assert f"Required for grading ({', '.join(REQUIRED_LAYERS)}): all active." in text


def test_a_zygote_missing_a_required_layer_is_refused() -> None:
    box = Sandbox(require=("seccomp", "landlock", "rlimits", "tpm_attestation"))
    with pytest.raises(SandboxFault, match="refusing to grade: isolation layer.s. tpm_attestation not active here"):
        box.start()
    assert box.zygote_pid is None, "the refused zygote was stopped"


@pytest.mark.parametrize("unsafe", [False, True])
def test_the_worker_grades_without_a_layer_only_when_unsafe_is_on_and_says_so_loudly(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, unsafe: bool) -> None:
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


@pytest.mark.django_db
def test_grade_runs_the_hidden_draw_of_an_item_with_given_inputs(
        seed_quiz: None, code_file: Callable[[str | bytes], str]) -> None:
    typed_in = "import torch\na.requires_grad_()\nb = torch.tensor([3.0, 6.0], requires_grad=True)\n"
    result = json.loads(grade("enable-tracking", code_file(typed_in), "--json"))
    b = next(c for c in result["checks"] if c["name"] == "b")
    assert not b["passed"] and "not when the given tensors hold other values" in b["message"]
    honest = "a.requires_grad_()\nb = d.detach().requires_grad_(True)\n"
    assert json.loads(grade("enable-tracking", code_file(honest), "--json"))["status"] == "passed"
