"""Roles, in one place: who may do what.

Two kinds. Site-wide, the `instructors` group holds exactly the permissions the instructor panel needs
(PERMISSIONS). Per course, a membership's role (learner, teaching assistant, instructor): a course's
staff (instructors and TAs) see that course's learners and their work, a superuser sees every course.

The group is synced after every `migrate` (and every `flush`, so test databases have it too): its
permissions are set to PERMISSIONS and nothing else, so a permission granted by hand to the whole group
is taken away again. Give a single instructor more (say, managing users) on the user, not on the group.
"""
from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from .models import Course, Membership

INSTRUCTORS_GROUP = "instructors"

PERMISSIONS = [
    *(f"quiz.{action}_{model}" for model in ("quiz", "item", "check", "choice")
      for action in ("view", "add", "change", "delete")),
    "courses.view_course", "courses.add_course", "courses.change_course",
    *(f"courses.{action}_{model}" for model in ("membership", "coursequiz") for action in ("view", "add", "change",
                                                                                          "delete")),
    "grader.view_submission",
    "grader.regrade_submission",
    "grader.view_submissiongrading",
]


def instructors_group_sync(**kwargs: Any) -> None:
    """Create the group if needed and give it exactly PERMISSIONS (a post_migrate receiver)."""
    from django.contrib.auth.models import Group, Permission

    group, _ = Group.objects.get_or_create(name=INSTRUCTORS_GROUP)
    wanted = []
    for name in PERMISSIONS:
        app_label, codename = name.split(".")
        wanted.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    group.permissions.set(wanted)


def staff_courses(*, user: Any) -> QuerySet[Course]:
    """The courses whose learners the user may see: where they are instructor or teaching assistant."""
    if not user.is_authenticated:
        return Course.objects.none()
    if user.is_superuser:
        return Course.objects.all()
    return Course.objects.filter(memberships__user=user, memberships__role__in=Membership.STAFF_ROLES).distinct()


def is_course_staff(*, user: Any, course_id: int) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    cache = getattr(user, "_staff_course_ids", None)
    if cache is None:
        cache = set(staff_courses(user=user).values_list("pk", flat=True))
        user._staff_course_ids = cache
    return course_id in cache


def is_any_course_staff(user: Any) -> bool:
    return user.is_authenticated and (user.is_superuser or staff_courses(user=user).exists())


def staff_scope(*, user: Any, queryset: QuerySet, course_field: str = "course") -> QuerySet:
    """Rows of the courses the user staffs (every row for a superuser): no course's staff see another's."""
    if user.is_superuser:
        return queryset
    return queryset.filter(**{f"{course_field}__in": staff_courses(user=user)})
