"""The learner's session with a quiz server, and the functions a notebook or script calls: login(), logout(),
grade(), hint(), solution().

Logging in once is enough for every later notebook and script: the token goes to the credentials file
(credentials.py, mode 0600), or comes from AUTOGRAD_QUIZ_TOKEN, which always wins and is never written
anywhere. The token is never printed, and it is read without echo.
"""
from __future__ import annotations

import getpass
import logging
import os
from collections.abc import Sequence
from typing import Any

from . import credentials
from .client import GRADE_TIMEOUT_SECONDS, Client
from .display import Hint, Solution, Verdict
from .errors import AuthenticationFailed, NoAnswer, NotLoggedIn, QuizError

logger = logging.getLogger(__name__)

URL_ENV = "AUTOGRAD_QUIZ_URL"
TOKEN_ENV = "AUTOGRAD_QUIZ_TOKEN"
COURSE_ENV = "AUTOGRAD_QUIZ_COURSE"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_client: Client | None = None
_hints_shown: dict[str, int] = {}


class LoggedIn:
    """What %quiz_login reports: the server, the learner's courses, where the token is kept (never the token)."""

    def __init__(self, *, client: Client, courses: list[dict[str, Any]], source: str, stored_at: str | None) -> None:
        self.url, self.course, self.courses, self.source, self.stored_at = (
            client.url, client.course, courses, source, stored_at)

    def text(self) -> str:
        names = ", ".join(f"{c.get('title', c.get('slug'))} ({c.get('role')})" for c in self.courses) or "none yet"
        lines = [f"Logged in to {self.url}. Your courses: {names}."]
        if self.course and self.course not in {c.get("slug") for c in self.courses}:
            lines.append(f"You are not a member of the course {self.course!r}, so grading there may be refused: "
                         "join it on the quiz site first.")
        elif self.course:
            lines.append(f"Grading in the course {self.course!r}.")
        if self.stored_at:
            lines.append(f"Your token is kept in {self.stored_at}, readable by you only.")
        elif self.source == "environment":
            lines.append(f"Using the token in ${TOKEN_ENV}.")
        return "\n".join(lines)

    __str__ = text

    def __repr__(self) -> str:
        return f"<LoggedIn {self.url} course={self.course!r}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())


def login(url: str | None = None, *, course: str | None = None, token: str | None = None, ask_token: bool = False,
          interactive: bool = True) -> LoggedIn:
    """Log in to a quiz server and make it the one grade(), hint() and solution() use.

    The token is, in order: `token`; $AUTOGRAD_QUIZ_TOKEN; the stored one for this server, if the server
    still accepts it; else asked for (username and password, or with `ask_token` the token itself, read
    without echo) and then stored in the credentials file.
    """
    raw_url = url or os.environ.get(URL_ENV) or credentials.load().get("current")
    if not raw_url:
        raise NotLoggedIn("Which quiz server? Give its address: %quiz_login https://quiz.example.org "
                          f"(or login(URL), or set ${URL_ENV}).")
    url = _server(raw_url)
    saved = credentials.stored(url)
    course = course or os.environ.get(COURSE_ENV) or saved.get("course") or None
    candidates: list[tuple[str, str]] = []
    if token:
        candidates.append(("argument", token))
    elif os.environ.get(TOKEN_ENV):
        candidates.append(("environment", os.environ[TOKEN_ENV].strip()))
    elif saved.get("token") and not ask_token:
        candidates.append(("stored", str(saved["token"])))
    for source, key in candidates:
        client = Client(url, key, course=course)
        try:
            courses = client.courses()
        except AuthenticationFailed:
            if source != "stored":
                where = f"${TOKEN_ENV}" if source == "environment" else "the token given"
                raise AuthenticationFailed(f"The quiz server at {url} refused {where}. Check it, or unset it and "
                                           f"run %quiz_login {url} to log in with your password.") from None
            logger.info("the stored token for %s was refused; asking again", url)
            continue
        # A stored token becomes the current server's again (for scripts), with the course of this login.
        stored_at = str(credentials.remember(url=url, token=key, course=course)) if source == "stored" else None
        return _start(client, courses, source, stored_at)
    if not interactive:
        raise NotLoggedIn(f"Not logged in to {url}: run %quiz_login {url}, or set ${TOKEN_ENV}.")
    key = _ask_token(url, ask_token=ask_token)
    client = Client(url, key, course=course)
    courses = client.courses()
    stored_at = str(credentials.remember(url=url, token=key, course=course))
    return _start(client, courses, "prompt", stored_at)


def _server(url: str) -> str:
    try:
        return credentials.normalise_url(url)
    except ValueError as exc:
        raise NotLoggedIn(f"{str(exc)[:1].upper()}{str(exc)[1:]}.") from None


