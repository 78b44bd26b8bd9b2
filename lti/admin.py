"""The LTI tool in the admin. Platforms and their deployments are registered under django-lti's own
"LTI registrations"; here: the platform courses and their Course, the quiz links, what scores were
sent, and the signing keys (public halves only)."""
from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from lti_tool.models import Key

from .models import CourseContext, QuizLink, ScoreSent
from .roster import RosterUnavailable, roster_sync
from .tool import PlatformUnavailable


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(CourseContext)
class CourseContextAdmin(ReadOnly):
    list_display = ["context_title", "course", "platform", "roster_synced_at"]
    list_select_related = ["context__deployment__registration", "course"]
    search_fields = ["context__title", "context__label", "course__slug", "course__title"]
    actions = ["sync_roster"]

    @admin.display(description="Platform course", ordering="context__title")
    def context_title(self, obj: CourseContext) -> str:
        return str(obj.context)

    @admin.display(description="Platform")
    def platform(self, obj: CourseContext) -> str:
        return str(obj.context.deployment.registration)

    @admin.action(description="Enrol the members listed by the platform (roster sync)")
    def sync_roster(self, request: HttpRequest, queryset: QuerySet[CourseContext]) -> None:
        for course_context in queryset.select_related("course", "context__deployment__registration"):
            try:
                result = roster_sync(course_context=course_context)
            except (RosterUnavailable, PlatformUnavailable) as exc:
                self.message_user(request, f"{course_context.course}: {exc}", messages.ERROR)
                continue
            except Exception as exc:  # a 4xx from the platform: say so, keep going with the others
                self.message_user(request, f"{course_context.course}: the platform refused: {exc}", messages.ERROR)
                continue
            self.message_user(request, f"{course_context.course}: {result.members} members listed, "
                              f"{result.enrolled} enrolled, {result.skipped} not active.", messages.SUCCESS)


@admin.register(QuizLink)
class QuizLinkAdmin(admin.ModelAdmin):
    list_display = ["resource_link", "quiz", "created_at"]
    list_select_related = ["resource_link", "quiz"]
    readonly_fields = ["resource_link"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # links come from the platform's launches


@admin.register(ScoreSent)
class ScoreSentAdmin(ReadOnly):
    list_display = ["line_item", "user", "score", "verdict_at", "sent_at"]
    list_select_related = ["line_item", "user"]


@admin.register(Key)
class KeyAdmin(ReadOnly):
    """Signing keys: rotate with `manage.py rotate_keys`; every active key is published at /lti/jwks/."""

    list_display = ["kid", "is_active", "datetime_created"]
    fields = ["kid", "is_active", "datetime_created", "public_key"]  # never the private key
    readonly_fields = fields

    @admin.display(description="Key id (kid)")
    def kid(self, obj: Key) -> str:
        return str(obj)
