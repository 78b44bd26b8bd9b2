"""Reads of submissions, always scoped to what the viewer may see, and a learner's progress through items."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from courses import roles
from courses.models import CourseQuiz
from courses.policy import Policy
from quiz.models import Item

from .models import Submission
from .sandbox import ATTEMPT_VERDICTS, VERDICTS

# Verdicts that count as an attempt: the code (or answer) was judged.
ATTEMPT_STATUSES = ATTEMPT_VERDICTS
# Verdicts that give the attempt back: the grader refused the code unrun, or failed.
FREE_STATUSES = tuple(v for v in VERDICTS if v not in ATTEMPT_VERDICTS)


def submission_list(*, user: Any, item: str | None = None, status: str | None = None,
                    learner: str | None = None, course: str | None = None) -> QuerySet[Submission]:
    """A learner's own submissions; for a course's instructors and TAs, also those of the courses they
    staff (filterable by learner). No one sees another course's learners."""
    submissions = Submission.objects.select_related("item", "user", "course")
    if user.is_superuser:
        visible = Q()
    else:
        visible = Q(user=user) | Q(course__in=roles.staff_courses(user=user))
    submissions = submissions.filter(visible)
    if learner:
        submissions = submissions.filter(user__username=learner)
    if course:
        submissions = submissions.filter(course__slug=course)
    if item:
        submissions = submissions.filter(item__slug=item)
    if status:
        submissions = submissions.filter(status=status)
    return submissions.order_by("-created_at", "-id")


def submission_get(*, user: Any, pk: int) -> Submission | None:
    """The submission, if submission_list would show it to the user. Read by its key and judged on the row: the
    scoped list's query (an OR over a join to the staffed courses) cost a third of the web tier's CPU in a
    deadline rush, where every verdict is read this way."""
    try:
        submission = Submission.objects.select_related("item", "user", "course").get(pk=pk)
    except Submission.DoesNotExist:
        return None
    if user.is_superuser or (user.is_authenticated and submission.user_id == user.pk) or roles.is_course_staff(
            user=user, course_id=submission.course_id):
        return submission
    return None


def feedback_for(*, submission: Submission, user: Any) -> str:
    """How much of a verdict the viewer sees: "full" (the course's staff always), "pass_fail" or "hidden"
    (until the due date), as the course quiz's policy says."""
    if roles.is_course_staff(user=user, course_id=submission.course_id):
        return "full"
    course_quiz = CourseQuiz.objects.filter(course_id=submission.course_id, quiz_id=submission.item.quiz_id).first()
    if course_quiz is None:  # the quiz left the course: its policy no longer holds anything back
        return "full"
    return Policy.of(course_quiz, submission.item).feedback_shown(timezone.now())


def visible_checks(*, submission: Submission, user: Any, feedback: str = "full") -> list[dict[str, Any]]:
    """Per-check results as the viewer may see them: hidden checks keep only their outcome for learners;
    none at all when the course shows pass/fail only or holds feedback back."""
    if feedback != "full":
        return []
    show_all = roles.is_course_staff(user=user, course_id=submission.course_id)
    results = []
    hidden_number = 0
    for check in submission.checks:
        if check.get("hidden") and not show_all:
            hidden_number += 1
            results.append({"name": f"Hidden check {hidden_number}", "passed": check["passed"],
                            "message": "" if check["passed"] else "A hidden check did not pass."})
        else:
            shown = {"name": check["name"], "passed": check["passed"], "message": check["message"]}
            if "graph" in check:  # graph checks: the learner's graph (and the reference's, if the item reveals it)
                shown["graph"] = check["graph"]
            if "choice" in check:  # choice items: which answer the feedback is about (None: "missing answers")
                shown["choice"] = check["choice"]
            results.append(shown)
    return results


# A learner's progress ------------------------------------------------------------


@dataclass
class ItemProgress:
    attempts: int = 0
    best_score: float | None = None
    passed: bool = False

    @property
    def state(self) -> str:
        return "passed" if self.passed else "attempted" if self.attempts else "not started"


def item_progress(*, user: Any, items: list[Item], course_id: int | None = None) -> dict[int, ItemProgress]:
    """Graded attempts (as the course policy counts them: numbered, not refused by the grader; pending ones
    included), best score after penalties and passed flag of one learner for each item, in one course
    (or across all of them)."""
    progress = {item.pk: ItemProgress() for item in items}
    if not user.is_authenticated or not items:
        return progress
    rows = Submission.objects.filter(user=user, item_id__in=progress, attempt__isnull=False).exclude(
        status__in=FREE_STATUSES)
    if course_id is not None:
        rows = rows.filter(course_id=course_id)
    rows = rows.values("item_id").annotate(attempts=Count("id"), best=Max("final_score"),
                                           passed=Count("id", filter=Q(status="passed")))
    for row in rows:
        progress[row["item_id"]] = ItemProgress(row["attempts"], row["best"], row["passed"] > 0)
    return progress


def version_note(graded_version: int | None, current_version: int) -> str:
    if graded_version is None or graded_version == current_version:
        return ""
    return f"graded against item version {graded_version}, now version {current_version}"