def _ask_token(url: str, *, ask_token: bool) -> str:
    """A token typed by the learner: pasted (no echo), or traded for a username and password (no echo)."""
    try:
        if ask_token:
            key = getpass.getpass(f"API token for {url}: ").strip()
            if not key:
                raise NotLoggedIn("No token given: nothing changed.")
            return key
        username = input(f"Username on {url}: ").strip()
        password = getpass.getpass(f"Password for {username} (not shown): ")
    except (EOFError, KeyboardInterrupt):
        raise NotLoggedIn("Login cancelled.") from None
    except Exception as exc:  # ipykernel raises StdinNotImplementedError where the front end has no input box
        if type(exc).__name__ != "StdinNotImplementedError":
            raise
        raise NotLoggedIn(f"This front end cannot ask for a password. Set ${TOKEN_ENV} to your API token "
                          f"(`python manage.py create_api_token USERNAME` on the server, or POST "
                          f"{url}/api/v1/auth/token/) and run %quiz_login again.") from None
    if not username or not password:
        raise NotLoggedIn("A username and a password are needed: nothing changed.")
    return Client(url).token_for(username, password)


def _start(client: Client, courses: list[dict[str, Any]], source: str, stored_at: str | None) -> LoggedIn:
    global _client
    _client = client
    _hints_shown.clear()
    return LoggedIn(client=client, courses=courses, source=source, stored_at=stored_at)


def logout(url: str | None = None) -> bool:
    """Forget the stored token of a server (the current one by default); True when one was stored."""
    global _client
    target = _server(url) if url else (_client.url if _client else credentials.load().get("current"))
    if _client is not None and _client.url == target:
        _client = None
    return credentials.forget(url=target) if target else False


def current() -> Client:
    """The client grade() uses: the one %quiz_login made, else one from the environment or the stored
    credentials (so a script needs no login call); raises NotLoggedIn when there is neither."""
    global _client
    if _client is not None:
        return _client
    raw_url = os.environ.get(URL_ENV) or credentials.load().get("current")
    if not raw_url:
        raise NotLoggedIn("Not logged in: run %quiz_login URL in the notebook (login(URL) in a script), or set "
                          f"${URL_ENV} and ${TOKEN_ENV}.")
    url = _server(raw_url)
    saved = credentials.stored(url)
    key = os.environ.get(TOKEN_ENV, "").strip() or saved.get("token")
    if not key:
        raise NotLoggedIn(f"Not logged in to {url}: run %quiz_login {url}, or set ${TOKEN_ENV}.")
    _client = Client(url, str(key), course=os.environ.get(COURSE_ENV) or saved.get("course"))
    return _client


def grade(item: str, code: str | None = None, *, choices: Sequence[Any] | None = None, course: str | None = None,
          timeout: float = GRADE_TIMEOUT_SECONDS) -> Verdict:
    """Send code (or, for a choice item, the letters or ids of the chosen answers) to the grader and wait for
    the verdict. In a notebook the verdict shows as HTML; print() it for text. Raises a QuizError (shown
    without a traceback in IPython) when there is no verdict: server down, token refused, throttled, refused
    by the course's rules, or no verdict within `timeout` seconds."""
    client = current()
    ids = _choice_ids(client, item, choices, course) if choices is not None else None
    if code is None and ids is None:
        raise NoAnswer(f"Nothing to grade for {item!r}: pass your code, or choices=[...] for a choice question.")
    return Verdict(client.grade(item, code, choices=ids, course=course, timeout=timeout, graphs=_rich_display()))


def _choice_ids(client: Client, item: str, choices: Sequence[Any], course: str | None) -> list[int]:
    """Letters ("A" is the first answer as the notebook lists them) or choice ids, as the server's ids."""
    picked = list(choices)
    if not picked or any(c is Ellipsis for c in picked):
        raise NoAnswer(f"Choose your answer to {item!r} first: replace [...] with the letter(s) of your answer, "
                       'e.g. choices=["B"] (or ["A", "C"] when several are correct).')
    if all(isinstance(c, int) and not isinstance(c, bool) for c in picked):
        return picked
    listed = [c["id"] for c in client.item(item, course=course).get("choices") or []]
    ids = []
    for choice in picked:
        if isinstance(choice, int) and not isinstance(choice, bool):
            ids.append(choice)
            continue
        letter = str(choice).strip().upper()
        if len(letter) != 1 or letter not in LETTERS or LETTERS.index(letter) >= len(listed):
            raise NoAnswer(f"{choice!r} is not one of the answers to {item!r}: use the letters "
                           f"{', '.join(LETTERS[:len(listed)])}.")
        ids.append(listed[LETTERS.index(letter)])
    return ids


def hint(item: str, n: int | None = None, *, course: str | None = None) -> Hint:
    """The next hint for an item (the first, then the second on the next call...), or hint number `n`."""
    data = current().item(item, course=course)
    hints = [str(h) for h in data.get("hints") or []]
    if not hints:
        return Hint(item=item, number=0, total=0, text="")
    number = n if n is not None else min(_hints_shown.get(item, 0) + 1, len(hints))
    if not 1 <= number <= len(hints):
        raise QuizError(f"{item!r} has {len(hints)} hint{'s' if len(hints) != 1 else ''}: ask for 1 to {len(hints)}.")
    _hints_shown[item] = max(_hints_shown.get(item, 0), number)
    return Hint(item=item, number=number, total=len(hints), text=hints[number - 1])


def solution(item: str, *, course: str | None = None) -> Solution:
    """The reference solution and explanation of an item once the course reveals them (after passing, after
    the due date or after enough attempts, as the course says), else why not yet."""
    return Solution(current().item(item, course=course))


def _rich_display() -> bool:
    """True inside a Jupyter kernel, whose front end shows HTML (and so the graph drawings)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
