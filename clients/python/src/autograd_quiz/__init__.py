"""Grade PyTorch autograd exercises from Jupyter or a script, against an autograd quiz server.

In a notebook::

    %load_ext autograd_quiz
    %quiz_login https://quiz.example.org
    from autograd_quiz import grade, hint, solution

    %%grade grad-of-polynomial
    import torch
    x = torch.tensor(2.0, requires_grad=True)
    ...

From a script: ``grade("grad-of-polynomial", code)``, ``hint(item)``, ``solution(item)`` (log in once with
``login(URL)`` or set AUTOGRAD_QUIZ_URL and AUTOGRAD_QUIZ_TOKEN).
"""
from __future__ import annotations

from typing import Any

from ._version import __version__
from .client import Client
from .display import Hint, Solution, Verdict
from .errors import (AuthenticationFailed, Forbidden, GradingTimeout, NoAnswer, NotFound, NotLoggedIn, QuizError,
                     Refused, ServerError, ServerTimeout, ServerUnreachable, Throttled)
from .session import current, grade, hint, login, logout, solution

__all__ = [
    "__version__", "Client", "Verdict", "Hint", "Solution", "grade", "hint", "solution", "login", "logout", "current",
    "QuizError", "NotLoggedIn", "ServerUnreachable", "ServerTimeout", "ServerError", "AuthenticationFailed",
    "Forbidden", "NotFound", "Refused", "Throttled", "GradingTimeout", "NoAnswer",
]


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext autograd_quiz`: the magics. IPython is imported only here, so scripts do not need it."""
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .magics import unload_ipython_extension as unload

    unload(ipython)
