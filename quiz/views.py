"""The learner-facing site: server-rendered pages over the quiz and grader selectors.

Every read of a learner's work goes through selectors scoped to request.user, so
a page only ever shows the viewer's own attempts (instructors included: the item
page is a learner's page). The item page works without JavaScript: its form
posts here and the verdict is shown on the page of that attempt; with JavaScript
(static/quiz/js/item.js) the same form talks to the REST API instead.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_http_methods
from rest_framework.exceptions import AuthenticationFailed

from config.authentication import TokenAuthentication
from courses import roles
from courses import selectors as course_selectors
from courses import services as course_services
from courses.models import Course, CourseQuiz
from grader import selectors as grader_selectors
from grader import services as grader_services
from grader.apis import SubmissionRateThrottle, submission_data
from grader.models import Submission
from grader.selectors import ItemProgress
from grader.standing import course_progress, standing_of

from . import selectors
from .apis import item_data
from .forms import AnswerForm, JoinForm, SignupForm
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
    course_quiz: CourseQuiz | None = None

    @property
    def percent(self) -> int:
        return round(100 * self.passed / self.total) if self.total else 0


def _quiz_progress(user: Any, course_quiz: CourseQuiz, items: list[Item],
                   progress: dict[int, ItemProgress]) -> QuizProgress:
    return QuizProgress(
        quiz=course_quiz.quiz, total=len(items), passed=sum(progress[i.pk].passed for i in items),
        attempted=sum(progress[i.pk].attempts > 0 for i in items),
        next_item=next((i for i in items if not progress[i.pk].passed), items[0] if items else None),
        course_quiz=course_quiz)


def quiz_list(request: HttpRequest) -> HttpResponse:
    """The viewer's courses, each with its open quizzes and the viewer's progress, and a join-a-course form;
    visitors see the courses anyone can join by signing up."""
    groups = []
    rows = (course_selectors.course_quiz_list(user=request.user) if request.user.is_authenticated
            else course_selectors.public_course_quizzes())
    for course_quiz in rows.order_by("course__title", "course__slug", "order"):
        items = list(selectors.item_list(quiz_slug=course_quiz.quiz.slug))
        progress = course_progress(user=request.user, items=items, course_quiz=course_quiz)
        if not groups or groups[-1]["course"].pk != course_quiz.course_id:
            groups.append({"course": course_quiz.course, "rows": []})
        groups[-1]["rows"].append(_quiz_progress(request.user, course_quiz, items, progress))
    return render(request, "quiz/quiz_list.html", {"groups": groups, "join_form": JoinForm()})


def course_quiz_or_404(request: HttpRequest, *, item: Item | None = None, quiz: Quiz | None = None) -> CourseQuiz:
    """The course quiz the page is about (`?course=` names it when the viewer has several)."""
    try:
        return course_selectors.course_quiz_for(user=request.user, item=item, quiz=quiz,
                                                course=request.GET.get("course") or None)
    except course_selectors.NotInCourse as exc:
        raise Http404(str(exc)) from None
    except course_selectors.WhichCourse as exc:
        raise _ChooseCourse(exc.slugs) from None


class _ChooseCourse(Exception):
    def __init__(self, slugs: list[str]) -> None:
        self.slugs = slugs


def choosing_course(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A page about an item or quiz that is in several of the viewer's courses, asked for without ?course=,
    becomes a page that lets them pick one."""
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except _ChooseCourse as exc:
            links = [{"slug": slug, "url": f"{request.path}?{urlencode({'course': slug})}"} for slug in exc.slugs]
            return render(request, "quiz/choose_course.html", {"links": links})
    return wrapper


@login_required
@choosing_course
def quiz_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """A course quiz's items in order, each with the viewer's state and best score, and the quiz's rules."""
    quiz = selectors.quiz_get(slug=slug)
    course_quiz = course_quiz_or_404(request, quiz=quiz)
    items = list(selectors.item_list(quiz_slug=quiz.slug))
    progress = course_progress(user=request.user, items=items, course_quiz=course_quiz)
    rows = [{"item": item, "progress": progress[item.pk], "number": n} for n, item in enumerate(items, 1)]
    summary = _quiz_progress(request.user, course_quiz, items, progress)
    standing = standing_of(user=request.user, item=items[0], course_quiz=course_quiz) if items else None
    return render(request, "quiz/quiz_detail.html", {"quiz": quiz, "rows": rows, "summary": summary,
                                                     "course": course_quiz.course, "course_quiz": course_quiz,
                                                     "standing": standing})


