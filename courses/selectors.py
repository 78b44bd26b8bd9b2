"""Reads of courses and memberships: who takes part where, and which course quiz applies to an item.

Every scope in the product starts here: a learner sees the quizzes of their own courses (once open),
a course's staff see that course's learners, a superuser sees everything.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from quiz.models import Item, Quiz

from .models import Course, CourseQuiz, Membership, QuizStart
from .policy import Policy


class NotInCourse(Exception):
    """The item is in none of the viewer's courses (or not in the course named)."""


class WhichCourse(Exception):
    """The item is in several of the viewer's courses and none was named."""

    def __init__(self, slugs: list[str]) -> None:
        super().__init__(f"this item is in several of your courses ({', '.join(slugs)}): say which, with course=")
        self.slugs = slugs


def course_list(*, user: Any) -> QuerySet[Course]:
    """The courses a user takes part in (every course for a superuser)."""
    if not user.is_authenticated:
        return Course.objects.none()
    if user.is_superuser:
        return Course.objects.all()
    return Course.objects.filter(memberships__user=user).distinct()


def membership_get(*, user: Any, course: Course) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(user=user, course=course).first()


def course_quiz_list(*, user: Any, now: datetime | None = None) -> QuerySet[CourseQuiz]:
    """The course quizzes a user can open: learners once they open, staff always, in their own courses."""
    if not user.is_authenticated:
        return CourseQuiz.objects.none()
    now = now or timezone.now()
    rows = CourseQuiz.objects.select_related("course", "quiz")
    if user.is_superuser:
        return rows
    staff = Q(course__memberships__user=user, course__memberships__role__in=Membership.STAFF_ROLES)
    learner = Q(course__memberships__user=user, course__memberships__role=Membership.Role.LEARNER) & (
        Q(opens_at__isnull=True) | Q(opens_at__lte=now))
    return rows.filter(staff | learner).distinct()


def public_course_quizzes(*, now: datetime | None = None) -> QuerySet[CourseQuiz]:
    """The open quizzes of the courses anyone joins by signing up (what a visitor is shown)."""
    now = now or timezone.now()
    return CourseQuiz.objects.select_related("course", "quiz").filter(
        Q(opens_at__isnull=True) | Q(opens_at__lte=now), course__self_enrol=True)


def course_quiz_for(*, user: Any, item: Item | None = None, quiz: Quiz | None = None, course: str | None = None,
                    now: datetime | None = None) -> CourseQuiz:
    """The course quiz an attempt at `item` (or a visit to `quiz`) belongs to: the one course of the viewer's
    that runs its quiz, or the course named. Raises NotInCourse or WhichCourse."""
    if item is not None:
        quiz_id, what = item.quiz_id, f"the item {item.slug!r}"
    else:
        assert quiz is not None, "course_quiz_for takes an item or a quiz"
        quiz_id, what = quiz.pk, f"the quiz {quiz.slug!r}"
    rows = course_quiz_list(user=user, now=now).filter(quiz_id=quiz_id)
    if course:
        rows = rows.filter(course__slug=course)
    found = list(rows.order_by("course__slug")[:10])
    if not found:
        upcoming = _upcoming(user=user, quiz_id=quiz_id, course=course, now=now or timezone.now())
        if upcoming is not None:
            raise NotInCourse(f"{what} opens on {timezone.localtime(upcoming.opens_at):%Y-%m-%d %H:%M %Z}")
        if course:
            raise NotInCourse(f"{what} is not open to you in the course {course!r}")
        raise NotInCourse(f"{what} is not in any of your courses")
    if len(found) > 1:
        raise WhichCourse([row.course.slug for row in found])
    return found[0]


def _upcoming(*, user: Any, quiz_id: int, course: str | None, now: datetime) -> CourseQuiz | None:
    """The viewer's course quiz of this quiz that has not opened yet (to say when it opens)."""
    if not user.is_authenticated:
        return None
    rows = CourseQuiz.objects.filter(quiz_id=quiz_id, course__memberships__user=user, opens_at__gt=now)
    if course:
        rows = rows.filter(course__slug=course)
    return rows.order_by("opens_at").first()


def quiz_started_at(*, course_quiz: CourseQuiz, user: Any) -> datetime | None:
    start = QuizStart.objects.filter(course_quiz=course_quiz, user=user).first()
    return start.started_at if start else None


def policy_of(*, course_quiz: CourseQuiz, item: Item) -> Policy:
    return Policy.of(course_quiz, item)
