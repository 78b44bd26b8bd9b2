"""The learner-facing site: server-rendered pages over the quiz and grader selectors.

Every read of a learner's work goes through selectors scoped to request.user, so
a page only ever shows the viewer's own attempts (instructors included: the item
page is a learner's page). The item page works without JavaScript: its form
posts here and the verdict is shown on the page of that attempt; with JavaScript
(static/quiz/js/item.js) the same form talks to the REST API instead.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from grader import selectors as grader_selectors
from grader import services as grader_services
from grader.apis import SubmissionRateThrottle, submission_data
from grader.models import Submission

from . import selectors
from .apis import item_data
from .forms import AnswerForm, SignupForm
from .graphs import graph_svg
from .models import Item, Quiz

logger = logging.getLogger(__name__)

HISTORY_LIMIT = 50
MAX_NO_JS_REFRESHES = 60  # every 2 s


@dataclass
class QuizProgress:
    quiz: Quiz
    total: int
    passed: int
    attempted: int
    next_item: Item | None

    @property
    def percent(self) -> int:
        return round(100 * self.passed / self.total) if self.total else 0


def quiz_list(request: HttpRequest) -> HttpResponse:
    """Every quiz; with the viewer's progress when logged in."""
    quizzes = list(selectors.quiz_list())
    items = list(selectors.item_list()) if request.user.is_authenticated else []
    progress = selectors.item_progress(user=request.user, items=items)
    rows = []
    for quiz in quizzes:
        own = [item for item in items if item.quiz_id == quiz.pk]
        rows.append(QuizProgress(
            quiz=quiz, total=quiz.item_count, passed=sum(progress[i.pk].passed for i in own),
            attempted=sum(progress[i.pk].attempts > 0 for i in own),
            next_item=next((i for i in own if not progress[i.pk].passed), own[0] if own else None)))
    return render(request, "quiz/quiz_list.html", {"rows": rows})


@login_required
def quiz_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """A quiz's items in order, each with the viewer's state and best score."""
    quiz = selectors.quiz_get(slug=slug)
    items = list(selectors.item_list(quiz_slug=quiz.slug))
    progress = selectors.item_progress(user=request.user, items=items)
    rows = [{"item": item, "progress": progress[item.pk], "number": n} for n, item in enumerate(items, 1)]
    summary = QuizProgress(
        quiz=quiz, total=len(items), passed=sum(p.passed for p in progress.values()),
        attempted=sum(p.attempts > 0 for p in progress.values()),
        next_item=next((i for i in items if not progress[i.pk].passed), items[0] if items else None))
    return render(request, "quiz/quiz_detail.html", {"quiz": quiz, "rows": rows, "summary": summary})


def _own_attempts(request: HttpRequest, item: Item) -> Any:
    # `learner` narrows an instructor's view to their own attempts; learners are always scoped to themselves.
    return grader_selectors.submission_list(user=request.user, item=item.slug,
                                            learner=request.user.get_username())


def _attempt_from_query(request: HttpRequest, item: Item) -> Submission | None:
    raw = request.GET.get("attempt")
    if not raw:
        return None
    if not raw.isdigit():
        raise Http404("no such attempt")
    attempt = _own_attempts(request, item).filter(pk=int(raw)).first()
    if attempt is None:  # someone else's attempt looks exactly like a missing one
        raise Http404("no such attempt")
    return attempt


def _choice_feedback(attempt: Submission, visible: list[dict[str, Any]]) -> tuple[dict[int, dict[str, Any]], list]:
    """Per-choice results of a choice attempt, keyed by choice id, and the results about no single choice."""
    by_choice: dict[int, dict[str, Any]] = {}
    general = []
    for raw, shown in zip(attempt.checks, visible, strict=False):
        if raw.get("choice") is not None:
            by_choice[raw["choice"]] = shown
        else:
            general.append(shown)
    return by_choice, general


def _refresh_url(request: HttpRequest, item: Item, attempt: Submission | None) -> str | None:
    """Where a page without JavaScript reloads itself while its attempt is being graded.

    Each reload gets a new `wait` number: a refresh to the very same URL with a
    #fragment would only scroll, not reload. It gives up after about two minutes.
    """
    if attempt is None or not attempt.is_pending:
        return None
    raw = request.GET.get("wait", "0")
    wait = int(raw) if raw.isdigit() else 0
    if wait >= MAX_NO_JS_REFRESHES:
        return None
    url = reverse("quiz:item-detail", args=[item.slug])
    return f"{url}?attempt={attempt.pk}&wait={wait + 1}#verdict"