@login_required
@require_http_methods(["POST"])
def course_join(request: HttpRequest) -> HttpResponse:
    """Enrol the viewer in a course with its join code."""
    form = JoinForm(request.POST)
    if form.is_valid():
        try:
            membership = course_services.course_join(user=request.user, code=form.cleaned_data["code"])
        except course_services.EnrolmentRefused as exc:
            messages.error(request, str(exc)[:1].upper() + str(exc)[1:] + ".")
        else:
            messages.success(request, f"You are enrolled in {membership.course.title}.")
    else:
        messages.error(request, "Type the join code your instructor gave you.")
    return redirect("quiz:quiz-list")


def _own_attempts(request: HttpRequest, item: Item, course: Course) -> Any:
    # `learner` narrows a course's staff's view to their own attempts; learners are always scoped to themselves.
    return grader_selectors.submission_list(user=request.user, item=item.slug, course=course.slug,
                                            learner=request.user.get_username())


def _attempt_from_query(request: HttpRequest, item: Item, course: Course) -> Submission | None:
    raw = request.GET.get("attempt")
    if not raw:
        return None
    if not raw.isdigit():
        raise Http404("no such attempt")
    attempt = _own_attempts(request, item, course).filter(pk=int(raw)).first()
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
    return f"{url}?{urlencode({'course': attempt.course.slug, 'attempt': attempt.pk, 'wait': wait + 1})}#verdict"


def _item_page(request: HttpRequest, item: Item, course_quiz: CourseQuiz, *, attempt: Submission | None = None,
               form_error: str = "", posted: AnswerForm | None = None, status: int = 200,
               precheck_message: str = "") -> HttpResponse:
    course = course_quiz.course
    progress = course_progress(user=request.user, items=[item], course_quiz=course_quiz)[item.pk]
    standing = standing_of(user=request.user, item=item, course_quiz=course_quiz)
    data = item_data(item, request.user, standing, progress)
    siblings = list(selectors.item_list(quiz_slug=item.quiz.slug))
    index = next(i for i, sibling in enumerate(siblings) if sibling.pk == item.pk)
    own = _own_attempts(request, item, course)
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

    def page(target: Item) -> str:
        return f"{reverse('quiz:item-detail', args=[target.slug])}?{urlencode({'course': course.slug})}"

    page_config = {
        "slug": item.slug, "kind": item.kind, "multiple": item.multiple, "revealed": data["progress"]["revealed"],
        "course": course.slug,
        "pageUrl": page(item),
        "itemApi": f"{reverse('api:item-detail', args=[item.slug])}?{urlencode({'course': course.slug})}",
        "submissionsApi": reverse("api:submission-list"),
        "precheckApi": reverse("api:precheck"),
        "stateApi": reverse("api:item-state", args=[item.slug]),
        "draft": data["state"]["draft"],
        "hintsOpened": data["state"]["hints_opened"],
        "choiceIds": [choice["id"] for choice in data["choices"]],
        "starterCode": data["starter_code"],
        "learner": request.user.get_username(),  # narrows a course's staff's API history to their own attempts
        "nextUrl": page(siblings[index + 1]) if index + 1 < len(siblings) else None,
        "attempt": verdict,
    }
    context = {
        "item": item, "quiz": item.quiz, "data": data, "progress": progress, "choices": choices,
        "course": course, "standing": standing, "policy": data["policy"],
        "hide_feedback": data["policy"]["feedback"] == "hidden",
        "position": index + 1, "total": len(siblings),
        "previous": siblings[index - 1] if index > 0 else None,
        "next": siblings[index + 1] if index + 1 < len(siblings) else None,
        "history": history, "attempt": attempt, "attempt_number": attempt_number, "verdict": verdict,
        "refresh_url": _refresh_url(request, item, attempt), "general_checks": general,
        "code": code, "form_error": form_error, "page_config": page_config, "precheck_message": precheck_message,
    }
    return render(request, "quiz/item_detail.html", context, status=status)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
