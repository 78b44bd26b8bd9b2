"""Courses in the instructor panel: members and their roles, quizzes with their dates and policy.

Each instructor sees the courses they staff; only a course's instructors (and superusers) change it, its
teaching assistants only look. A superuser creates courses; an instructor who creates one becomes its
instructor.
"""
from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from . import roles
from .models import Course, CourseQuiz, Membership
from .services import membership_ensure


def _instructs(request: HttpRequest, course: Course | None) -> bool:
    if request.user.is_superuser:
        return True
    if course is None:
        return True  # the list itself: per-row rights are checked on each course
    return Membership.objects.filter(course=course, user=request.user, role=Membership.Role.INSTRUCTOR).exists()


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "role", "source", "created_at")
    readonly_fields = ("source", "created_at")
    raw_id_fields = ("user",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and _instructs(request, obj)

    has_add_permission = has_change_permission
    has_delete_permission = has_change_permission


class CourseQuizInline(admin.StackedInline):
    model = CourseQuiz
    extra = 0
    fieldsets = (
        (None, {"fields": ("quiz", "order", ("opens_at", "due_at"))}),
        ("Policy", {"fields": (("max_attempts", "penalties", "cooldown_seconds"), ("score_counts", "late",
                                                                                   "late_penalty"),
                               "time_limit_minutes", ("feedback", "reveal", "reveal_attempts"))}),
    )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and _instructs(request, obj)

    has_add_permission = has_change_permission
    has_delete_permission = has_change_permission


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ("title", "slug", "join_code", "self_enrol", "learners", "quizzes", "reports")
    search_fields = ("title", "slug")
    prepopulated_fields = {"slug": ("title",)}
    inlines = (CourseQuizInline, MembershipInline)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Course]:
        courses = roles.staff_courses(user=request.user)
        return courses.annotate(
            learner_count=Count("memberships", filter=Q(memberships__role=Membership.Role.LEARNER), distinct=True),
            quiz_count=Count("course_quizzes", distinct=True))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and _instructs(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and _instructs(request, obj)

    def save_model(self, request: HttpRequest, obj: Course, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change and not request.user.is_superuser:
            membership_ensure(course=obj, user=request.user, role=Membership.Role.INSTRUCTOR, source="admin")

    @admin.display(description="learners", ordering="learner_count")
    def learners(self, obj: Course) -> int:
        return obj.learner_count  # type: ignore[attr-defined]  # annotated by get_queryset

    @admin.display(description="quizzes", ordering="quiz_count")
    def quizzes(self, obj: Course) -> int:
        return obj.quiz_count  # type: ignore[attr-defined]  # annotated by get_queryset

    @admin.display(description="reports")
    def reports(self, obj: Course) -> SafeString:
        gradebook = reverse("admin:grader_submission_gradebook") + f"?course={obj.pk}"
        submissions = reverse("admin:grader_submission_changelist") + f"?course={obj.pk}"
        return format_html('<a href="{}">gradebook (CSV)</a> · <a href="{}">submissions</a>', gradebook, submissions)
