"""What can go wrong between a notebook and the grading server, one exception per thing the learner must do
differently. Every message is a full sentence that says what to do next; in IPython it is shown without a
traceback (see magics.py)."""
from __future__ import annotations

from typing import Any


class QuizError(Exception):
    """Anything the client cannot turn into a verdict."""


class NotLoggedIn(QuizError):
    """No server address or no token: neither %quiz_login nor AUTOGRAD_QUIZ_URL/AUTOGRAD_QUIZ_TOKEN."""


class ServerUnreachable(QuizError):
    """No connection to the server (refused, unknown host, reset), after the client's own retries."""


class ServerTimeout(QuizError):
    """The server accepted the connection but did not answer in time."""


class ServerError(QuizError):
    """The server answered 5xx, or something that is not the API's JSON."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthenticationFailed(QuizError):
    """401: the token (or the username and password) was refused."""


class Forbidden(QuizError):
    """403: logged in, but not allowed."""


class NotFound(QuizError):
    """404: no such item or quiz in the learner's courses (or it has not opened yet)."""


class Refused(QuizError):
    """400: the server refused the request with a reason, e.g. the course's policy (no attempts left, cooldown,
    past the due date, a repeat of an earlier answer) or invalid input."""

    def __init__(self, message: str, *, code: str = "validation_error", fields: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.fields = fields or {}


class Throttled(QuizError):
    """429: too many submissions; `retry_after` is how many seconds to wait (None when the server did not say)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class GradingTimeout(QuizError):
    """The submission was accepted but no verdict came within the client's time budget; the server keeps it,
    so the verdict can still be read later (`submission_id`)."""

    def __init__(self, message: str, *, submission_id: int | None = None, url: str | None = None) -> None:
        super().__init__(message)
        self.submission_id = submission_id
        self.url = url


class NoAnswer(QuizError):
    """grade() was called without code or choices (the placeholder was left in)."""