@choosing_course
def item_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """An item in one of the viewer's courses: prompt, editor or choices, hints, the viewer's attempts and
    the course's rules; POST is the no-JavaScript answer."""
    item = selectors.item_get(slug=slug)
    course_quiz = course_quiz_or_404(request, item=item)
    course = course_quiz.course
    if request.method != "POST":
        if course_quiz.time_limit_minutes and not roles.is_course_staff(user=request.user,
                                                                                 course_id=course.pk):
            course_services.quiz_start(course_quiz=course_quiz, user=request.user)  # the clock starts on first view
        return _item_page(request, item, course_quiz, attempt=_attempt_from_query(request, item, course))

    form = AnswerForm(request.POST, item=item)
    if not form.is_valid():
        message = "; ".join(e for errors in form.errors.values() for e in errors)
        return _item_page(request, item, course_quiz, form_error=message, posted=form, status=400)
    throttle = SubmissionRateThrottle()  # the same per-learner budget as the API
    if not throttle.allow_request(request, None):
        wait = throttle.wait()
        message = "You are submitting very fast. Please wait" + (f" {int(wait) + 1} s" if wait else "") + "."
        return _item_page(request, item, course_quiz, form_error=message, posted=form, status=429)
    try:
        submission = grader_services.submission_create(
            user=request.user, item=item, code=form.cleaned_data["code"], selected=form.cleaned_data["choices"],
            course=course.slug)
    except grader_services.SubmissionRefused as exc:
        message = str(exc)
        return _item_page(request, item, course_quiz, form_error=message[:1].upper() + message[1:], posted=form,
                          status=400)
    url = reverse("quiz:item-detail", args=[item.slug])
    return redirect(f"{url}?{urlencode({'course': course.slug, 'attempt': submission.pk})}#verdict")


@login_required
@require_http_methods(["POST"])
@choosing_course
def item_precheck(request: HttpRequest, slug: str) -> HttpResponse:
    """The no-JavaScript "Check syntax": the item page again, with what the check found; nothing stored."""
    item = selectors.item_get(slug=slug)
    course_quiz = course_quiz_or_404(request, item=item)
    form = AnswerForm(request.POST, item=item)
    result = grader_services.code_precheck(code=request.POST.get("code", ""))
    return _item_page(request, item, course_quiz, posted=form, form_error="" if result.ok else result.message,
                      precheck_message=result.message if result.ok else "", status=200 if result.ok else 400)


@require_http_methods(["GET", "HEAD"])
def attempt_graph(request: HttpRequest, pk: int, index: int) -> HttpResponse:
    """The autograd graph of one graph check of an attempt, as SVG (the viewer's own attempts only). Signed
    in on the site, or with the API's token (the notebook client draws it under the verdict)."""
    user = request.user if request.user.is_authenticated else _token_user(request)
    if user is None:
        return redirect_to_login(request.get_full_path())
    submission = grader_selectors.submission_get(user=user, pk=pk)
    if submission is None:
        raise Http404("no such attempt")
    feedback = grader_selectors.feedback_for(submission=submission, user=user)
    checks = grader_selectors.visible_checks(submission=submission, user=user, feedback=feedback)
    if index >= len(checks) or "graph" not in checks[index]:
        raise Http404("no graph for this check")
    response = HttpResponse(graph_svg(checks[index]["graph"], name=checks[index]["name"]),
                            content_type="image/svg+xml")
    response["Cache-Control"] = "private, max-age=3600"
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


def _token_user(request: HttpRequest) -> Any:
    """The user of an `Authorization: Token …` header (the API's tokens), or None."""
    try:
        found = TokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        return None
    return found[0] if found else None


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
        course_services.self_enrol(user=user)
        login(request, user)
        logger.info("new learner %s signed up", user.get_username())
        return redirect(_safe_next(request))
    return render(request, "registration/signup.html", {"form": form, "next": request.GET.get("next", "")})
