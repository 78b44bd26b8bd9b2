"""The grading API over HTTP, with the standard library only (a notebook has no `requests` for sure).

One `Client` per server and token. Every call has a timeout; a dropped connection, a timeout or a 502/503/504
is retried a few times with a short back-off, and a submission's retries carry the same `Idempotency-Key`
so the server can answer a retried POST with the first submission instead of grading it twice. Everything
else the server says becomes one exception of errors.py with the server's own message.
"""
from __future__ import annotations

import http.client
import json
import logging
import socket
import time
import uuid
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib import error, request
from urllib.parse import urlencode, urljoin

from ._version import __version__
from .errors import (AuthenticationFailed, Forbidden, GradingTimeout, NoAnswer, NotFound, QuizError, Refused,
                     ServerError, ServerTimeout, ServerUnreachable, Throttled)

logger = logging.getLogger(__name__)

API = "api/v1/"
PENDING = ("queued", "running")
WAIT_SECONDS = 25.0  # per long-poll; the server waits at most 30 s
GRADE_TIMEOUT_SECONDS = 120.0  # a verdict normally comes in well under a second
# A pending answer given at once with Retry-After: the server had too many clients waiting already (a deadline
# rush). grade() waits that long before it asks again, twice as long at each such answer in a row, up to this.
TURNED_AWAY_MAX_SECONDS = 8.0
RETRY_STATUSES = (502, 503, 504)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class Submission:
    """What grading produced: the server's submission (the verdict fields of the API) plus, for display,
    the graph drawings it could fetch (check index -> SVG text)."""

    data: dict[str, Any]
    server: str
    graph_svgs: dict[int, str] = field(default_factory=dict)


