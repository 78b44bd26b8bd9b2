"""Reads of submissions, always scoped to what the viewer may see."""
from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from .models import Submission

INSTRUCTORS_GROUP = "instructors"


def is_instructor(user: Any) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    if not user.is_staff:
        return False
    cached = getattr(user, "_is_instructor", None)
    if cached is None:
        cached = user.groups.filter(name=INSTRUCTORS_GROUP).exists()
        user._is_instructor = cached
    return cached


def submission_list(*, user: Any, item: str | None = None, status: str | None = None,
                    learner: str | None = None) -> QuerySet[Submission]:
    """A learner's own submissions; an instructor's view of everyone's (filterable by learner)."""
    submissions = Submission.objects.select_related("item", "user")
    if is_instructor(user):
        if learner:
            submissions = submissions.filter(user__username=learner)
    else:
        submissions = submissions.filter(user=user)
    if item:
        submissions = submissions.filter(item__slug=item)
    if status:
        submissions = submissions.filter(status=status)
    return submissions.order_by("-created_at", "-id")


def submission_get(*, user: Any, pk: int) -> Submission | None:
    return submission_list(user=user).filter(pk=pk).first()


def visible_checks(*, submission: Submission, user: Any) -> list[dict[str, Any]]:
    """Per-check results as the viewer may see them: hidden checks keep only their outcome for learners."""
    show_all = is_instructor(user)
    results = []
    hidden_number = 0
    for check in submission.checks:
        if check.get("hidden") and not show_all:
            hidden_number += 1
            results.append({"name": f"Hidden check {hidden_number}", "passed": check["passed"],
                            "message": "" if check["passed"] else "A hidden check did not pass."})
        else:
            results.append({"name": check["name"], "passed": check["passed"], "message": check["message"]})
    return results