def _item_page(request: HttpRequest, item: Item, *, attempt: Submission | None = None,
               form_error: str = "", posted: AnswerForm | None = None, status: int = 200) -> HttpResponse:
    progress = selectors.item_progress(user=request.user, items=[item])[item.pk]
    data = item_data(item, request.user, progress)
    siblings = list(selectors.item_list(quiz_slug=item.quiz.slug))
    index = next(i for i, sibling in enumerate(siblings) if sibling.pk == item.pk)
    own = _own_attempts(request, item)
    total_attempts = own.count()
    history = [{"submission": s, "number": total_attempts - n} for n, s in enumerate(own[:HISTORY_LIMIT])]
    attempt_number = own.filter(pk__lte=attempt.pk).count() if attempt else None

    verdict = submission_data(attempt, request.user) if attempt else None
    by_choice, general = _choice_feedback(attempt, verdict["checks"]) if attempt and not item.is_code else ({}, [])
    if posted is not None:
        code = posted.data.get("code", data["starter_code"])
        selected = {int(v) for v in posted.data.getlist("choices") if v.isdigit()}
    else:
        code = attempt.code if attempt and item.is_code else data["starter_code"]
        selected = set(attempt.selected) if attempt else set()
    choices = [{**choice, "checked": choice["id"] in selected, "feedback": by_choice.get(choice["id"])}
               for choice in data["choices"]]

    page_config = {
        "slug": item.slug, "kind": item.kind, "multiple": item.multiple, "revealed": data["progress"]["revealed"],
        "pageUrl": reverse("quiz:item-detail", args=[item.slug]),
        "itemApi": reverse("api:item-detail", args=[item.slug]),
        "submissionsApi": reverse("api:submission-list"),
        "choiceIds": [choice["id"] for choice in data["choices"]],
        "starterCode": data["starter_code"],
        "learner": request.user.get_username(),  # narrows an instructor's API history to their own attempts
        "nextUrl": reverse("quiz:item-detail", args=[siblings[index + 1].slug]) if index + 1 < len(siblings) else None,
        "attempt": verdict,
    }
    context = {
        "item": item, "quiz": item.quiz, "data": data, "progress": progress, "choices": choices,
        "position": index + 1, "total": len(siblings),
        "previous": siblings[index - 1] if index > 0 else None,
        "next": siblings[index + 1] if index + 1 < len(siblings) else None,
        "history": history, "attempt": attempt, "attempt_number": attempt_number, "verdict": verdict,
        "refresh_url": _refresh_url(request, item, attempt), "general_checks": general,
        "code": code, "form_error": form_error, "page_config": page_config,
    }
    return render(request, "quiz/item_detail.html", context, status=status)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def item_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """An item: prompt, editor or choices, hints, the viewer's attempts; POST is the no-JavaScript answer."""
    item = selectors.item_get(slug=slug)
    if request.method != "POST":
        return _item_page(request, item, attempt=_attempt_from_query(request, item))

    form = AnswerForm(request.POST, item=item)
    if not form.is_valid():
        message = "; ".join(e for errors in form.errors.values() for e in errors)
        return _item_page(request, item, form_error=message, posted=form, status=400)
    throttle = SubmissionRateThrottle()  # the same per-learner budget as the API
    if not throttle.allow_request(request, None):  # type: ignore[arg-type]
        wait = throttle.wait()
        message = "You are submitting very fast. Please wait" + (f" {int(wait) + 1} s" if wait else "") + "."
        return _item_page(request, item, form_error=message, posted=form, status=429)
    try:
        submission = grader_services.submission_create(
            user=request.user, item=item, code=form.cleaned_data["code"], selected=form.cleaned_data["choices"])
    except grader_services.SubmissionRefused as exc:
        message = str(exc)
        return _item_page(request, item, form_error=message[:1].upper() + message[1:], posted=form, status=400)
    url = reverse("quiz:item-detail", args=[item.slug])
    return redirect(f"{url}?attempt={submission.pk}#verdict")


@login_required
@require_http_methods(["GET", "HEAD"])
def attempt_graph(request: HttpRequest, pk: int, index: int) -> HttpResponse:
    """The autograd graph of one graph check of an attempt, as SVG (the viewer's own attempts only)."""
    submission = grader_selectors.submission_get(user=request.user, pk=pk)
    if submission is None:
        raise Http404("no such attempt")
    checks = grader_selectors.visible_checks(submission=submission, user=request.user)
    if index >= len(checks) or "graph" not in checks[index]:
        raise Http404("no graph for this check")
    response = HttpResponse(graph_svg(checks[index]["graph"], name=checks[index]["name"]),
                            content_type="image/svg+xml")
    response["Cache-Control"] = "private, max-age=3600"
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return resolve_url(settings.LOGIN_REDIRECT_URL)


@require_http_methods(["GET", "HEAD", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Create a learner account and log it in."""
    if request.user.is_authenticated:
        return redirect(_safe_next(request))
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)
        logger.info("new learner %s signed up", user.get_username())
        return redirect(_safe_next(request))
    return render(request, "registration/signup.html", {"form": form, "next": request.GET.get("next", "")})