class _NoRedirect(request.HTTPRedirectHandler):
    """A redirect from the API means "log in on the site": report it, never follow it with the token."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None


class Client:
    """The API of one server, as one user (`token`), optionally in one course."""

    def __init__(self, url: str, token: str | None = None, *, course: str | None = None, timeout: float = 15.0,
                 retries: int = 2, backoff: float = 0.5) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self.course = course
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._opener = request.build_opener(_NoRedirect)
        self._svg_refused = False

    def __repr__(self) -> str:  # never the token
        return f"Client({self.url!r}, course={self.course!r}, token={'set' if self._token else 'none'})"

    @property
    def has_token(self) -> bool:
        return bool(self._token)

    # -- transport -------------------------------------------------------------------------------
    def absolute(self, path: str) -> str:
        """An API path ("api/v1/items/") or a path the server sent ("/api/v1/submissions/3/") as a full URL."""
        return urljoin(self.url + "/", path)

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
                headers: dict[str, str] | None = None, timeout: float | None = None, auth: bool = True,
                accept: str = "application/json") -> Response:
        """One API call, retried on connection faults and 502/503/504; raises a QuizError for every answer
        that is not 2xx. The same `headers` (and so the same Idempotency-Key) go with every retry."""
        url = self.absolute(path)
        if params:
            url += ("&" if "?" in url else "?") + urlencode({k: v for k, v in params.items() if v is not None})
        sent = {"Accept": accept, "User-Agent": f"autograd-quiz-client/{__version__}", **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            sent["Content-Type"] = "application/json"
        if auth and self._token:
            sent["Authorization"] = f"Token {self._token}"
        timeout = self.timeout if timeout is None else timeout
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                with self._opener.open(request.Request(url, data=data, headers=sent, method=method),
                                       timeout=timeout) as answer:
                    return Response(answer.status, dict(answer.headers.items()), _decode(answer.read(), answer.headers))
            except error.HTTPError as exc:
                raw = exc.read()
                response = Response(exc.code, dict(exc.headers.items()) if exc.headers else {},
                                    _decode(raw, exc.headers))
                if exc.code in RETRY_STATUSES and not last:
                    self._pause(attempt, f"{method} {url} answered {exc.code}")
                    continue
                raise _error_for(response, method=method, url=url, server=self.url) from None
            except (error.URLError, OSError, http.client.HTTPException) as exc:
                reason = getattr(exc, "reason", exc)
                timed_out = isinstance(exc, socket.timeout) or isinstance(reason, socket.timeout)
                if not last:
                    self._pause(attempt, f"{method} {url}: {'timed out' if timed_out else reason}")
                    continue
                if timed_out:
                    raise ServerTimeout(f"{self.url} did not answer within {timeout:g} s ({method} {path}). The "
                                        "server may be overloaded: try again in a moment.") from None
                raise ServerUnreachable(f"Cannot reach the quiz server at {self.url} ({reason}). Is the address "
                                        "right, and is the server running?") from None
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _pause(self, attempt: int, why: str) -> None:
        delay = self.backoff * (2 ** attempt)
        logger.info("%s; retrying in %.1f s", why, delay)
        time.sleep(delay)

    # -- the API -----------------------------------------------------------------------------------
    def token_for(self, username: str, password: str) -> str:
        """Trade a username and password for the user's API token (POST auth/token/)."""
        try:
            response = self.request("POST", API + "auth/token/", body={"username": username, "password": password},
                                    auth=False)
        except Refused as exc:
            raise AuthenticationFailed(f"The server refused the login: {str(exc).rstrip('.')}.") from None
        return str(response.body["token"])

    def courses(self) -> list[dict[str, Any]]:
        """The user's courses with their role (also how a token is checked)."""
        body = self.request("GET", API + "courses/").body
        return list(body["results"] if isinstance(body, dict) and "results" in body else body)

    def item(self, slug: str, *, course: str | None = None) -> dict[str, Any]:
        """An item as the user may see it in their course: prompt, hints, choices, policy, and the explanation
        and solution once the course's reveal rule allows."""
        return dict(self.request("GET", API + f"items/{slug}/", params={"course": course or self.course}).body)

    def submit(self, item: str, *, code: str | None = None, choices: list[int] | None = None,
               course: str | None = None, key: str | None = None, wait: float = WAIT_SECONDS) -> dict[str, Any]:
        """POST a submission and wait up to `wait` s for its verdict in the same request: the verdict (201) or a
        ticket {id, status, url} (202). `key` is the Idempotency-Key, the same on every retry of this call."""
        return dict(self._submit(item, code=code, choices=choices, course=course, key=key, wait=wait).body)

    def _submit(self, item: str, *, code: str | None, choices: list[int] | None, course: str | None,
                key: str | None, wait: float) -> Response:
        body: dict[str, Any] = {"item": item}
        if code is not None:
            body["code"] = code
        if choices is not None:
            body["choices"] = choices
        if course or self.course:
            body["course"] = course or self.course
        headers = {"Idempotency-Key": key or str(uuid.uuid4())}
        return self.request("POST", API + "submissions/", params={"wait": _seconds(wait)}, body=body,
                            headers=headers, timeout=wait + self.timeout)

    def submission(self, url: str, *, wait: float = WAIT_SECONDS) -> dict[str, Any]:
        """A submission by its URL, waiting up to `wait` s for its verdict (the server answers as soon as it is
        stored)."""
        return dict(self._poll(url, wait=wait).body)

    def _poll(self, url: str, *, wait: float) -> Response:
        return self.request("GET", url, params={"wait": _seconds(wait)} if wait else None, timeout=wait + self.timeout)

    def graph_svg(self, path: str) -> str | None:
        """A verdict's graph drawing, or None when the server will not give it to this token (the drawing's URL
        may accept only a site session) or it is not an SVG; never raises for that."""
        if self._svg_refused:
            return None
        try:
            response = self.request("GET", path, accept="image/svg+xml", timeout=self.timeout)
        except (AuthenticationFailed, Forbidden, ServerError, Refused):
            self._svg_refused = True  # the same for every graph of this server: ask once
            return None
        except QuizError:
            return None
        if response.headers.get("Content-Type", "").split(";")[0].strip() != "image/svg+xml" or \
                not isinstance(response.body, str):
            return None
        return response.body

    def grade(self, item: str, code: str | None = None, *, choices: list[int] | None = None,
              course: str | None = None, timeout: float = GRADE_TIMEOUT_SECONDS,
              graphs: bool = False) -> Submission:
        """Submit code (or choice ids) and wait for the verdict, at most `timeout` s in all. One Idempotency-Key
        per call, reused by its retries. `graphs`: also fetch the graph drawings (for rich display)."""
        if code is None and not choices:
            raise NoAnswer(f"Nothing to grade for {item!r}: give the code, or the choices you pick.")
        deadline = time.monotonic() + timeout
        answer = self._submit(item, code=code, choices=choices, course=course, key=str(uuid.uuid4()),
                              wait=min(WAIT_SECONDS, timeout))
        data = dict(answer.body)
        turned_away = 0  # pending answers in a row given at once, with Retry-After
        while data.get("status") in PENDING:
            left = deadline - time.monotonic()
            if left <= 0:
                raise GradingTimeout(
                    f"No verdict for {item!r} within {timeout:g} s: the submission is {data.get('status')} on the "
                    f"server, which keeps it. Its verdict will be at {self.absolute(data['url'])}.",
                    submission_id=data.get("id"), url=data.get("url"))
            pause = _retry_after(answer.headers)
            turned_away = turned_away + 1 if pause else 0
            if pause:  # the server had too many waiting: asking again at once would only add to its load
                time.sleep(min(pause * 2 ** (turned_away - 1), TURNED_AWAY_MAX_SECONDS, left))
                left = deadline - time.monotonic()
            answer = self._poll(data["url"], wait=min(WAIT_SECONDS, max(left, 1.0)))
            data = dict(answer.body)
        result = Submission(data=data, server=self.url)
        if graphs:
            for index, check in enumerate(data.get("checks") or []):
                if check.get("graph_svg"):
                    svg = self.graph_svg(check["graph_svg"])
                    if svg:
                        result.graph_svgs[index] = svg
        return result


