"""Fixtures of the notebook tests: the learner's API client with a real token, and notebooks read back."""
from __future__ import annotations

from typing import Any

import nbformat
import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


@pytest.fixture
def token(learner: Any) -> str:
    return Token.objects.create(user=learner).key


@pytest.fixture
def api(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def read_notebook(content: bytes) -> nbformat.NotebookNode:
    """A downloaded notebook, parsed and checked against the nbformat schema."""
    notebook = nbformat.reads(content.decode("utf-8"), as_version=nbformat.NO_CONVERT)
    nbformat.validate(notebook)
    return notebook


def cells_of(notebook: nbformat.NotebookNode, item: str) -> tuple[nbformat.NotebookNode, nbformat.NotebookNode]:
    """An item's prompt cell and answer cell."""
    prompt, answer = (c for c in notebook.cells if c.metadata.get("autograd_quiz", {}).get("item") == item)
    return prompt, answer
