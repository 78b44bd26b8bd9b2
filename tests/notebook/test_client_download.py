"""The site serves the notebook client as a source archive that pip installs: a downloaded notebook's first
cell needs nothing else."""
from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client

from quiz.client_download import client_archive

pytestmark = pytest.mark.django_db


def test_the_archive_holds_the_package_and_nothing_else_and_is_the_same_every_time() -> None:
    names = tarfile.open(fileobj=io.BytesIO(client_archive()), mode="r:gz").getnames()
    assert "autograd-quiz-client/pyproject.toml" in names
    assert "autograd-quiz-client/src/autograd_quiz/magics.py" in names
    assert not [n for n in names if "/tests/" in n or ".egg-info" in n or "__pycache__" in n]
    client_archive.cache_clear()
    first = client_archive()
    client_archive.cache_clear()
    assert client_archive() == first


def test_pip_installs_the_served_client(client: Client, tmp_path: Path) -> None:
    response = client.get("/client/autograd-quiz-client.tar.gz")  # no login: pip fetches it without a session
    assert response.status_code == 200 and response["Content-Type"] == "application/gzip"
    archive = tmp_path / "autograd-quiz-client.tar.gz"
    archive.write_bytes(response.content)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(archive)], check=True, timeout=300)
    found = subprocess.run([sys.executable, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                            "import autograd_quiz; print(autograd_quiz.__file__)", str(target)],
                           capture_output=True, text=True, check=True)
    assert found.stdout.startswith(str(target))


def test_the_notebooks_first_cell_installs_the_client_from_the_site(
        client: Client, learner: User, seed_quiz: None) -> None:
    client.force_login(learner)
    notebook = client.get("/quizzes/autograd-basics/notebook/?course=default").json()
    setup = "".join(notebook["cells"][1]["source"])
    assert "%pip install --quiet http://testserver/client/autograd-quiz-client.tar.gz" in setup
    assert setup.index("%pip install") < setup.index("%load_ext autograd_quiz")
