"""Shared fixtures. Tests talk to the real database, Redis and sandbox."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.management import call_command

from grader.runner import get_sandbox
from grader.sandbox import Sandbox

from .factories import UserFactory


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """A zygote of the tests' own, started once (importing torch takes about a second)."""
    with Sandbox() as box:
        yield box


@pytest.fixture
def seed_quiz(db: None) -> None:
    """The real autograd-basics quiz, references computed through the process's sandbox."""
    get_sandbox()
    call_command("load_quizzes", verbosity=0, stdout=open("/dev/null", "w"))


@pytest.fixture
def learner(db: None):  # type: ignore[no-untyped-def]
    return UserFactory(username="ada")


@pytest.fixture
def other_learner(db: None):  # type: ignore[no-untyped-def]
    return UserFactory(username="grace")