def _seconds(value: float) -> str:
    return f"{value:g}"


def _decode(raw: bytes, headers: Any) -> Any:
    content_type = (headers.get("Content-Type", "") if headers else "").split(";")[0].strip()
    text = raw.decode("utf-8", errors="replace")
    if content_type.endswith("json"):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _retry_after(headers: dict[str, str]) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _message(detail: dict[str, Any]) -> str:
    """The reason to show: a field's own message (without the "field: " prefix of the summary) when there is one."""
    fields = detail.get("fields")
    if isinstance(fields, dict):
        for value in fields.values():
            while isinstance(value, (list, dict)) and value:
                value = value[0] if isinstance(value, list) else next(iter(value.values()))
            if isinstance(value, str) and value.strip():
                return value.strip()
    return str(detail.get("message") or "").strip()


def _error_for(response: Response, *, method: str, url: str, server: str) -> QuizError:
    """The exception for a non-2xx answer, with the server's message ({"error": {"code", "message", "fields"}})."""
    body = response.body
    error = body.get("error") if isinstance(body, dict) else None
    detail: dict[str, Any] = error if isinstance(error, dict) else {}
    message = _message(detail)
    status = response.status
    if status == 401:
        return AuthenticationFailed(f"The quiz server at {server} did not accept your token"
                                    f"{': ' + message if message else ''}. Log in again with %quiz_login {server}")
    if status == 403:
        return Forbidden(message or "You are not allowed to do this.")
    if status == 404:
        return NotFound(message or f"Nothing at {url}.")
    if status == 429:
        wait = _retry_after(response.headers)
        when = f"in {int(wait) + 1} s" if wait is not None else "in a minute"
        return Throttled(f"You are submitting very fast: the server takes more {when}. Nothing was graded.",
                         retry_after=wait)
    if 300 <= status < 400:
        return AuthenticationFailed(f"The quiz server at {server} sent {method} {url} to its log-in page: your "
                                    f"token was not accepted there. Log in again with %quiz_login {server}")
    if status == 400 or (400 <= status < 500 and detail):
        text = message[:1].upper() + message[1:] if message else f"The server refused the request ({status})."
        return Refused(text if text.endswith((".", "!", "?")) else text + ".", code=str(detail.get("code") or status),
                       fields=detail.get("fields") or {})
    if status >= 500:
        return ServerError(f"The quiz server at {server} failed ({status}) on {method} {url}. Try again in a "
                           "moment; if it persists, tell your instructor.", status=status)
    return ServerError(f"Unexpected answer {status} from {url}.", status=status)
