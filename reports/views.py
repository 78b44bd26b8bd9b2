"""The instructor reports' pages in the admin: a regrade (its confirmation and its progress), the gradebook
download and a quiz's statistics.

The admins of grader and quiz route to these and check the model permissions first; here each report is
scoped to the courses the viewer staffs. The URL names stay the admin's (admin:grader_submission_regrade,
admin:grader_submission_regrade_progress, admin:grader_submission_gradebook, admin:quiz_quiz_statistics).
"""
from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from courses import roles
from courses.models import CourseQuiz
from grader.models import RegradeBatch, Submission
from quiz.models import Item, Quiz

from .gradebook import gradebook_csv
from .regrading import regrade_progress, regrade_rows
from .statistics import item_statistics, quiz_statistics

# ---------------------------------------------------------------- regrades


def regrade_confirmation(request: HttpRequest, submissions: QuerySet[Submission], label: str,
                         opts: Any) -> TemplateResponse:
    """Before a regrade starts: how many submissions it will grade again (those being graded are left out)."""
    graded = submissions.exclude(status__in=Submission.PENDING)
    context = {
        **admin.site.each_context(request), "opts": opts, "title": "Regrade submissions?", "label": label,
        "count": graded.count(), "items": sorted(set(graded.values_list("item__slug", flat=True)))[:20],
        "action": request.POST.get("action", ""), "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
    }
    return TemplateResponse(request, "admin/grader/submission/regrade_confirm.html", context)


def regrade_started(request: HttpRequest, batch: RegradeBatch) -> HttpResponse:
    """Say what a regrade action did and go to its progress page."""
    if not batch.total:
        messages.warning(request, "Nothing to regrade: the selection has no graded submissions.")
    return HttpResponseRedirect(reverse("admin:grader_submission_regrade", args=[batch.pk]))


def followed_batch(request: HttpRequest, batch_id: int) -> RegradeBatch:
    """A batch the viewer may follow: one with submissions of the courses they staff (else PermissionDenied)."""
    batch = get_object_or_404(RegradeBatch, pk=batch_id)
    gradings = roles.staff_scope(user=request.user, queryset=batch.gradings.all(), course_field="submission__course")
    if not gradings.exists() and batch.total:
        raise PermissionDenied
    return batch


def regrade_page(request: HttpRequest, batch: RegradeBatch, *, admin_site: admin.AdminSite,
                 opts: Any) -> TemplateResponse:
    """The progress of one regrade, with each submission's verdict before and after."""
    progress = regrade_progress(batch=batch)
    context = {
        **admin_site.each_context(request), "opts": opts, "title": f"Regrade #{batch.pk}",
        "batch": batch, "progress": progress,
        "rows": [row for row in regrade_rows(batch=batch)
                 if roles.is_course_staff(user=request.user, course_id=row.submission.course_id)],
        "percent": round(100 * progress.finished / progress.total) if progress.total else 100,
        "progress_url": reverse("admin:grader_submission_regrade_progress", args=[batch.pk]),
    }
    return TemplateResponse(request, "admin/grader/submission/regrade_progress.html", context)


def regrade_progress_response(batch: RegradeBatch) -> JsonResponse:
    """{batch, total, finished, done, statuses}: polled by the progress page."""
    return JsonResponse(regrade_progress(batch=batch).as_dict())


# ---------------------------------------------------------------- the gradebook


def gradebook_response(course_quizzes: QuerySet[CourseQuiz]) -> HttpResponse:
    response = HttpResponse(gradebook_csv(course_quizzes=course_quizzes), content_type="text/csv; charset=utf-8")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="gradebook-{stamp}.csv"'
    return response


