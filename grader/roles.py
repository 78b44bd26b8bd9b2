"""The `instructors` group, with exactly the permissions the instructor panel needs.

Synced after every `migrate` (and every `flush`, so test databases have it too):
the group's permissions are set to PERMISSIONS and nothing else, so a
permission granted by hand to the whole group is taken away again. Give a
single instructor more (say, managing users) on the user, not on the group.
"""
from __future__ import annotations

from typing import Any

from .selectors import INSTRUCTORS_GROUP

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
