"""The instructor panel for submissions: a read-only list and view, and the grading history; the regrade
action and the pages of the reports (a regrade's progress, the gradebook download) route to reports/."""
from __future__ import annotations

import logging
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from courses import roles
from quiz.models import Quiz
from reports import views as reports
from reports.regrading import submissions_regrade

from . import selectors
from .models import RegradeBatch, Submission, SubmissionGrading

logger = logging.getLogger(__name__)
REGRADE_PERMISSION = "grader.regrade_submission"
PYGMENTS_CSS = "quiz/css/pygments.css"


def highlighted_python(code: str) -> SafeString:
    """Python source as Pygments HTML (classes of quiz/css/pygments.css), with line numbers."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    html = highlight(code or "", PythonLexer(), HtmlFormatter(cssclass="highlight", linenos="table"))
    return mark_safe(html)  # noqa: S308 - Pygments escapes the source


def checks_table(checks: list[dict[str, Any]]) -> SafeString:
    """Per-check results as an HTML table (instructors see hidden checks too)."""
    if not checks:
        return format_html("<p>{}</p>", "No check results.")
    rows = format_html_join(
        "", '<tr class="{}"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class="message">{}</td></tr>',
        ((("check-passed" if c.get("passed") else "check-failed"), c.get("name", ""),
          "✓ passed" if c.get("passed") else "✗ failed", c.get("weight", 1), "hidden" if c.get("hidden") else "",
          c.get("message", "")) for c in checks),
    )
    return format_html('<table class="grader-checks"><thead><tr><th>Check</th><th>Result</th><th>Weight</th>'
                       "<th></th><th>Message</th></tr></thead><tbody>{}</tbody></table>", rows)


def _pre(text: str) -> SafeString:
    return format_html('<pre class="grader-output">{}</pre>', text) if text else format_html("{}", "–")


def _score(score: float | None) -> str:
    return "–" if score is None else f"{score:.0%}"


class QuizFilter(admin.SimpleListFilter):
    title = "quiz"
    parameter_name = "quiz"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(q.pk), q.title) for q in Quiz.objects.order_by("order", "slug")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Submission]) -> QuerySet[Submission]:
        return queryset.filter(item__quiz_id=self.value()) if self.value() else queryset


class CourseFilter(admin.SimpleListFilter):
    title = "course"
    parameter_name = "course"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(c.pk), c.title) for c in roles.staff_courses(user=request.user)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Submission]) -> QuerySet[Submission]:
        return queryset.filter(course_id=self.value()) if self.value() else queryset


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Submission)
class SubmissionAdmin(ReadOnlyAdmin):
    list_display = ("id", "learner", "course", "item_link", "verdict", "score_percent", "penalty_shown",
                    "final_percent", "late", "graded_version", "created_at")
    list_display_links = ("id",)
    list_filter = (CourseFilter, QuizFilter, ("item", admin.RelatedOnlyFieldListFilter),
                   ("user", admin.RelatedOnlyFieldListFilter), "status", "late", ("created_at", admin.DateFieldListFilter))
    search_fields = ("user__username", "item__slug", "code")
    list_select_related = ("user", "item", "item__quiz", "course")
    list_per_page = 50
    actions = ("regrade_selected",)
    fieldsets = (
        (None, {"fields": ("learner", "course", "item_link", "status", "attempt", "score_percent", "penalty_shown",
                           "final_percent", "late", "version", "timings")}),
        ("Answer", {"fields": ("code_highlighted", "selected_choices")}),
        ("Verdict", {"fields": ("checks_results", "stdout_output", "error_output")}),
        ("History", {"fields": ("history",)}),
    )
    readonly_fields = ("learner", "course", "item_link", "status", "attempt", "score_percent", "penalty_shown",
                       "final_percent", "late", "version", "timings", "code_highlighted",
                       "selected_choices", "checks_results", "stdout_output", "error_output", "history")

    class Media:
        css = {"all": (PYGMENTS_CSS, "grader/admin.css")}

    # ---- columns and read-only fields
    @admin.display(description="learner", ordering="user__username")
    def learner(self, obj: Submission) -> str:
        return obj.user.get_username()

    @admin.display(description="item", ordering="item__slug")
    def item_link(self, obj: Submission) -> SafeString:
        return format_html('<a href="{}">{}</a>', reverse("admin:quiz_item_change", args=[obj.item_id]), obj.item.slug)

    @admin.display(description="score", ordering="score")
    def score_percent(self, obj: Submission) -> str:
        return _score(obj.score)

    @admin.display(description="penalty", ordering="penalty")
    def penalty_shown(self, obj: Submission) -> str:
        return f"{obj.penalty:g}%" if obj.penalty else "–"

    @admin.display(description="counts", ordering="final_score")
    def final_percent(self, obj: Submission) -> str:
        return _score(obj.final_score)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Submission]:
        return roles.staff_scope(user=request.user, queryset=super().get_queryset(request))

    @admin.display(description="status", ordering="status")
    def verdict(self, obj: Submission) -> SafeString:
        return format_html('<span class="verdict verdict-{}">{}</span>', obj.status, obj.get_status_display())

    @admin.display(description="item version", ordering="item_version")
    def graded_version(self, obj: Submission) -> SafeString:
        if obj.item_version is None:
            return format_html("{}", "–")
        note = selectors.version_note(obj.item_version, obj.item.version)
        if note:
            return format_html('<span class="version-note" title="{}">v{} (now v{})</span>', note, obj.item_version,
                               obj.item.version)
        return format_html("v{}", obj.item_version)

    @admin.display(description="item version")
    def version(self, obj: Submission) -> str:
        note = selectors.version_note(obj.item_version, obj.item.version)
        if note:
            return note
        return "–" if obj.item_version is None else f"version {obj.item_version} (current)"

    @admin.display(description="timings")
    def timings(self, obj: Submission) -> str:
        parts = [f"created {timezone.localtime(obj.created_at):%Y-%m-%d %H:%M:%S}"]
        if obj.finished_at:
            parts.append(f"graded {timezone.localtime(obj.finished_at):%Y-%m-%d %H:%M:%S}")
        if obj.duration_ms is not None:
            parts.append(f"ran {obj.duration_ms:.0f} ms")
        parts.append(f"{obj.deliveries} deliver{'y' if obj.deliveries == 1 else 'ies'}")
        return ", ".join(parts)

    @admin.display(description="code")
    def code_highlighted(self, obj: Submission) -> SafeString:
        if not obj.code:
            return format_html("{}", "–")
        return format_html('<div class="grader-code">{}</div>', highlighted_python(obj.code))

    @admin.display(description="chosen answers")
    def selected_choices(self, obj: Submission) -> SafeString:
        if not obj.selected:
            return format_html("{}", "–")
        texts = dict(obj.item.choices.values_list("pk", "text"))
        return format_html("<ol>{}</ol>", format_html_join(
            "", "<li>{}</li>", ((texts.get(pk, f"choice {pk} (deleted since)"),) for pk in obj.selected)))

    @admin.display(description="checks")
    def checks_results(self, obj: Submission) -> SafeString:
        return checks_table(obj.checks)

    @admin.display(description="output")
    def stdout_output(self, obj: Submission) -> SafeString:
        return _pre(obj.stdout)

    @admin.display(description="error")
    def error_output(self, obj: Submission) -> SafeString:
        if not obj.error:
            return format_html("{}", "–")
        line = format_html(" <span>(line {})</span>", obj.error_line) if obj.error_line else ""
        return format_html("{}{}", _pre(obj.error), line)

    @admin.display(description="earlier verdicts")
    def history(self, obj: Submission) -> SafeString:
        gradings = list(obj.gradings.order_by("-replaced_at", "-id"))
        if not gradings:
            return format_html("{}", "None: this is its only verdict.")
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (g.get_status_display(), _score(g.score),
             f"v{g.item_version}" if g.item_version is not None else "–",
             f"{timezone.localtime(g.graded_at):%Y-%m-%d %H:%M}" if g.graded_at else "–",
             format_html('<a href="{}">regrade #{}</a>', reverse("admin:grader_submission_regrade", args=[g.batch_id]),
                         g.batch_id))
            for g in gradings))
        return format_html('<table class="grader-history"><thead><tr><th>Status</th><th>Score</th><th>Item version'
                           "</th><th>Graded</th><th>Replaced by</th></tr></thead><tbody>{}</tbody></table>", rows)

    # ---- regrade
    def has_regrade_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REGRADE_PERMISSION)

    @admin.action(description="Regrade selected submissions (against the items as they are now)",
                  permissions=["regrade"])
    def regrade_selected(self, request: HttpRequest, queryset: QuerySet[Submission]) -> HttpResponse:
        label = f"{queryset.count()} selected submission(s)"
        if request.POST.get("confirm") != "yes":
            return reports.regrade_confirmation(request, queryset, label, self.model._meta)
        batch = submissions_regrade(submissions=queryset, requested_by=request.user, label=label)
        return reports.regrade_started(request, batch)

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("regrade/<int:batch_id>/", wrap(self.regrade_view), name="grader_submission_regrade"),
            path("regrade/<int:batch_id>/progress.json", wrap(self.regrade_progress_view),
                 name="grader_submission_regrade_progress"),
            path("gradebook.csv", wrap(self.gradebook_view), name="grader_submission_gradebook"),
            *super().get_urls(),
        ]

    def _regrade_batch(self, request: HttpRequest, batch_id: int) -> RegradeBatch:
        """A batch the viewer may follow: one with submissions of the courses they staff."""
        if not (self.has_regrade_permission(request) or self.has_view_permission(request)):
            raise PermissionDenied
        return reports.followed_batch(request, batch_id)

    def regrade_view(self, request: HttpRequest, batch_id: int) -> TemplateResponse:
        """The progress of one regrade, with each submission's verdict before and after."""
        return reports.regrade_page(request, self._regrade_batch(request, batch_id), admin_site=self.admin_site,
                                    opts=self.model._meta)

    def regrade_progress_view(self, request: HttpRequest, batch_id: int) -> JsonResponse:
        """{batch, total, finished, done, statuses}: polled by the progress page."""
        return reports.regrade_progress_response(self._regrade_batch(request, batch_id))

    # ---- gradebook
    def gradebook_view(self, request: HttpRequest) -> HttpResponse:
        """The gradebook CSV of the courses the viewer staffs (?course=ID and ?quiz=ID narrow it)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return reports.gradebook_download(request)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra = {"gradebook_url": reverse("admin:grader_submission_gradebook"), **(extra_context or {})}
        return super().changelist_view(request, extra)


@admin.register(SubmissionGrading)
class SubmissionGradingAdmin(ReadOnlyAdmin):
    """Verdicts replaced by a regrade."""

    list_display = ("submission_link", "learner", "item", "status", "score_percent", "item_version", "graded_at",
                    "batch_link", "replaced_at")
    list_filter = ("status", ("replaced_at", admin.DateFieldListFilter))
    search_fields = ("submission__user__username", "submission__item__slug")
    list_select_related = ("submission__user", "submission__item")

    def get_queryset(self, request: HttpRequest) -> QuerySet[SubmissionGrading]:
        return roles.staff_scope(user=request.user, queryset=super().get_queryset(request),
                                 course_field="submission__course")

    fields = ("submission_link", "learner", "item", "status", "score_percent", "item_version", "graded_at",
              "batch_link", "replaced_at", "checks_results", "stdout_output", "error_output")
    readonly_fields = fields

    class Media:
        css = {"all": ("grader/admin.css",)}

    @admin.display(description="submission", ordering="submission_id")
    def submission_link(self, obj: SubmissionGrading) -> SafeString:
        url = reverse("admin:grader_submission_change", args=[obj.submission_id])
        return format_html('<a href="{}">#{}</a>', url, obj.submission_id)

    @admin.display(description="learner")
    def learner(self, obj: SubmissionGrading) -> str:
        return obj.submission.user.get_username()

    @admin.display(description="item")
    def item(self, obj: SubmissionGrading) -> str:
        return obj.submission.item.slug

    @admin.display(description="score", ordering="score")
    def score_percent(self, obj: SubmissionGrading) -> str:
        return _score(obj.score)

    @admin.display(description="regrade")
    def batch_link(self, obj: SubmissionGrading) -> SafeString:
        url = reverse("admin:grader_submission_regrade", args=[obj.batch_id])
        return format_html('<a href="{}">#{}</a>', url, obj.batch_id)

    @admin.display(description="checks")
    def checks_results(self, obj: SubmissionGrading) -> SafeString:
        return checks_table(obj.checks)

    @admin.display(description="output")
    def stdout_output(self, obj: SubmissionGrading) -> SafeString:
        return _pre(obj.stdout)

    @admin.display(description="error")
    def error_output(self, obj: SubmissionGrading) -> SafeString:
        return _pre(obj.error)