def gradebook_download(request: HttpRequest) -> HttpResponse:
    """The gradebook CSV of the courses the viewer staffs: all of them, or those given as ?course=ID, and
    all their quizzes or those given as ?quiz=ID (both repeatable)."""
    course_quizzes = roles.staff_scope(user=request.user, queryset=CourseQuiz.objects.all())
    courses = [int(v) for v in request.GET.getlist("course") if v.isdigit()]
    if courses:
        course_quizzes = course_quizzes.filter(course_id__in=courses)
    ids = [int(v) for v in request.GET.getlist("quiz") if v.isdigit()]
    if ids:
        course_quizzes = course_quizzes.filter(quiz_id__in=ids)
    return gradebook_response(course_quizzes)


def quizzes_gradebook(request: HttpRequest, quizzes: QuerySet[Quiz]) -> HttpResponse:
    """The gradebook CSV of some quizzes, in the courses the viewer staffs."""
    course_quizzes = CourseQuiz.objects.filter(quiz__in=quizzes)
    return gradebook_response(roles.staff_scope(user=request.user, queryset=course_quizzes))


# ---------------------------------------------------------------- statistics


def _chart(rows: list[tuple[str, float, str]], *, scale: float, bar_class: str) -> dict[str, Any]:
    """Coordinates of a horizontal bar chart (drawn as inline SVG by the template)."""
    label_width, bar_width, row_height = 200, 300, 24
    bars = []
    for index, (label, value, text) in enumerate(rows):
        width = bar_width * value / scale if scale else 0
        y = index * row_height
        bars.append({"label": label if len(label) <= 30 else label[:29] + "…", "y": f"{y + 5}",
                     "text_y": f"{y + 16}", "width": f"{width:.1f}", "text": text,
                     "text_x": f"{label_width + width + 6:.1f}"})
    return {"bars": bars, "label_width": label_width, "label_x": label_width - 8, "bar_width": bar_width,
            "width": label_width + bar_width + 70, "height": max(1, len(rows)) * row_height + 4,
            "bar_class": bar_class}


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def quiz_statistics_page(request: HttpRequest, quiz: Quiz, *, admin_site: admin.AdminSite,
                         opts: Any) -> TemplateResponse:
    """Attempts, learners, pass rate, median attempts to pass, most failing check and most frequent error of
    a quiz and each of its items, over the courses the viewer staffs (or the one given as ?course=ID), as a
    table and bar charts."""
    courses = roles.staff_courses(user=request.user)
    if request.GET.get("course", "").isdigit():
        courses = courses.filter(pk=int(request.GET["course"]))
    stats = quiz_statistics(quiz=quiz, courses=courses)
    most_attempts = max((row.stats.attempts for row in stats.items), default=0)
    context = {
        **admin_site.each_context(request), "opts": opts, "original": quiz,
        "title": f"Statistics: {quiz.title}", "stats": stats,
        "pass_chart": _chart([(r.item.slug, r.stats.pass_rate or 0.0, _percent(r.stats.pass_rate))
                              for r in stats.items], scale=1.0, bar_class="bar-pass"),
        "attempts_chart": _chart([(r.item.slug, float(r.stats.attempts), str(r.stats.attempts))
                                  for r in stats.items], scale=float(most_attempts), bar_class="bar-attempts"),
        "submissions_url": reverse("admin:grader_submission_changelist"),
        "gradebook_url": reverse("admin:grader_submission_gradebook") + f"?quiz={quiz.pk}",
    }
    return TemplateResponse(request, "admin/quiz/quiz/statistics.html", context)


def item_statistics_line(item: Item) -> str:
    """An item's statistics in one line, for its admin page."""
    s = item_statistics(item=item)
    if not s.attempts:
        return "No attempts yet."
    parts = [f"{s.attempts} attempt(s) by {s.learners} learner(s), {s.passed} passed ({_percent(s.pass_rate)})"]
    if s.median_attempts_to_pass is not None:
        parts.append(f"median {s.median_attempts_to_pass:g} attempt(s) to pass")
    if s.failing_check:
        parts.append(f"most failing check: {s.failing_check[0]} ({s.failing_check[1]}×)")
    if s.frequent_error:
        parts.append(f"most frequent error: {s.frequent_error[0]} ({s.frequent_error[1]}×)")
    return "; ".join(parts)
