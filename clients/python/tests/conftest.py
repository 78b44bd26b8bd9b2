"""Fixtures of the client's own tests: a scripted server (fakeserver.py) and a config folder of each test's
own. These tests need no Django: the client is tested against the real quiz server in tests/notebook/."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakeserver import FakeServer

import autograd_quiz.session


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        yield fake


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own credentials folder and no login from the environment or an earlier test."""
    folder = tmp_path / "config"
    monkeypatch.setenv("AUTOGRAD_QUIZ_CONFIG_DIR", str(folder))
    for name in ("AUTOGRAD_QUIZ_URL", "AUTOGRAD_QUIZ_TOKEN", "AUTOGRAD_QUIZ_COURSE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(autograd_quiz.session, "_client", None)
    monkeypatch.setattr(autograd_quiz.session, "_hints_shown", {})
    return folder
