"""Reads of submissions, always scoped to what the viewer may see, and a learner's progress through items."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, F, FilteredRelation, IntegerField, Max, OuterRef, Q, QuerySet, Value
from django.utils import timezone

from config import sql
from courses import roles
from courses.models import CourseQuiz, Membership
from courses.policy import feedback_shown
from quiz.models import Item

from .models import Submission
from .sandbox import ATTEMPT_VERDICTS, VERDICTS

# Verdicts that count as an attempt: the code (or answer) was judged.
ATTEMPT_STATUSES = ATTEMPT_VERDICTS
# Verdicts that give the attempt back: the grader refused the code unrun, or failed.
FREE_STATUSES = tuple(v for v in VERDICTS if v not in ATTEMPT_VERDICTS)


def submissions_shown_to(user: Any) -> QuerySet[Submission]:
    """Submissions (any: scope them with submission_list's rules) read with what showing one to `user` takes,
    in the same query: its item, course and learner, whether the viewer is on its course's staff, and its course
    quiz's feedback setting and due date. feedback_for and visible_checks then query nothing; without these
    (a row read otherwise) they look them up."""
    rows = Submission.objects.select_related("item", "user", "course")
    if not user.is_authenticated:
        return rows
    staff = Value(True) if user.is_superuser else Exists(Membership.objects.filter(
        course_id=OuterRef("course_id"), user_id=user.pk, role__in=Membership.STAFF_ROLES))
    # The course quiz of the submission's course and item's quiz: at most one (one assignment per course).
    quiz = FilteredRelation("course__course_quizzes",
                            condition=Q(course__course_quizzes__quiz_id=F("item__quiz_id")))
    return rows.annotate(shown_quiz=quiz).annotate(
        viewer_id=Value(user.pk, output_field=IntegerField()), viewer_staff=staff,
        quiz_feedback=F("shown_quiz__feedback"), quiz_due_at=F("shown_quiz__due_at"))


def submission_list(*, user: Any, item: str | None = None, status: str | None = None,
                    learner: str | None = None, course: str | None = None) -> QuerySet[Submission]:
    """A learner's own submissions; for a course's instructors and TAs, also those of the courses they
    staff (filterable by learner). No one sees another course's learners."""
    submissions = submissions_shown_to(user)
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
    """The submission, if submission_list would show it to the user, read by its key and judged on the row in
    one query (submissions_shown_to), with what showing it takes. (The scoped list's query, an OR over a join to
    the staffed courses, cost a third of the web tier's CPU in a deadline rush, where every verdict is read this
    way.)"""
    rows = submissions_shown_to(user).filter(pk=pk)
    try:
        submission = rows.get()
    except Submission.DoesNotExist:
        return None
    if user.is_superuser or (user.is_authenticated and submission.user_id == user.pk) or _viewer_is_staff(
            submission, user):
        return submission
    return None


_OWN_COLUMNS = tuple(f.attname for f in Submission._meta.concrete_fields if not f.is_relation and not f.primary_key)


def submission_refreshed(submission: Submission, *, status_only: bool = False) -> Submission:
    """The same submission with its own columns read again (status, verdict, times: one plain query by key), or
    with status_only its status alone (a look while it waits: the code and the verdict are the row's bulk).
    Its related rows and what submissions_shown_to or submission_shown_as noted on it are kept: a verdict changes
    none of them, and the visibility judged on them still holds (a submission changes neither owner nor
    course). In SQL (config.sql says why): a long-poll reads it at every look."""
    return sql.refresh(submission, ("status",) if status_only else _OWN_COLUMNS)


def submission_shown_as(submission: Submission, *, user: Any, staff: bool,
                        course_quiz: CourseQuiz | None) -> Submission:
    """Note on a submission what submissions_shown_to reads with it, when the caller knows it already (the
    service that stored it, having resolved the course quiz and the learner's role)."""
    submission.viewer_id = user.pk  # type: ignore[attr-defined]
    submission.viewer_staff = staff  # type: ignore[attr-defined]
    submission.quiz_feedback = course_quiz.feedback if course_quiz else None  # type: ignore[attr-defined]
    submission.quiz_due_at = course_quiz.due_at if course_quiz else None  # type: ignore[attr-defined]
    return submission


def _shown_to(submission: Submission, user: Any) -> bool:
    """Whether the submission carries what showing it to this user takes (submissions_shown_to)."""
    return user.is_authenticated and getattr(submission, "viewer_id", None) == user.pk


def _viewer_is_staff(submission: Submission, user: Any) -> bool:
    if _shown_to(submission, user):
        return bool(getattr(submission, "viewer_staff"))
    return roles.is_course_staff(user=user, course_id=submission.course_id)


def feedback_for(*, submission: Submission, user: Any) -> str:
    """How much of a verdict the viewer sees: "full" (the course's staff always), "pass_fail" or "hidden"
    (until the due date), as the course quiz's policy says."""
    if _viewer_is_staff(submission, user):
        return "full"
    if _shown_to(submission, user):
        feedback, due_at = getattr(submission, "quiz_feedback"), getattr(submission, "quiz_due_at")
    else:
        course_quiz = CourseQuiz.objects.filter(course_id=submission.course_id,
                                                quiz_id=submission.item.quiz_id).first()
        feedback, due_at = (course_quiz.feedback, course_quiz.due_at) if course_quiz else (None, None)
    if feedback is None:  # the quiz left the course: its policy no longer holds anything back
        return "full"
    return feedback_shown(feedback=feedback, due_at=due_at, now=timezone.now())


def visible_checks(*, submission: Submission, user: Any, feedback: str = "full") -> list[dict[str, Any]]:
    """Per-check results as the viewer may see them: hidden checks keep only their outcome for learners;
    none at all when the course shows pass/fail only or holds feedback back."""
    if feedback != "full":
        return []
    show_all = _viewer_is_staff(submission, user)
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
