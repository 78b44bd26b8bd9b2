"""End to end: a notebook downloaded from the live server, answered and run by nbclient in a real ipykernel
(this virtualenv's Python, with the autograd_quiz client installed by `make install`), graded through the
real API, Redis and a real Celery worker; the verdicts are read from the cells' outputs.

The kernel gets nothing but the notebook and $AUTOGRAD_QUIZ_TOKEN (a front end driven by nbclient has no
input box for the password prompt), with a config folder of its own and no Django settings.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import nbformat
import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from nbclient import NotebookClient
from pytest_django.live_server_helper import LiveServer
from rest_framework.authtoken.models import Token

from grader.apis import SubmissionRateThrottle
from grader.models import Submission
from quiz.models import Choice

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

KERNEL = "autograd-quiz-e2e"
CORRECT = "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\ny.backward()\n"
NO_BACKWARD = "import torch\nx = torch.tensor(2.0, requires_grad=True)\ny = x**2 + 3*x + 1\n"
LETTERS = "ABCDEFGH"


def download(live_url: str, token: str) -> nbformat.NotebookNode:
    request = Request(f"{live_url}/api/v1/quizzes/autograd-basics/notebook/?course=default",
                      headers={"Authorization": f"Token {token}"})
    with urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("application/x-ipynb+json")
        return nbformat.reads(response.read().decode("utf-8"), as_version=4)


def answer_cell(notebook: nbformat.NotebookNode, item: str) -> int:
    return next(i for i, c in enumerate(notebook.cells) if c.metadata.get("autograd_quiz", {}).get("item") == item
                and c.cell_type == "code")


def code(source: str, name: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source, id=name)


def run(notebook: nbformat.NotebookNode, tmp_path: Path, token: str, monkeypatch: pytest.MonkeyPatch
        ) -> nbformat.NotebookNode:
    """Run every cell in a fresh ipykernel of this virtualenv, as JupyterLab's "Run all" does."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "autograd quiz e2e", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))  # where jupyter_client looks for KERNEL
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_", "AUTOGRAD_"))}
    env.update(AUTOGRAD_QUIZ_TOKEN=token, AUTOGRAD_QUIZ_CONFIG_DIR=str(tmp_path / "config"),
               IPYTHONDIR=str(tmp_path / "ipython"))
    client = NotebookClient(notebook, kernel_name=KERNEL, timeout=120, startup_timeout=60, allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    return client.execute(env=env)


def rich(cell: nbformat.NotebookNode) -> dict[str, Any]:
    """The cell's one display output's data (text/html, text/markdown, text/plain)."""
    shown = [o for o in cell.outputs if o.output_type in ("display_data", "execute_result")]
    assert len(shown) == 1, cell.outputs
    return shown[0].data


def test_a_downloaded_notebook_is_graded_cell_by_cell(
        live_server: LiveServer, celery_worker: object, seed_quiz: None, learner: User, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    cache.delete(SubmissionRateThrottle.cache_format % {"scope": "submissions", "ident": learner.pk})
    token = Token.objects.create(user=learner).key
    notebook = download(live_server.url, token)

    # The learner's answers: a correct cell, then a wrong one; a choice question answered by letter, another
    # left unanswered; hints and solutions asked for; every other exercise left at its starter code.
    poly = answer_cell(notebook, "grad-of-polynomial")
    notebook.cells[poly].source = f"%%grade grad-of-polynomial\n{CORRECT}"
    notebook.cells[poly + 1:poly + 1] = [
        code(f"%%grade grad-of-polynomial\n{NO_BACKWARD}", "wrong"),
        code('hint("grad-of-polynomial")', "hint"),
        code('solution("grad-of-polynomial")', "solution-revealed"),
        code('solution("zero-grad")', "solution-hidden"),
    ]
    correct = Choice.objects.filter(item__slug="autograd-how-it-works")
    letters = [LETTERS[i] for i, c in enumerate(correct) if c.correct]
    choice = answer_cell(notebook, "autograd-how-it-works")
    notebook.cells[choice].source = f"grade(\"autograd-how-it-works\", choices={letters!r})\n"

    ran = {cell.id: cell for cell in run(notebook, tmp_path, token, monkeypatch).cells}

    setup = "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in ran["setup"].outputs)
    assert f"Logged in to {live_server.url}. Your courses: " in setup and "Using the token in" in setup
    assert token not in json.dumps(ran["setup"].outputs)

    passed = rich(ran["grad-of-polynomial-answer"])
    assert 'data-status="passed"' in passed["text/html"]
    assert passed["text/plain"].startswith("✓ Passed — grad-of-polynomial · score 100% · attempt 1")
    assert "y&#x27;s graph" in passed["text/html"] or "y's graph" in passed["text/html"]
    assert "data:image/svg+xml;base64," in passed["text/html"] or "<code>AddBackward0</code>" in passed["text/html"], \
        "the autograd graph: the server's drawing, or the list drawn from its data"

    failed = rich(ran["wrong"])
    assert 'data-status="failed"' in failed["text/html"]
    assert "attempt 2" in failed["text/plain"] and "did you call backward()" in failed["text/plain"]

    assert rich(ran["hint"])["text/markdown"].startswith("**Hint 1 of 3** (grad-of-polynomial).")
    assert "x = torch.tensor(2.0, requires_grad=True)" in rich(ran["solution-revealed"])["text/markdown"], \
        "revealed after passing (the default course's rule)"
    assert "is not shown yet" in rich(ran["solution-hidden"])["text/markdown"]

    assert 'data-status="passed"' in rich(ran["autograd-how-it-works-answer"])["text/html"]

    starter = rich(ran["zero-grad-answer"])
    assert 'data-status="rejected"' in starter["text/html"] and "cost no attempt" in starter["text/plain"]

    [unanswered] = ran["no-grad-purpose-answer"].outputs
    assert unanswered.output_type == "error" and unanswered.ename == "NoAnswer"
    assert unanswered.traceback == [f"NoAnswer: {unanswered.evalue}"], "a message, not a stack"

    stored = Submission.objects.filter(user=learner, item__slug="grad-of-polynomial").order_by("pk")
    assert [(s.status, s.attempt, s.course.slug) for s in stored] == [("passed", 1, "default"),
                                                                      ("failed", 2, "default")]
    assert Submission.objects.get(user=learner, item__slug="autograd-how-it-works").status == "passed"
    assert Submission.objects.get(user=learner, item__slug="zero-grad").attempt is None
