"""Reads of courses and memberships: who takes part where, and which course quiz applies to an item.

Every scope in the product starts here: a learner sees the quizzes of their own courses (once open),
a course's staff see that course's learners, a superuser sees everything.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connections
from django.db.models import Q, QuerySet
from django.db.transaction import TransactionManagementError
from django.utils import timezone

from config import sql
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
        raise _not_found(user=user, quiz_id=quiz_id, what=what, course=course, now=now or timezone.now())
    if len(found) > 1:
        raise WhichCourse([row.course.slug for row in found])
    return found[0]


def _not_found(*, user: Any, quiz_id: int, what: str, course: str | None, now: datetime) -> NotInCourse:
    """Why the viewer has no course quiz of this quiz (open to them, in the course named)."""
    upcoming = _upcoming(user=user, quiz_id=quiz_id, course=course, now=now)
    if upcoming is not None:
        return NotInCourse(f"{what} opens on {timezone.localtime(upcoming.opens_at):%Y-%m-%d %H:%M %Z}")
    if course:
        return NotInCourse(f"{what} is not open to you in the course {course!r}")
    return NotInCourse(f"{what} is not in any of your courses")


@dataclass(frozen=True)
class Enrolment:
    """Where a learner's attempt at an item goes: the course quiz (its course loaded), whether they are on that
    course's staff, and when they started the quiz (a timed one's clock; None: not started)."""

    course_quiz: CourseQuiz
    staff: bool
    started_at: datetime | None


def enrolment_lock(*, user: Any, item: Item, course: str | None = None, now: datetime | None = None) -> Enrolment:
    """The course quiz an attempt at `item` belongs to (as course_quiz_for finds it), the learner's role in its
    course and their start of it, read in one query that also takes the learner's lock for the course: their
    membership row, FOR UPDATE until the transaction ends, so one learner's concurrent attempts in one course
    queue up (two cannot both take the last attempt). Call it inside a transaction. Raises NotInCourse or
    WhichCourse.

    Why one query: this runs for every attempt, and the resolution, the lock, the role and the start used to be
    four; a deadline rush spends the web tier's CPU compiling queries, so the one query is SQL (_enrolments).
    """
    now = now or timezone.now()
    if not user.is_authenticated or user.is_superuser:
        # A superuser reaches every course quiz, member or not: resolved as the pages do, then locked apart.
        # (Ordered by pk: the model's ordering joins the user, and FOR UPDATE would lock the user's row too.)
        course_quiz = course_quiz_for(user=user, item=item, course=course, now=now)
        Membership.objects.select_for_update().filter(user=user, course_id=course_quiz.course_id).order_by(
            "pk").first()
        return Enrolment(course_quiz=course_quiz, staff=user.is_superuser,
                         started_at=quiz_started_at(course_quiz=course_quiz, user=user))
    found = _enrolments(user_id=user.pk, quiz_id=item.quiz_id, course=course, now=now)
    if not found:
        raise _not_found(user=user, quiz_id=item.quiz_id, what=f"the item {item.slug!r}", course=course, now=now)
    if len(found) > 1:
        raise WhichCourse([course_quiz.course.slug for course_quiz, _, _ in found])
    course_quiz, role, started_at = found[0]
    return Enrolment(course_quiz=course_quiz, staff=role in Membership.STAFF_ROLES, started_at=started_at)


def _enrolments(*, user_id: int, quiz_id: int, course: str | None, now: datetime,
                using: str = "default") -> list[tuple[CourseQuiz, str, datetime | None]]:
    """enrolment_lock's query, in SQL (config.sql says why): each of the learner's course quizzes of this quiz
    that they may answer, as (course quiz with its course, role, quiz start), at most 10, by course slug.

    Visible as course_quiz_list has it: staff always, learners once the quiz opens. The query starts from the
    membership, the row to lock: FOR UPDATE OF it alone, not the course row every learner shares.
    """
    connection = connections[using]
    if not connection.in_atomic_block:  # as Django's select_for_update: a lock outside one would be let go at once
        raise TransactionManagementError("enrolment_lock takes a lock: call it inside a transaction")
    named = f" AND {sql.column(Course, 'slug', 'c')} = %s" if course else ""
    lock = " FOR UPDATE OF m" if connection.features.has_select_for_update_of else ""
    query = (
        f"SELECT {sql.columns(CourseQuiz, 'cq')}, {sql.columns(Course, 'c')}, {sql.column(Membership, 'role', 'm')},"
        f" (SELECT s.{sql.column(QuizStart, 'started_at')} FROM {sql.table(QuizStart, 's')}"
        f"  WHERE s.{sql.column(QuizStart, 'course_quiz')} = cq.{sql.column(CourseQuiz, 'id')}"
        f"  AND s.{sql.column(QuizStart, 'user')} = %s)"
        f" FROM {sql.table(Membership, 'm')}"
        f" JOIN {sql.table(Course, 'c')} ON c.{sql.column(Course, 'id')} = m.{sql.column(Membership, 'course')}"
        f" JOIN {sql.table(CourseQuiz, 'cq')} ON cq.{sql.column(CourseQuiz, 'course')} = m.{sql.column(Membership, 'course')}"
        f" WHERE m.{sql.column(Membership, 'user')} = %s AND cq.{sql.column(CourseQuiz, 'quiz')} = %s"
        f" AND (m.{sql.column(Membership, 'role')} IN (%s, %s) OR cq.{sql.column(CourseQuiz, 'opens_at')} IS NULL"
        f"      OR cq.{sql.column(CourseQuiz, 'opens_at')} <= %s){named}"
        f" ORDER BY {sql.column(Course, 'slug', 'c')} LIMIT 10{lock}")
    params = [user_id, user_id, quiz_id, *Membership.STAFF_ROLES, sql.param(CourseQuiz, "opens_at", now, using)]
    found = []
    for values in sql.fetch(query, [*params, course] if course else params, using):
        course_quiz_values, course_values, rest = sql.split(values, CourseQuiz, Course)
        course_quiz = sql.instance(CourseQuiz, course_quiz_values, using)
        course_quiz.course = sql.instance(Course, course_values, using)
        role, started_at = sql.row([None, QuizStart._meta.get_field("started_at")], rest, using)
        found.append((course_quiz, role, started_at))
    return found


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
